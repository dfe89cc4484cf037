"""The defenses document of an audit run: what its summary page shows about defenses.

An audited run directory (:func:`auditor.voice.pipeline.run_user_audit`) may hold ``defenses.json``
(:data:`DEFENSES_JSON`) beside its ``metrics.json``: the privacy-utility results of defenses
against that audit, which :func:`auditor.voice.reports.write_reports` renders as a table (and plot)
under "Defenses". :func:`auditor.voice.defenses.run_voice_defenses` writes it into its
undefended setting's run directory. Its keys:

``settings``
    One mapping per defense setting: ``setting`` (the spec), ``stage`` (``train`` /
    ``serve``), ``per_unseen_speakers`` and ``per_increase`` (PER on unseen speakers and its
    change against the undefended setting), ``attacks`` (``<condition>/<attack>`` -> the
    audit's metrics: ``auc``, ``ci95``, ``tpr_at_fpr``, ``lowest_fpr``, ...; empty when not
    audited), ``train_time_ratio``, ``epsilon`` / ``delta`` (DP-SGD; None otherwise), and the
    other fields of the voice defenses' ``metrics.json`` settings.
``n_nonmembers``
    Non-member users of the audit (TPR at FPR ``1/n_nonmembers`` is the lowest measurable).
``best_tradeoff``
    ``setting``, ``unseen_auc_distance_to_chance``, ``per_increase``, ``attack`` of the setting
    closest to chance (:func:`auditor.voice.defense_tables.closest_to_chance`), or ``{}``.
``notes``
    Sentences shown under the table.
``plot``
    File name of the privacy-utility plot, in the same directory (or null).
"""

from __future__ import annotations

import json
from pathlib import Path

DEFENSES_JSON = "defenses.json"


def write_defense_summary(
    run_dir: str | Path,
    *,
    settings: list[dict],
    n_nonmembers: int,
    best_tradeoff: dict,
    notes: list[str],
    plot: str | None,
) -> Path:
    """Write ``run_dir/defenses.json`` (the keys of the module docstring); returns its path."""
    path = Path(run_dir) / DEFENSES_JSON
    path.write_text(
        json.dumps(
            {
                "plot": plot,
                "settings": settings,
                "n_nonmembers": n_nonmembers,
                "best_tradeoff": best_tradeoff,
                "notes": notes,
            },
            indent=1,
        )
    )
    return path


def read_defense_summary(run_dir: str | Path) -> dict | None:
    """The ``defenses.json`` document of ``run_dir``, or None when the run has none."""
    path = Path(run_dir) / DEFENSES_JSON
    return json.loads(path.read_text()) if path.is_file() else None
