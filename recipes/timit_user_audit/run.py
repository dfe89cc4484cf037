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

from pathlib import Path

import click

from auditor.recipe_cli import recipe_command
from auditor.voice.pipeline import audit_config, run_user_audit
from auditor.voice.reports import format_table


def run(config: dict, out: Path, *, root: Path, seed: int) -> None:
    """The audit into ``out``, then its tables in ``table.md``."""
    metrics = run_user_audit(config, out, seed=seed, root=root)
    tables = [
        format_table(metrics, cond, attack)
        for cond in metrics["conditions"]
        for attack in ("random_forest", "calibrated_test")
    ]
    (out / "table.md").write_text(
        "\n\n".join(f"```\n{t}\n```" for t in tables) + "\n", encoding="utf-8"
    )


main = recipe_command(
    __file__,
    run,
    summary="Run the Table 3 user-level audit and print the paper-format table.",
    load=audit_config,
    options=[
        click.option(
            "--corpus",
            type=click.Path(exists=True, file_okay=False),
            default=None,
            help="TIMIT root (upper- or lower-case layout); default: synthetic corpus.",
        )
    ],
    voice=True,
)


if __name__ == "__main__":
    main()
