"""Model code shared by the device and the auditor (speech recognizer, CIFAR-10 CNN)."""

from common.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (common/numerics.py)
