"""Pins the CPU code paths of torch's numerical libraries so that a seed gives the same figures
on every x86-64 machine with AVX2, whatever else its processor has.

Without it, torch picks its vectorized kernels (ATen), oneDNN and MKL pick their GEMM and
convolution kernels by the processor they find: an AVX-512 Intel server and an AVX2 AMD one
can sum in different orders and train slightly different models from the same seed, and the
audit's figures move with them. Pinning
all three to their AVX2 paths costs nothing on AVX2 machines (bit-identical to their default
there) and makes AVX-512 machines compute the same bits.

The variables are read when torch loads, so :func:`pin_cpu_numerics` runs when a project package
is imported (``models``, ``auditor``, ``device_sim``), before any of their modules imports torch;
worker and device processes inherit the environment. A variable the user already set is kept.
"""

from __future__ import annotations

import os

#: Environment that fixes the kernels: ATen's dispatch, oneDNN's ISA cap, MKL's conditional
#: numerical reproducibility branch.
PINNED_CPU_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}


def pin_cpu_numerics() -> dict[str, str]:
    """Set :data:`PINNED_CPU_NUMERICS` where unset; returns the values in force."""
    for name, value in PINNED_CPU_NUMERICS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in PINNED_CPU_NUMERICS}
