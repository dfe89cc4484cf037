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

from auditor.cifar.size_sweep import run_size_sweep
from auditor.recipe_cli import recipe_command

main = recipe_command(
    __file__,
    run_size_sweep,
    summary="Table 1 of the reference paper",
    quick_help="Smoke configuration (tiny sizes, 2 epochs).",
)


if __name__ == "__main__":
    main()
