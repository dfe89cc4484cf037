"""Voice path: defenses against the user-level audit and their cost in PER.

    python recipes/voice_defenses/run.py [--quick] [--out DIR] [--config YAML] [--seed N]
        [--key=value ...]

Runs :func:`auditor.voice.defenses.run_voice_defenses` on ``config.yaml``: the user-level audit
of the smart speaker under each setting of ``defenses``, PER on unseen speakers, and into the
run directory ``metrics.json``, ``table.md``, ``privacy_utility.png`` and the undefended audit's
HTML summary with the defense table and plot (``settings/none/report/summary.html``).
"""

from __future__ import annotations

from pathlib import Path

from auditor.recipe_cli import recipe_command
from auditor.voice.defenses import run_voice_defenses


def run(config: dict, out: Path, *, root: Path, seed: int) -> None:
    """Every defense setting of ``config`` into ``out``, on one core."""
    import torch

    torch.set_num_threads(1)  # one core: the recipe's budget (see config.yaml)
    run_voice_defenses(config, out, seed=seed, root=root)


main = recipe_command(
    __file__,
    run,
    summary="Train, serve and audit the recognizer under each defense; print the privacy-utility "
    "table.",
    voice=True,
)


if __name__ == "__main__":
    main()
