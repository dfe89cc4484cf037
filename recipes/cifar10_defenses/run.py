"""Defenses against membership inference on CIFAR-10: Table 2, the L2 sweep, every defense.

    python recipes/cifar10_defenses/run.py [--quick] [--out DIR] [--key=value ...]

Every setting of ``config.yaml``'s ``defenses`` (a :mod:`models.privacy.registry` spec, or a
``+`` combination of them) is a target CNN trained on ``train_size`` seeded members with that
defense, attacked by the attacks of ``attack.attacks`` sharing ``n_shadows`` shadow models
trained with the same defended recipe (LiRA needs two shadows or more and is refused before
any training otherwise); serving defenses reuse the model they harden and only change the
answers. The tables report every attack's AUC and, labelled as such, their maximum: an upper
bound picked with the evaluation labels, which the goal check uses (conservatively). Table 2
adds L2-regularized targets at the larger training sizes. The grid is
:func:`auditor.cifar.defense_grid.run_defense_grid` (its jobs run in parallel through
``executor`` / ``workers``), the tables :mod:`auditor.cifar.defense_tables`. The run folder
gets the resolved ``config.yaml``, ``targets/<setting>/`` (checkpoints, splits, histories),
``metrics.json`` (``rows``: one per setting and attack, rewritten after every finished job so
a cut run keeps what finished), ``table.md`` and ``privacy_utility.png``.
"""

from __future__ import annotations

import numpy as np

from auditor.cifar.defense_grid import check_grid_config, run_defense_grid
from auditor.recipe_cli import recipe_command

main = recipe_command(
    __file__,
    run_defense_grid,
    check=check_grid_config,
    summary="Defenses on CIFAR-10",
    quick_help="Smoke configuration (tiny sizes, 1 epoch).",
)


if __name__ == "__main__":
    np.seterr(over="ignore")
    main()
