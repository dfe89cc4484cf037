"""The auditor: the voice audit (:mod:`auditor.voice`), the CIFAR-10 path (:mod:`auditor.cifar`),
and the evaluation both share (config, executors, metrics, plots, the recipes' command line)."""

from common.numerics import pin_cpu_numerics

pin_cpu_numerics()  # before any module imports torch (common/numerics.py)
