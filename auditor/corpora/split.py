"""Draw the speaker splits of one run from a prepared manifest and write them as JSON.

The splits file (read back with :func:`models.splits.read_splits`) names four disjoint
speaker sets: ``target_members`` (the device's model trains on them), ``target_nonmembers``
(never seen by the target; the audit's negatives), ``shadow_pool`` (the auditor's own
speakers for shadow models) and ``eval_users``. By default ``eval_users`` is empty and the
audit evaluates on ``target_members`` + ``target_nonmembers``; give ``eval_users`` a count
to hold out that many further speakers for a separate evaluation. Speakers not drawn
stay unused.
"""

from __future__ import annotations

from pathlib import Path

from models.manifest import read_manifest
from models.splits import draw_splits, write_splits


def make_splits(
    manifest: str | Path,
    out_json: str | Path,
    *,
    target_members: int,
    target_nonmembers: int,
    shadow_pool: int,
    eval_users: int | None = None,
    seed: int,
) -> dict:
    """Draw disjoint speaker sets of the given sizes and write them to ``out_json``.

    Parameters
    ----------
    manifest : manifest file or prepared-corpus folder.
    out_json : splits file to write.
    target_members, target_nonmembers, shadow_pool : number of speakers in each set.
    eval_users : number of further held-out speakers; ``None`` or 0 draws none (the audit
        then evaluates on members + non-members).
    seed : seed of the speaker shuffle (:func:`models.splits.draw_splits` over the sorted
        speakers); the same seed and manifest give the same splits.

    Returns
    -------
    The document written: ``{"seed", "manifest", "splits": {name: [speaker, ...]}}``, each
    list sorted.

    Raises
    ------
    SplitError
        When a size is negative or the manifest has fewer speakers than requested.
    """
    sizes = {
        "target_members": target_members,
        "target_nonmembers": target_nonmembers,
        "shadow_pool": shadow_pool,
        "eval_users": eval_users or 0,
    }
    speakers = sorted({u.speaker for u in read_manifest(manifest)})
    drawn = draw_splits(
        len(speakers), sizes, seed, unit="speakers", where=f"the manifest {manifest}"
    )
    splits = {name: [speakers[i] for i in idx] for name, idx in drawn.items()}  # sorted
    return write_splits(out_json, splits, seed=seed, manifest=str(Path(manifest).resolve()))
