"""Model code shared by the device and the auditor (speech recognizer, CIFAR-10 CNN)."""

from models.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (models/numerics.py)
