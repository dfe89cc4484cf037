"""prepare / check / validate: manifests written once, validated, skipped utterances reported."""

from __future__ import annotations

import dataclasses
import json

import pytest

from corpora.errors import CorpusError
from corpora.manifest import Utterance, read_manifest, write_manifest
from corpora.prepare import (
    check_corpus,
    make_reader,
    prepare_corpus,
    validate_manifest,
    validate_utterance,
)


def test_prepare_timit_writes_a_validated_manifest_and_corpus_json(timit_tree, tmp_path):
    out = tmp_path / "prepared"
    result = prepare_corpus(timit_tree, "timit", out, progress=False)
    assert not result.up_to_date
    utts = read_manifest(out)
    assert len(utts) == 6 and all(u.alignment is not None for u in utts)
    info = json.loads((out / "corpus.json").read_text())
    assert info["format"] == "timit" and info["source"] == str(timit_tree.resolve())
    assert info["options"] == {"include_sa": False, "lenient": False}
    assert info["counts"]["utterances"] == 6 and info["counts"]["speakers"] == 3
    assert info["counts"]["with_alignment"] == 6
    assert info["counts"]["speakers_by_gender"] == {"f": 2, "m": 1}
    assert info["counts"]["speakers_by_set"] == {"core_test": 1, "dev": 1, "train": 1}
    assert info["skipped"] == [] and info["skipped_counts"] == {}
    assert validate_manifest(out) == info["counts"]


def test_prepare_skips_when_up_to_date_and_redoes_when_the_corpus_changes(timit_tree, tmp_path):
    out = tmp_path / "prepared"
    prepare_corpus(timit_tree, "timit", out, progress=False)
    manifest_mtime = (out / "manifest.jsonl").stat().st_mtime_ns
    again = prepare_corpus(timit_tree, "timit", out, progress=False)
    assert again.up_to_date and (out / "manifest.jsonl").stat().st_mtime_ns == manifest_mtime
    assert not prepare_corpus(timit_tree, "timit", out, force=True, progress=False).up_to_date
    # other options: not up to date
    assert not prepare_corpus(timit_tree, "timit", out, include_sa=True, progress=False).up_to_date
    assert len(read_manifest(out)) == 12
    # a new speaker in the corpus: not up to date
    speaker = timit_tree / "TEST" / "DR2" / "MXYZ0"
    txt = timit_tree / "TEST" / "DR2" / "MDAB0" / "SI1027.TXT"
    speaker.mkdir()
    (speaker / "SI1027.TXT").write_text(txt.read_text())
    with pytest.raises(CorpusError, match="missing audio"):
        prepare_corpus(timit_tree, "timit", out, include_sa=True, progress=False)


def break_corpus(root):
    """Three bad utterances: missing audio, unknown phone, empty transcript; one empty speaker."""
    spk = root / "TRAIN" / "DR1" / "FCJF0"
    (spk / "SI1027.WAV").unlink()
    phn = spk / "SX127.PHN"
    phn.write_text(phn.read_text().replace(" iy\n", " zz\n"))
    (root / "TEST" / "DR2" / "MDAB0" / "SX127.TXT").write_text("0 16000\n")
    (root / "TEST" / "DR2" / "MEMPTY0").mkdir()


def test_strict_prepare_raises_the_first_problem(timit_tree, tmp_path):
    break_corpus(timit_tree)
    with pytest.raises(CorpusError) as e:
        prepare_corpus(timit_tree, "timit", tmp_path / "out", progress=False)
    assert e.value.reason == "speaker without utterances"
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_lenient_prepare_skips_and_reports_every_problem(timit_tree, tmp_path):
    break_corpus(timit_tree)
    out = tmp_path / "out"
    result = prepare_corpus(timit_tree, "timit", out, lenient=True, progress=False)
    assert result.counts["utterances"] == 3
    assert result.skipped_counts == {
        "empty transcript": 1,
        "missing audio": 1,
        "speaker without utterances": 1,
        "unknown phone": 1,
    }
    info = json.loads((out / "corpus.json").read_text())
    assert info["skipped_counts"] == result.skipped_counts
    skipped = {(s["utt_id"], s["reason"]) for s in info["skipped"]}
    assert {("FCJF0_SI1027", "missing audio"), ("FCJF0_SX127", "unknown phone")} <= skipped
    assert ("MDAB0_SX127", "empty transcript") in skipped
    unknown = next(s for s in info["skipped"] if s["reason"] == "unknown phone")
    assert unknown["line"] == 4 and unknown["path"].endswith("SX127.PHN")
    assert {u.utt_id for u in read_manifest(out)} == {"FAKS0_SI1027", "FAKS0_SX127", "MDAB0_SI1027"}


