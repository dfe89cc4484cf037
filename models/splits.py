"""Speaker splits: which speakers train the target, which the auditor may use, which are audited.

Written once per run as JSON by ``auditor corpus split`` and read by ``device-sim train
--splits S --split target_members`` and by the auditor. All named sets are disjoint.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The split names every splits file has (more may be added, e.g. per-shadow splits).
SPLIT_NAMES = ("target_members", "target_nonmembers", "shadow_pool", "eval_users")


class SplitError(ValueError):
    """A splits file that is missing, malformed, overlapping or lacks a requested split."""


def read_splits(path: str | Path) -> dict[str, list[str]]:
    """Read a splits JSON (``{"seed": .., "splits": {name: [speaker, ...]}}``) and check disjointness."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
        splits = {str(k): [str(s) for s in v] for k, v in doc["splits"].items()}
    except FileNotFoundError as e:
        raise SplitError(f"{p}: splits file not found") from e
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise SplitError(f"{p}: malformed splits file ({e})") from e
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for spk in splits.get(name, []):
            if spk in seen:
                raise SplitError(f"{p}: speaker {spk} is in both {seen[spk]} and {name}")
            seen[spk] = name
    return splits


def speakers_of(path: str | Path, split: str) -> list[str]:
    """The speakers of one named split."""
    splits = read_splits(path)
    if split not in splits:
        raise SplitError(f"{path}: no split named {split!r} (have: {', '.join(sorted(splits))})")
    return splits[split]
