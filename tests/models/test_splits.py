"""models.splits: seeded draws, writing and reading splits files, disjointness, named splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.splits import (
    SplitError,
    draw_splits,
    read_record_splits,
    read_splits,
    speakers_of,
    write_splits,
)


def write(tmp_path, splits) -> str:
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"seed": 0, "splits": splits}))
    return path


def test_read_and_pick_a_split(tmp_path):
    path = write(
        tmp_path,
        {
            "target_members": ["A", "B"],
            "target_nonmembers": ["C"],
            "shadow_pool": [],
            "eval_users": [],
        },
    )
    assert read_splits(path)["target_members"] == ["A", "B"]
    assert speakers_of(path, "target_nonmembers") == ["C"]
    with pytest.raises(SplitError, match="no split named 'shadow_1'"):
        speakers_of(path, "shadow_1")


def test_overlapping_splits_are_refused(tmp_path):
    path = write(tmp_path, {"target_members": ["A"], "shadow_pool": ["B", "A"]})
    with pytest.raises(SplitError, match="speaker A is in both target_members and shadow_pool"):
        read_splits(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SplitError, match="not found"):
        read_splits(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"seed": 1}')
    with pytest.raises(SplitError, match="malformed"):
        read_splits(bad)


def test_draw_is_consecutive_chunks_of_one_seeded_permutation():
    drawn = draw_splits(12, {"a": 3, "b": 0, "c": 4}, seed=9)
    perm = np.random.default_rng(9).permutation(12)
    assert [v.tolist() for v in drawn.values()] == [
        sorted(perm[:3]),
        [],
        sorted(perm[3:7]),
    ]
    assert all(v.dtype == np.int64 for v in drawn.values())


def test_draw_refuses_negative_and_too_large_sizes():
    with pytest.raises(SplitError, match="b must be a count >= 0, got -1"):
        draw_splits(10, {"a": 1, "b": -1}, seed=0)
    with pytest.raises(SplitError, match=r"11 speakers requested \(a=5, b=6\) but m has only 10"):
        draw_splits(10, {"a": 5, "b": 6}, seed=0, unit="speakers", where="m")


def test_record_splits_round_trip_and_overlap_check(tmp_path):
    path = tmp_path / "sub" / "split.json"
    doc = write_splits(path, {"a": np.array([1, 4]), "b": np.array([], dtype=np.int64)}, seed=2)
    assert doc == {"seed": 2, "splits": {"a": [1, 4], "b": []}}
    assert json.loads(path.read_text()) == doc and not path.with_suffix(".json.tmp").exists()
    back = read_record_splits(path)
    assert back["a"].tolist() == [1, 4] and back["b"].dtype == np.int64
    write_splits(path, {"a": [1, 4], "b": [3], "c": [4]})
    with pytest.raises(SplitError, match="record 4 is in both a and c"):
        read_record_splits(path)
    write_splits(path, {"a": ["x"]})
    with pytest.raises(SplitError, match="malformed"):
        read_record_splits(path)


def test_further_speaker_splits_may_overlap_the_named_ones(tmp_path):
    path = write(tmp_path, {"target_members": ["A"], "shadow_pool": ["B"], "shadow_0": ["B"]})
    assert speakers_of(path, "shadow_0") == ["B"]
