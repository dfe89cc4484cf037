"""Fixtures of the recipe smoke tests: a tiny generated CIFAR-style zip and a recipe runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.vision.data import ImageDataset, write_class_zip

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture(scope="session")
def tiny_cifar_zip(tmp_path_factory) -> Path:
    """A class-folder zip of random 32x32 images: 700 train + 150 test, 10 classes (read-only)."""
    rng = np.random.default_rng(0)

    def part(n):
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.sort(rng.integers(0, 10, n))

    (xt, yt), (xs, ys) = part(700), part(150)
    path = tmp_path_factory.mktemp("tiny_cifar") / "tiny.zip"
    return write_class_zip(path, ImageDataset(xt, yt, xs, ys, tuple(f"c{i}" for i in range(10))))


def run_recipe(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python recipes/<name>/run.py ARGS`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, str(RECIPES / name / "run.py"), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
