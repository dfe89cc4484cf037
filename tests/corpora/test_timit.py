"""TIMIT tree reader: layouts, phone folding, SA handling, standard lists, bad input."""

from __future__ import annotations

import pytest
import soundfile as sf

from corpora.audio import read_audio
from corpora.errors import CorpusError
from corpora.timit import TimitReader
from corpora.timit_lists import CORE_TEST_SPEAKERS, DEV_SPEAKERS, timit_set


def read_all(root, **options):
    reader = TimitReader(root, **options)
    refs, problems = reader.scan()
    return [reader.load(r) for r in refs], problems


@pytest.mark.parametrize("lower", [False, True], ids=["upper", "lower"])
def test_reads_both_layouts(tmp_path, builders, lower):
    root = builders.make_timit_tree(tmp_path / "t", lower=lower)
    utts, problems = read_all(root)
    assert problems == []
    assert [u.utt_id for u in utts] == [
        f"{spk}_{sent}" for spk in ("MDAB0", "FAKS0", "FCJF0") for sent in ("SI1027", "SX127")
    ]  # TEST before TRAIN, then dialect and speaker folders in order
    u = next(u for u in utts if u.utt_id == "MDAB0_SI1027")
    assert u.speaker == "MDAB0" and u.gender == "m"
    assert u.meta["split"] == "TEST" and u.meta["dialect"] == "DR2"
    assert u.meta["timit_set"] == "core_test"
    assert next(u for u in utts if u.speaker == "FAKS0").meta["timit_set"] == "dev"
    assert next(u for u in utts if u.speaker == "FCJF0").gender == "f"
    assert u.duration == pytest.approx(1.0) and u.sample_rate == 16000
    assert u.text == "Bee city."
    assert list(u.phones) == builders.PHONES48
    # q is dropped (its samples are not merged into a neighbour), the rest keep their bounds
    assert u.alignment[0] == (0, 2000, "sil")
    assert (5600, 8000, "ix") in u.alignment and all(p != "q" for _, _, p in u.alignment)
    assert u.meta["words"] == [[2000, 5000, "bee"], [5600, 13000, "city"]]
    assert u.path.endswith(("SI1027.WAV", "si1027.wav"))


def test_sa_sentences_excluded_by_default_for_real_timit(timit_tree):
    utts, _ = read_all(timit_tree)
    assert not any(u.meta["sentence"].startswith("SA") for u in utts)
    assert TimitReader(timit_tree).options() == {"include_sa": False}
    utts, _ = read_all(timit_tree, include_sa=True)
    assert sum(u.meta["sentence"] in ("SA1", "SA2") for u in utts) == 6


def test_sa_sentences_included_for_a_synthetic_corpus(timit_tree):
    (timit_tree / "synth_info.json").write_text("{}")
    utts, _ = read_all(timit_tree)
    assert len(utts) == 12
    assert TimitReader(timit_tree).options() == {"include_sa": True}
    utts, _ = read_all(timit_tree, include_sa=False)
    assert len(utts) == 6


def load_one(root, sentence="SI1027", speaker="FCJF0"):
    reader = TimitReader(root)
    refs, _ = reader.scan()
    ref = next(r for r in refs if r.sentence == sentence and r.speaker == speaker)
    return reader.load(ref)


def speaker_dir(root):
    return root / "TRAIN" / "DR1" / "FCJF0"


def test_corrupt_sphere_header_names_the_file(timit_tree):
    wav = speaker_dir(timit_tree) / "SI1027.WAV"
    raw = bytearray(wav.read_bytes())
    raw[8:15] = b"garbage"  # the header-size line
    wav.write_bytes(bytes(raw))
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert e.value.reason == "corrupt audio" and e.value.path == str(wav)
    assert "SPHERE" in str(e.value)


def test_shorten_sphere_is_refused_with_the_audio_module_message(timit_tree):
    wav = speaker_dir(timit_tree) / "SI1027.WAV"
    raw = wav.read_bytes().replace(b"sample_coding -s3 pcm", b"sample_coding -s7 shorten")
    wav.write_bytes(raw)
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert e.value.reason == "unsupported audio"
    assert "compressed" in str(e.value) and "sph2pipe" in str(e.value)