def test_check_collects_every_problem_and_writes_nothing(timit_tree):
    break_corpus(timit_tree)
    reading = check_corpus(timit_tree, "timit")
    assert len(reading.problems) == 4 and len(reading.utterances) == 3
    assert reading.counts()["utterances"] == 3


def test_prepare_kaldi(kaldi_dir, tmp_path):
    result = prepare_corpus(kaldi_dir, "kaldi", tmp_path / "m", progress=False)
    assert result.counts["utterances"] == 3 and result.counts["with_alignment"] == 0
    assert result.info["options"] == {"g2p": True, "voice": "en-us", "lenient": False}


def test_unknown_format_and_misplaced_option_are_refused(kaldi_dir):
    with pytest.raises(ValueError, match="unknown corpus format 'wsj'"):
        make_reader(kaldi_dir, "wsj")
    with pytest.raises(ValueError, match="timit format only"):
        make_reader(kaldi_dir, "kaldi", include_sa=True)


#: The good utterance's alignment (1 s at 16 kHz): (start, end, phone) in samples.
ALIGNMENT = (
    (0, 100, "sil"),
    (100, 200, "vcl"),
    (200, 300, "b"),
    (300, 900, "iy"),
    (900, 16000, "sil"),
)


@pytest.fixture
def good_utterance(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")  # validation checks existence; readers check decoding
    return Utterance(
        utt_id="S_1",
        speaker="S",
        path=str(audio),
        duration=1.0,
        text="bee",
        phones=("sil", "vcl", "b", "iy", "sil"),
        alignment=ALIGNMENT,
    )


def _with_segment(index: int, segment: tuple[int, int, str]) -> tuple:
    """:data:`ALIGNMENT` with its segment ``index`` replaced by ``segment``."""
    return (*ALIGNMENT[:index], segment, *ALIGNMENT[index + 1 :])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"path": "/nonexistent/a.wav"}, "missing audio"),
        ({"speaker": ""}, "missing speaker"),
        ({"text": "  "}, "empty transcript"),
        ({"duration": 0.0}, "corrupt audio"),
        ({"phones": ("sil", "xx", "sil"), "alignment": None}, "unknown phone"),
        ({"phones": ("vcl", "b", "iy"), "alignment": None}, "bad phones"),
        ({"alignment": _with_segment(4, (900, 16001, "sil"))}, "alignment past audio"),
        ({"alignment": _with_segment(3, (300, 300, "iy"))}, "bad alignment"),
        ({"alignment": _with_segment(3, (300, 900, "ih"))}, "bad alignment"),
    ],
)
def test_validate_utterance(good_utterance, change, reason):
    validate_utterance(good_utterance)
    with pytest.raises(CorpusError) as e:
        validate_utterance(dataclasses.replace(good_utterance, **change))
    assert e.value.reason == reason and e.value.utt_id == "S_1"


def test_validate_manifest_names_the_manifest_line(good_utterance, tmp_path):
    manifest = write_manifest(tmp_path / "m.jsonl", [good_utterance, good_utterance])
    with pytest.raises(CorpusError) as e:
        validate_manifest(manifest)
    assert (e.value.reason, e.value.path, e.value.line) == ("duplicate id", str(manifest), 2)


def test_lenient_prepare_of_a_broken_kaldi_dir(kaldi_dir, tmp_path):
    (kaldi_dir / "wav" / "s2_a.flac").unlink()
    spk2gender = kaldi_dir / "spk2gender"
    spk2gender.write_text(spk2gender.read_text() + "s9 f\n")
    with pytest.raises(CorpusError, match="speaker s9 has no utterances"):
        prepare_corpus(kaldi_dir, "kaldi", tmp_path / "strict", progress=False)
    result = prepare_corpus(kaldi_dir, "kaldi", tmp_path / "m", lenient=True, progress=False)
    assert result.counts["utterances"] == 2
    assert result.skipped_counts == {"missing audio": 1, "speaker without utterances": 1}
