"""Auditor: corpora tooling, shadow training, membership features, attack models, reports."""

from common.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (common/numerics.py)
