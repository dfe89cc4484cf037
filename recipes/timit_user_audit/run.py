"""Table 3 of the reference paper, "Membership Inference Attack in IoT services" (Chu, Tsai and
Tai): the user-level audit of a speech recognizer.

    python recipes/timit_user_audit/run.py [--corpus TIMIT_ROOT] [--quick] [--out DIR]
        [--config YAML] [--seed N] [--key=value ...]

A thin wrapper of :func:`auditor.voice.pipeline.run_user_audit`, the pipeline of ``auditor demo``,
with the same config (``config.yaml`` is a link to ``auditor/voice/demo.yaml``): prepare the corpus (a
TIMIT tree given with ``--corpus``, else the synthetic eSpeak corpus, or the Kaldi data dir named
in ``speechocean.yaml``), draw splits, train the target and 2 shadows, serve the target as a
device over MQTT, audit members and non-members with 5 audios each, write ``metrics.json``
(rows by users and audios per user, both conditions), ``report/`` and ``table.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from auditor.reports import format_table
from auditor.voice.pipeline import audit_config, run_user_audit

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
@click.option(
    "--corpus",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="TIMIT root (upper- or lower-case layout); default: synthetic corpus.",
)
@click.option("--quick", is_flag=True, help="Small smoke configuration of the same code path.")
@click.option("--out", default="runs/timit_user_audit", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def main(config_path, corpus, quick, out, seed, overrides):
    """Run the Table 3 user-level audit and print the paper-format table."""
    try:
        config = audit_config(config_path, overrides, quick=quick, corpus=corpus)
        metrics = run_user_audit(config, out, seed=seed, root=REPO)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    tables = [
        format_table(metrics, cond, attack)
        for cond in metrics["conditions"]
        for attack in ("random_forest", "calibrated_test")
    ]
    (Path(out) / "table.md").write_text(
        "\n\n".join(f"```\n{t}\n```" for t in tables) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    sys.exit(main())
