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

import json
from pathlib import Path

import numpy as np

from models.manifest import read_manifest
from models.splits import SplitError


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
    seed : seed of the speaker shuffle; the same seed and manifest give the same splits.

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
    for name, n in sizes.items():
        if n < 0:
            raise SplitError(f"{name} must be a count >= 0, got {n}")
    speakers = sorted({u.speaker for u in read_manifest(manifest)})
    needed = sum(sizes.values())
    if needed > len(speakers):
        raise SplitError(
            f"{manifest}: {needed} speakers requested "
            f"({', '.join(f'{k}={v}' for k, v in sizes.items())}) but the manifest has only {len(speakers)}"
        )
    order = np.random.default_rng(seed).permutation(len(speakers))  # (n_speakers,)
    splits, start = {}, 0
    for name, n in sizes.items():
        splits[name] = sorted(speakers[i] for i in order[start : start + n])
        start += n
    doc = {"seed": seed, "manifest": str(Path(manifest).resolve()), "splits": splits}
    out = Path(out_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)
    return doc
