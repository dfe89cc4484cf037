"""Seeded splits and splits files: speakers (voice path) and record indices (image path).

Both paths draw disjoint named sets the same way (:func:`draw_splits`: one seeded permutation
cut in consecutive chunks) and write them as JSON ``{**meta, "splits": {name: [item, ...]}}``
(:func:`write_splits`). Speaker splits are drawn from a manifest and written once per run by :func:`make_splits`
(``auditor corpus split``)
and read by ``device-sim train --splits S --split target_members`` and by the auditor
(:func:`read_splits`, the sets of :data:`SPLIT_NAMES` disjoint). Record splits index the pooled
CIFAR-10 records (:func:`corpora.cifar10.member_split`, :func:`read_record_splits`, every
set disjoint).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from corpora.manifest import read_manifest

#: The split names every splits file has (more may be added, e.g. per-shadow splits).
SPLIT_NAMES = ("target_members", "target_nonmembers", "shadow_pool", "eval_users")


class SplitError(ValueError):
    """A splits file that is missing, malformed, overlapping or lacks a requested split."""


def draw_splits(
    n_total: int,
    sizes: Mapping[str, int],
    seed: int,
    *,
    unit: str = "records",
    where: str = "the pool",
) -> dict[str, np.ndarray]:
    """Disjoint seeded index sets over ``range(n_total)``.

    One permutation, ``np.random.default_rng(seed).permutation(n_total)``, is cut into
    consecutive chunks of ``sizes`` (in their order); each set comes back sorted (int64).
    Indices not drawn stay unused. ``unit`` and ``where`` name the items and the pool in errors.

    Raises
    ------
    SplitError
        For a negative size, or more items requested than the pool has.
    """
    for name, n in sizes.items():
        if n < 0:
            raise SplitError(f"{name} must be a count >= 0, got {n}")
    need = sum(sizes.values())
    if need > n_total:
        asked = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise SplitError(f"{need} {unit} requested ({asked}) but {where} has only {n_total}")
    perm = np.random.default_rng(seed).permutation(n_total)  # (n_total,) int64
    cuts = np.cumsum([0, *sizes.values()])
    return {
        name: np.sort(perm[start:stop])
        for name, start, stop in zip(sizes, cuts[:-1], cuts[1:], strict=True)
    }


def write_splits(path: str | Path, splits: Mapping[str, Iterable], **meta) -> dict:
    """Write ``{**meta, "splits": {name: [item, ...]}}`` as JSON (atomically); return it."""
    doc = dict(meta)
    doc["splits"] = {
        name: items.tolist() if isinstance(items, np.ndarray) else list(items)
        for name, items in splits.items()
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)
    return doc


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
    seed : seed of the speaker shuffle (:func:`draw_splits` over the sorted
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


def read_splits(path: str | Path) -> dict[str, list[str]]:
    """Read a speaker splits file (``{"seed": .., "splits": {name: [speaker, ...]}}``).

    The sets of :data:`SPLIT_NAMES` must be disjoint (further ones, e.g. per-shadow splits,
    may overlap them).
    """
    splits = {k: [str(s) for s in v] for k, v in _read(path).items()}
    _check_disjoint(path, splits, SPLIT_NAMES, item="speaker")
    return splits


def read_record_splits(path: str | Path) -> dict[str, np.ndarray]:
    """Read a record splits file (int64 index arrays); every set must be disjoint."""
    lists = _read(path)
    try:
        splits = {k: np.asarray(v, dtype=np.int64) for k, v in lists.items()}
    except (TypeError, ValueError) as e:
        raise SplitError(f"{path}: malformed splits file ({e})") from e
    _check_disjoint(path, splits, list(splits), item="record")
    return splits


def speakers_of(path: str | Path, split: str) -> list[str]:
    """The speakers of one named split."""
    splits = read_splits(path)
    if split not in splits:
        raise SplitError(f"{path}: no split named {split!r} (have: {', '.join(sorted(splits))})")
    return splits[split]


def _check_disjoint(
    where: str | Path, splits: Mapping[str, Iterable], names: Iterable[str], *, item: str
) -> None:
    """Raise :class:`SplitError` naming the first ``item`` found in two of the ``names`` sets."""
    seen: dict = {}
    for name in names:
        for x in splits.get(name, ()):
            if x in seen:
                raise SplitError(f"{where}: {item} {x} is in both {seen[x]} and {name}")
            seen[x] = name


def _read(path: str | Path) -> dict[str, list]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
        return {str(k): list(v) for k, v in doc["splits"].items()}
    except FileNotFoundError as e:
        raise SplitError(f"{p}: splits file not found") from e
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise SplitError(f"{p}: malformed splits file ({e})") from e
