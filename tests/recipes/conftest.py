"""Fixtures of the recipe smoke tests: a tiny generated CIFAR-style zip and a recipe runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture(scope="session")
def tiny_cifar_zip(make_tiny_cifar_zip) -> Path:
    """700 train + 150 test random images: enough for the recipes' quick sizes."""
    return make_tiny_cifar_zip(700, 150)


def run_recipe(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python recipes/<name>/run.py ARGS`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, str(RECIPES / name / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
