"""Seeded splits and splits files: speakers (voice path), utterances and record indices.

Every path draws disjoint named sets the same way (:func:`draw_splits`: one seeded permutation
cut in consecutive chunks) and the files are JSON ``{**meta, "splits": {name: [item, ...]}}``
(:func:`write_splits`). Speaker splits are drawn from a manifest and written once per run by
:func:`make_splits` (``auditor corpus split``) and read by ``device-sim train --splits S --split
target_members`` and by the auditor (:func:`read_splits`, the sets of :data:`SPLIT_NAMES`
disjoint). Record splits index the pooled CIFAR-10 records
(:func:`corpora.cifar10.member_split`, :func:`read_record_splits`, every set disjoint).

Draws made in memory, never written as splits files: the per-speaker utterance hold-out of
recognizer training (:func:`split_utterances`), the near-equal parts of model stacking
(:func:`draw_parts`); written with the record splits, the advreg reference records drawn among
those no split holds (:func:`draw_unused`); the auditor's shadow IN/OUT draws
(:func:`auditor.voice.shadow.shadow_splits`, :func:`auditor.cifar.attacks.shadow.in_out_splits`)
are :func:`draw_splits` calls on one generator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpora.manifest import Utterance, read_manifest

#: The split names every splits file has (more may be added, e.g. per-shadow splits).
SPLIT_NAMES = ("target_members", "target_nonmembers", "shadow_pool", "eval_users")


class SplitError(ValueError):
    """A splits file that is missing, malformed, overlapping or lacks a requested split."""


def draw_splits(
    n_total: int,
    sizes: Mapping[str, int],
    seed: int | np.random.Generator,
    *,
    unit: str = "records",
    where: str = "the pool",
    sort: bool = True,
) -> dict[str, np.ndarray]:
    """Disjoint seeded index sets over ``range(n_total)``.

    One permutation, ``np.random.default_rng(seed).permutation(n_total)``, is cut into
    consecutive chunks of ``sizes`` (in their order); each set comes back sorted (int64), or in
    permutation order with ``sort=False``. Indices not drawn stay unused. A ``Generator`` as
    ``seed`` is drawn from in place, so successive calls on one generator give successive
    independent draws. ``unit`` and ``where`` name the items and the pool in errors.

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
        name: np.sort(perm[start:stop]) if sort else perm[start:stop]
        for name, start, stop in zip(sizes, cuts[:-1], cuts[1:], strict=True)
    }


def draw_parts(n_total: int, n_parts: int, seed: int | np.random.Generator) -> list[np.ndarray]:
    """``n_parts`` disjoint sorted index sets covering ``range(n_total)`` (:func:`draw_splits`).

    Sizes as ``np.array_split``'s: the first ``n_total % n_parts`` parts hold one more index.
    """
    base, extra = divmod(n_total, n_parts)
    sizes = {str(i): base + (i < extra) for i in range(n_parts)}
    return list(draw_splits(n_total, sizes, seed).values())


def draw_unused(
    n_total: int,
    taken: Mapping[str, np.ndarray],
    sizes: Mapping[str, int],
    seed: int | np.random.Generator,
    *,
    unit: str = "records",
    where: str = "the draw",
) -> dict[str, np.ndarray]:
    """Further index sets of ``sizes`` over ``range(n_total)``, outside every ``taken`` set.

    Each set in turn is ``rng.choice`` (no replacement; ``rng = np.random.default_rng(seed)``)
    of the indices no set, taken or drawn, holds yet; each comes back sorted (int64). Not
    :func:`draw_splits`' draw: the CIFAR targets' advreg reference records were drawn so.

    Raises
    ------
    SplitError
        When fewer indices are left than a set needs (``where`` names the caller).
    """
    rng = np.random.default_rng(seed)
    sets = dict(taken)
    out: dict[str, np.ndarray] = {}
    for name, n in sizes.items():
        used = np.concatenate([np.zeros(0, dtype=np.int64), *sets.values()])
        free = np.setdiff1d(np.arange(n_total), used)
        if n > len(free):
            raise SplitError(f"{where} needs {n} {name} {unit}, only {len(free)} unused")
        out[name] = sets[name] = np.sort(rng.choice(free, n, replace=False))
    return out


@dataclass
class UtteranceSplit:
    """Utterances per role: ``train``, ``dev`` and ``heldout`` (never trained on)."""

    train: list[Utterance] = field(default_factory=list)
    dev: list[Utterance] = field(default_factory=list)
    heldout: list[Utterance] = field(default_factory=list)


def balanced_membership(n_records: int, n_models: int, seed: int) -> np.ndarray:
    """``(n_models, n_records)`` bool: each record IN for exactly half of the models.

    Carlini et al.'s construction: for every record, a random half of the models keep it.
    """
    rng = np.random.default_rng(seed)
    ranks = rng.random((n_models, n_records)).argsort(axis=0)  # per record, a random model order
    return ranks < n_models // 2


def random_halves(n_records: int, n_models: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_models, n_records)`` bool: for each model in turn, a random half of the records
    (one ``rng.permutation`` per model)."""
    return np.stack([rng.permutation(n_records) < n_records // 2 for _ in range(n_models)])


def split_utterances(
    utterances: Sequence[Utterance], heldout: int, dev: int, seed: int
) -> UtteranceSplit:
    """Per speaker: shuffle (seeded), take ``heldout``, then ``dev``, train on the rest.

    Speakers in sorted order each cut one permutation of their utterances (sorted by id) from
    one generator seeded with ``seed`` (:func:`draw_splits`, ``sort=False``); every list keeps
    the permutation order, speaker after speaker (the order recognizer training reads them in).

    Raises
    ------
    SplitError
        Naming a speaker with fewer than ``heldout + dev + 1`` utterances.
    """
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    rng = np.random.default_rng(seed)
    split = UtteranceSplit()
    for spk in sorted(by_speaker):
        utts = sorted(by_speaker[spk], key=lambda u: u.utt_id)
        if len(utts) < heldout + dev + 1:
            raise SplitError(
                f"speaker {spk} has {len(utts)} utterances; {heldout} held out + {dev} dev + 1 "
                "training utterance needed"
            )
        sizes = {"heldout": heldout, "dev": dev, "train": len(utts) - heldout - dev}
        for role, idx in draw_splits(len(utts), sizes, rng, sort=False).items():
            getattr(split, role).extend(utts[i] for i in idx)
    return split


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
