"""Voice path: every user-level attack side by side, against the number of references k.

    python recipes/voice_attacks/run.py [--quick] [--out DIR] [--config YAML] [--seed N]
        [--key=value ...]

Runs :func:`auditor.voice.attack_comparison.run_voice_attacks` on ``config.yaml``: the paper's
random forest, the calibrated single-feature test and the reference-calibrated test on the same
target and users, both conditions, K audios per user swept, for each k of ``references``;
writes ``metrics.json`` and ``table.md`` into the run directory.
"""

from __future__ import annotations

from pathlib import Path

from auditor.recipe_cli import recipe_command
from auditor.voice.attack_comparison import run_voice_attacks


def run(config: dict, out: Path, *, root: Path, seed: int) -> None:
    run_voice_attacks(config, out, seed=seed, root=root)


main = recipe_command(
    __file__,
    run,
    summary="Audit one target with each attack and k references; print the comparison table.",
    voice=True,
)


if __name__ == "__main__":
    main()
