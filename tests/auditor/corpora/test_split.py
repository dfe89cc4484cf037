"""Speaker splits: disjoint sets of the requested sizes, reproducible for a seed."""

from __future__ import annotations

import pytest

from auditor.corpora.split import make_splits
from models.manifest import Utterance, write_manifest
from models.splits import SplitError, read_splits


@pytest.fixture
def manifest(tmp_path):
    utts = [
        Utterance(f"S{s:02d}_{k}", f"S{s:02d}", f"/a/{s}_{k}.wav", 1.0, "bee", ("sil", "iy", "sil"))
        for s in range(20)
        for k in range(3)
    ]
    return write_manifest(tmp_path / "manifest.jsonl", utts)


def test_splits_are_disjoint_sized_and_readable(manifest, tmp_path):
    out = tmp_path / "splits.json"
    doc = make_splits(manifest, out, target_members=5, target_nonmembers=5, shadow_pool=8, seed=3)
    splits = read_splits(out)
    assert splits == doc["splits"]
    assert {k: len(v) for k, v in splits.items()} == {
        "target_members": 5,
        "target_nonmembers": 5,
        "shadow_pool": 8,
        "eval_users": 0,  # default: the audit evaluates members + non-members
    }
    drawn = [s for v in splits.values() for s in v]
    assert len(drawn) == len(set(drawn)) == 18
    assert doc["seed"] == 3 and doc["manifest"] == str(manifest.resolve())


def test_eval_users_are_held_out_too(manifest, tmp_path):
    doc = make_splits(
        manifest,
        tmp_path / "s.json",
        target_members=4,
        target_nonmembers=4,
        shadow_pool=8,
        eval_users=4,
        seed=0,
    )
    assert len({s for v in doc["splits"].values() for s in v}) == 20


def test_a_seeded_split_keeps_its_speakers(manifest, tmp_path):
    """Pinned: the speakers a seed draws (splits of past runs must stay reproducible)."""
    doc = make_splits(
        manifest,
        tmp_path / "s.json",
        target_members=3,
        target_nonmembers=3,
        shadow_pool=4,
        eval_users=2,
        seed=5,
    )
    assert doc["splits"] == {
        "target_members": ["S03", "S09", "S18"],
        "target_nonmembers": ["S01", "S07", "S16"],
        "shadow_pool": ["S02", "S11", "S13", "S19"],
        "eval_users": ["S04", "S17"],
    }


def test_same_seed_same_splits_other_seed_other_splits(manifest, tmp_path):
    kw = {"target_members": 5, "target_nonmembers": 5, "shadow_pool": 5}
    a = make_splits(manifest, tmp_path / "a.json", seed=1, **kw)
    b = make_splits(manifest, tmp_path / "b.json", seed=1, **kw)
    c = make_splits(manifest, tmp_path / "c.json", seed=2, **kw)
    assert a["splits"] == b["splits"]
    assert (tmp_path / "a.json").read_text() != (tmp_path / "c.json").read_text()
    assert a["splits"] != c["splits"]


def test_too_few_speakers_is_a_clear_error(manifest, tmp_path):
    with pytest.raises(SplitError, match="21 speakers requested .* only 20"):
        make_splits(
            manifest,
            tmp_path / "s.json",
            target_members=10,
            target_nonmembers=10,
            shadow_pool=1,
            seed=0,
        )
    assert not (tmp_path / "s.json").exists()


def test_negative_size_is_refused(manifest, tmp_path):
    with pytest.raises(SplitError, match="shadow_pool"):
        make_splits(
            manifest,
            tmp_path / "s.json",
            target_members=1,
            target_nonmembers=1,
            shadow_pool=-1,
            seed=0,
        )
