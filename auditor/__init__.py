"""Auditor: corpora tooling, shadow training, membership features, attack models, reports."""

from models.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (models/numerics.py)
