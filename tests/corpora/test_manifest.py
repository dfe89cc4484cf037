"""corpora.manifest: JSONL round trip, bad lines named, speaker filtering."""

from __future__ import annotations

import pytest

from corpora.manifest import ManifestError, Utterance, iter_manifest, read_manifest, write_manifest


def utt(utt_id: str, speaker: str, alignment=None) -> Utterance:
    return Utterance(
        utt_id=utt_id,
        speaker=speaker,
        path=f"/data/{utt_id}.wav",
        duration=1.5,
        text="bee",
        phones=("sil", "vcl", "b", "iy", "sil"),
        alignment=alignment,
        gender="f",
        meta={"dialect": "DR1"},
    )


def test_round_trip_with_and_without_alignment(tmp_path):
    aligned = utt(
        "A_1",
        "A",
        alignment=((0, 10, "sil"), (10, 20, "vcl"), (20, 30, "b"), (30, 40, "iy"), (40, 50, "sil")),
    )
    utts = [aligned, utt("B_1", "B")]
    path = write_manifest(tmp_path, utts)  # a folder: manifest.jsonl inside
    assert path == tmp_path / "manifest.jsonl"
    assert read_manifest(tmp_path) == utts
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_line_is_named(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [utt("A_1", "A")])
    path.write_text(path.read_text() + "\n" + '{"utt_id": "x"}\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: bad manifest line"):
        list(iter_manifest(path))


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.jsonl")


def test_read_only_some_speakers(tmp_path):
    write_manifest(tmp_path, [utt("A_1", "A"), utt("B_1", "B"), utt("A_2", "A")])
    assert [u.utt_id for u in read_manifest(tmp_path, speakers=["A"])] == ["A_1", "A_2"]
    with pytest.raises(ManifestError, match="speakers not in manifest: C"):
        read_manifest(tmp_path, speakers=["A", "C"])
