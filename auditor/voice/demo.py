"""``auditor demo``: the user-level audit (:mod:`auditor.voice.pipeline`) on its packaged config.

The config is :data:`auditor.voice.pipeline.AUDIT_CONFIG` (``auditor/voice/demo.yaml``), the same file as
``recipes/timit_user_audit``'s; ``--quick`` applies its ``quick`` section.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from auditor.voice.pipeline import audit_config, run_user_audit


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    overrides: Iterable[str] = (),
) -> dict:
    """Run the demo into ``out``; returns ``metrics.json``'s document plus ``stages`` (seconds).

    Parameters
    ----------
    out : run directory.
    quick : the config's ``quick`` section: small corpus and models (the same code path).
    seed : corpus, splits, models, audio choice, attacks.
    overrides : ``--section.key=value`` changes of ``demo.yaml``.
    """
    return run_user_audit(audit_config(overrides=overrides, quick=quick), out, seed=seed)
