"""Simulated smart speaker serving a DNN-HMM recognizer over MQTT."""

from common.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (common/numerics.py)
