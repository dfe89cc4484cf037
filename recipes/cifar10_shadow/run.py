"""Reproduce Table 1 of the reference paper: membership attacks on CIFAR-10 CNNs by training size.

    python recipes/cifar10_shadow/run.py [--quick] [--out DIR] [--key=value ...]

For each training size the target CNN is trained on a seeded member split, then every attack of
``config.yaml`` is fitted on the attacker's records and scored on the target's members against
as many non-members: :func:`auditor.cifar.size_sweep.run_size_sweep`. The run folder gets the
resolved ``config.yaml``, ``targets/n<size>/`` (checkpoints, splits, histories),
``metrics.json`` (one row per size and attack; rewritten after every size, so a cut run keeps
what finished), ``table.md`` and ROC plots ``roc_n<size>_{linear,log}.png``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from auditor.cifar.size_sweep import run_size_sweep
from auditor.recipe_cli import recipe_command

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config.yaml")

main = recipe_command(
    CONFIG,
    partial(run_size_sweep, root=REPO),
    repo=REPO,
    name="cifar10_shadow",
    summary="Table 1 of the reference paper",
    quick_help="Smoke configuration (tiny sizes, 2 epochs).",
)


if __name__ == "__main__":
    main()
