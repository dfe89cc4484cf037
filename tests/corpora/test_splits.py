"""corpora.splits: seeded draws, writing and reading splits files, disjointness, named splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from corpora.manifest import Utterance, write_manifest
from corpora.splits import (
    SplitError,
    balanced_membership,
    draw_parts,
    draw_splits,
    draw_unused,
    make_splits,
    random_halves,
    read_record_splits,
    read_splits,
    speakers_of,
    split_utterances,
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


def test_draw_from_a_generator_continues_its_stream_and_may_keep_the_order():
    rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    first = draw_splits(6, {"a": 2, "b": 3}, rng, sort=False)
    second = draw_splits(6, {"a": 4}, rng, sort=False)
    perm, then = ref.permutation(6), ref.permutation(6)
    assert first["a"].tolist() == perm[:2].tolist() and first["b"].tolist() == perm[2:5].tolist()
    assert second["a"].tolist() == then[:4].tolist()


def test_draw_parts_keeps_the_stacking_draw():
    """Pinned: ``np.array_split(rng.permutation(11), 3)``, each part sorted, as model stacking
    drew its parts before (the generator is left where that draw left it)."""
    rng = np.random.default_rng(2)
    assert [p.tolist() for p in draw_parts(11, 3, rng)] == [[0, 2, 7, 9], [3, 5, 6, 10], [1, 4, 8]]
    assert rng.permutation(4).tolist() == [2, 1, 0, 3]
    assert [len(p) for p in draw_parts(2, 3, seed=0)] == [1, 1, 0]


def test_draw_unused_keeps_the_advreg_reference_draw():
    """Pinned (the draw ``auditor.cifar.target`` made before it moved here): successive
    ``rng.choice`` of the records no set holds yet, as the targets' splits files record them."""
    taken = {"a": np.arange(5), "b": np.array([10, 11, 12])}
    drawn = draw_unused(20, taken, {"r1": 3, "r2": 3}, seed=7)
    assert {k: v.tolist() for k, v in drawn.items()} == {"r1": [14, 16, 17], "r2": [7, 13, 15]}
    assert list(taken) == ["a", "b"]  # the taken sets are left as they are
    with pytest.raises(SplitError, match="advreg needs 10 r2 records, only 9 unused"):
        draw_unused(20, taken, {"r1": 3, "r2": 10}, seed=7, where="advreg")


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


# make_splits: speaker splits drawn from a manifest


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


# split_utterances: the per-speaker hold-out of recognizer training


def _utterances(counts: dict[str, int]) -> list[Utterance]:
    return [
        Utterance(f"{spk}_u{i}", spk, "x.wav", 1.0, "", ("sil",))
        for spk, n in counts.items()
        for i in reversed(range(n))
    ]


def test_split_utterances_keeps_its_draws():
    """Pinned (the draw of the code before it moved here from ``models.asr.train``): the
    figures' recognizers were trained on exactly these utterances, in this order."""
    split = split_utterances(_utterances({"sb": 5, "sa": 3, "sc": 4}), 1, 1, seed=11)
    assert [u.utt_id for u in split.train] == [
        "sa_u2",
        "sb_u4",
        "sb_u0",
        "sb_u2",
        "sc_u1",
        "sc_u0",
    ]
    assert [u.utt_id for u in split.dev] == ["sa_u0", "sb_u1", "sc_u2"]
    assert [u.utt_id for u in split.heldout] == ["sa_u1", "sb_u3", "sc_u3"]
    with pytest.raises(SplitError, match="speaker sa has 3 utterances; 2 held out"):
        split_utterances(_utterances({"sb": 5, "sa": 3}), 2, 1, seed=0)


def test_balanced_membership_keeps_each_record_in_half_of_the_models():
    keep = balanced_membership(7, 4, seed=3)  # (models, records)
    assert keep.shape == (4, 7) and (keep.sum(axis=0) == 2).all()
    assert (keep == balanced_membership(7, 4, seed=3)).all()
    assert not (keep == balanced_membership(7, 4, seed=4)).all()


def test_random_halves_draws_one_permutation_per_model():
    rng, again = np.random.default_rng(5), np.random.default_rng(5)
    halves = random_halves(9, 3, rng)
    assert halves.shape == (3, 9) and (halves.sum(axis=1) == 4).all()
    assert (halves == np.stack([again.permutation(9) < 4 for _ in range(3)])).all()
