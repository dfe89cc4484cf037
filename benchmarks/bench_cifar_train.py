"""Training cost of the CIFAR-10 CNN: ``train_cnn`` against a bare PyTorch loop, and 2 workers.

    python benchmarks/bench_cifar_train.py [--n-images 2000] [--epochs 2] [--seed 0]

Measures (on random 32x32 images, the reference CNN, batch 64, one torch thread per process):

1. images/s of a bare PyTorch training loop (forward, loss, backward, Adam step);
2. images/s of :func:`models.vision.train.train_cnn` on the same data (the overhead ratio);
3. wall time of two shadow-model jobs (``train_and_query``, what the attacks run) one after
   the other (serial executor) and on the local executor with 2 workers (the speed-up).

Prints a table and appends a section to ``BENCHMARKS.md``. The load average is reported: on a
shared machine the figures move with what else runs.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from auditor.cifar.attacks import CnnRecipe
from auditor.cifar.attacks.shadow import train_and_query
from auditor.executor import get_executor
from models.vision.cnn import build_cnn
from models.vision.train import images_to_tensor, train_cnn

REPO = Path(__file__).resolve().parents[1]
BATCH = 64


def bare_loop(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> float:
    """Seconds for ``epochs`` of plain PyTorch training of the same CNN."""
    torch.manual_seed(seed)
    model = build_cnn({})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = images_to_tensor(x), torch.from_numpy(y)  # (n, 3, 32, 32), (n,)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = order[i : i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


@click.command()
@click.option("--n-images", type=int, default=2000, show_default=True)
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def main(n_images: int, epochs: int, seed: int) -> None:
    """Run the three measurements, print the table, append it to BENCHMARKS.md."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n_images)
    load_before = os.getloadavg()[0]
    bare = bare_loop(x, y, epochs, seed)
    t0 = time.perf_counter()
    train_cnn(
        x, y, {"epochs": epochs, "batch_size": BATCH, "num_threads": 1}, seed=seed, progress=False
    )
    ours = time.perf_counter() - t0
    recipe = CnnRecipe({"epochs": epochs, "batch_size": BATCH})
    jobs = [
        {"recipe": recipe, "x_train": x, "y_train": y, "queries": {"in": x}, "seed": s}
        for s in (seed, seed + 1)
    ]
    walls = {}
    for kind, workers in (("serial", None), ("local", 2)):
        executor = get_executor(kind, max_workers=workers, threads_per_worker=1)
        t0 = time.perf_counter()
        executor.map(train_and_query, jobs, desc=f"2 shadows, {kind}")
        walls[kind] = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    passes = n_images * epochs
    rows = [
        ("bare PyTorch loop, images/s", f"{passes / bare:.0f}"),
        ("train_cnn, images/s", f"{passes / ours:.0f}"),
        ("train_cnn time / bare loop time", f"{ours / bare:.2f}"),
        (
            f"one shadow model ({n_images} images x {epochs} epochs, serial), s",
            f"{walls['serial'] / 2:.1f}",
        ),
        ("2 shadow models, serial executor, s", f"{walls['serial']:.1f}"),
        ("2 shadow models, local executor with 2 workers, s", f"{walls['local']:.1f}"),
        ("speed-up from 2 workers", f"{walls['serial'] / walls['local']:.2f}"),
    ]
    table = ["| measurement | value |", "|---|---:|", *[f"| {k} | {v} |" for k, v in rows]]
    print("\n".join(table))
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    section = [
        "",
        f"## CIFAR-10 CNN training cost ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- command: `python benchmarks/bench_cifar_train.py --n-images {n_images} "
        f"--epochs {epochs} --seed {seed}`",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), load average {load_before:.1f} before / "
        f"{load_after:.1f} after (shared machine: other jobs were running)",
        f"- versions: Python {sys.version.split()[0]}, torch {torch.__version__}, numpy "
        f"{np.__version__}; one torch thread per process, batch {BATCH}, random 32x32 images",
        "",
        *table,
        "",
    ]
    with (REPO / "BENCHMARKS.md").open("a") as f:
        f.write("\n".join(section))


if __name__ == "__main__":
    main()
