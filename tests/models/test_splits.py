"""models.splits: reading splits files, disjointness, named splits."""

from __future__ import annotations

import json

import pytest

from models.splits import SplitError, read_splits, speakers_of


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
