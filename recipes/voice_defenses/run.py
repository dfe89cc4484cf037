"""Voice path: defenses against the user-level audit and their cost in PER.

    python recipes/voice_defenses/run.py [--quick] [--out DIR] [--config YAML] [--seed N]
        [--key=value ...]

Runs :func:`auditor.voice.defenses.run_voice_defenses` on ``config.yaml``: the user-level audit
of the smart speaker under each setting of ``defenses``, PER on unseen speakers, and into the
run directory ``metrics.json``, ``table.md``, ``privacy_utility.png`` and the undefended audit's
HTML summary with the defense table and plot (``settings/none/report/summary.html``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from auditor.config import load_config
from auditor.voice.defenses import run_voice_defenses

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config.yaml")


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=str(CONFIG),
    show_default=True,
)
@click.option("--quick", is_flag=True, help="Small smoke configuration of the same code path.")
@click.option("--out", default="runs/voice_defenses", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def main(config_path, quick, out, seed, overrides):
    """Train, serve and audit the recognizer under each defense; print the privacy-utility table."""
    import torch

    torch.set_num_threads(1)  # one core: the recipe's budget (see config.yaml)
    try:
        config = load_config(config_path, overrides, sections={"quick": quick})
        run_voice_defenses(config, out, seed=seed, root=REPO)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


if __name__ == "__main__":
    sys.exit(main())