def test_phn_past_the_audio_names_file_and_line(timit_tree):
    phn = speaker_dir(timit_tree) / "SI1027.PHN"
    lines = phn.read_text().splitlines()
    lines[-1] = "13000 16400 h#"
    phn.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert (e.value.reason, e.value.path, e.value.line) == ("alignment past audio", str(phn), 9)
    assert f"{phn}:9" in str(e.value) and "16000 samples" in str(e.value)


def test_unknown_phone_names_file_and_line(timit_tree):
    phn = speaker_dir(timit_tree) / "SI1027.PHN"
    phn.write_text(phn.read_text().replace("3500 5000 iy", "3500 5000 xx"))
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert (e.value.reason, e.value.line) == ("unknown phone", 4)
    assert "'xx'" in str(e.value)


def test_empty_transcript_names_file_and_line(timit_tree):
    txt = speaker_dir(timit_tree) / "SI1027.TXT"
    txt.write_text("0 16000 \n")
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert (e.value.reason, e.value.path, e.value.line) == ("empty transcript", str(txt), 1)


def test_missing_audio_file(timit_tree):
    (speaker_dir(timit_tree) / "SI1027.WAV").unlink()
    with pytest.raises(CorpusError) as e:
        load_one(timit_tree)
    assert e.value.reason == "missing audio" and e.value.path.endswith("SI1027.WAV")
    assert e.value.utt_id == "FCJF0_SI1027"


def test_speaker_without_utterances_is_a_scan_problem(timit_tree):
    empty = timit_tree / "TRAIN" / "DR1" / "MXYZ0"
    empty.mkdir()
    refs, problems = TimitReader(timit_tree).scan()
    assert [(p.reason, p.path) for p in problems] == [("speaker without utterances", str(empty))]
    assert len(refs) == 6


def test_root_without_train_or_test_is_refused(tmp_path, builders):
    with pytest.raises(CorpusError, match="no TRAIN or TEST folder [(]TIMIT layout[)]$"):
        TimitReader(tmp_path).scan()
    builders.make_timit_tree(tmp_path / "TIMIT", speakers=builders.SPEAKERS[:1])
    with pytest.raises(CorpusError, match=f"did you mean {tmp_path / 'TIMIT'}"):
        TimitReader(tmp_path).scan()


def test_standard_speaker_lists():
    assert len(DEV_SPEAKERS) == len(set(DEV_SPEAKERS)) == 50
    assert len(CORE_TEST_SPEAKERS) == len(set(CORE_TEST_SPEAKERS)) == 24
    assert not set(DEV_SPEAKERS) & set(CORE_TEST_SPEAKERS)
    # the core test set has 2 men and 1 woman from each of the 8 dialect regions
    assert sum(s.startswith("F") for s in CORE_TEST_SPEAKERS) == 8
    assert timit_set("test", "mdab0") == "core_test"
    assert timit_set("TEST", "FAKS0") == "dev"
    assert timit_set("TEST", "MZZZ0") == "test"
    assert timit_set("TRAIN", "MDAB0") == "train"


def test_converted_riff_copies_serve_as_audio(timit_tree):
    spk = speaker_dir(timit_tree)
    for sentence in ("SI1027", "SX127"):
        sphere = spk / f"{sentence}.WAV"
        samples, sr = read_audio(sphere)
        sf.write(spk / f"{sentence}.WAV.wav", samples, sr, subtype="PCM_16")
    (spk / "SI1027.WAV").unlink()
    utts, problems = read_all(timit_tree)
    assert problems == [] and len(utts) == 6  # no stray "SI1027.WAV" utterance
    mine = {u.utt_id: u.path for u in utts if u.speaker == "FCJF0"}
    assert mine["FCJF0_SI1027"].endswith("SI1027.WAV.wav")
    assert mine["FCJF0_SX127"].endswith("SX127.WAV")  # the SPHERE original is preferred


def test_reads_the_synthetic_corpus_with_its_sa_sentences(tiny_synth_corpus):
    utts, problems = read_all(tiny_synth_corpus)
    assert problems == []
    assert len(utts) == 16 and len({u.speaker for u in utts}) == 4  # 4 speakers x 4 sentences
    assert sum(u.meta["sentence"] in ("SA1", "SA2") for u in utts) == 8
    for u in utts:
        n_samples = round(u.duration * u.sample_rate)
        assert u.alignment[0][2] == u.alignment[-1][2] == "sil"
        assert all(0 <= b < e <= n_samples for b, e, _ in u.alignment)
        assert u.gender in ("m", "f") and u.text
