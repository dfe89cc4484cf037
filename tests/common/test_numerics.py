"""The CPU numerics pin: set before torch loads, in force in torch, a user's choice kept."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.numerics import PINNED_CPU_NUMERICS

REPO = Path(__file__).resolve().parents[2]
HAS_AVX2 = "avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False


def _run(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_CPU_NUMERICS}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=clean | env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.slow  # a fresh interpreter importing torch per case
@pytest.mark.skipif(not HAS_AVX2, reason="the pin selects AVX2 paths; this CPU has no AVX2")
@pytest.mark.parametrize("package", ["models", "auditor", "device_sim"])
def test_importing_a_project_package_pins_torch_to_avx2(package):
    code = (
        f"import {package}, os, torch; print(torch.backends.cpu.get_cpu_capability(),"
        " os.environ['MKL_CBWR'], os.environ['DNNL_MAX_CPU_ISA'])"
    )
    assert _run(code) == "AVX2 AVX2 AVX2"


def test_a_value_the_user_set_is_kept():
    code = "import models, os; print(os.environ['ATEN_CPU_CAPABILITY'], os.environ['MKL_CBWR'])"
    assert _run(code, ATEN_CPU_CAPABILITY="default") == "default AVX2"
