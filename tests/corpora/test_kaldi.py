"""Kaldi data dir reader: files joined per utterance, phone sources, bad input, the real dev set."""

from __future__ import annotations

import pytest

from corpora.errors import CorpusError
from corpora.kaldi import KaldiReader


def read_all(data_dir, **options):
    reader = KaldiReader(data_dir, **options)
    refs, problems = reader.scan()
    return [reader.load(r) for r in refs], problems


def test_reads_a_data_dir(kaldi_dir):
    utts, problems = read_all(kaldi_dir)
    assert problems == []
    assert [u.utt_id for u in utts] == ["s1_a", "s1_b", "s2_a"]
    a = utts[0]
    assert a.speaker == "s1" and a.gender == "f" and a.meta["age"] == 20
    assert utts[2].gender == "m" and utts[2].meta["age"] == 21
    assert a.path == str((kaldi_dir / "wav" / "s1_a.flac").resolve())  # relative path resolved
    assert a.duration == pytest.approx(0.5) and a.sample_rate == 16000
    assert a.alignment is None
    assert a.meta["phones_from"] == "text-phone"
    # BEE CITY from text-phone: closures before b and t, AH0-free so no schwa; sil at the ends
    assert list(a.phones) == ["sil", "vcl", "b", "iy", "s", "ih", "cl", "t", "iy", "sil"]


def test_lexicon_gives_phones_without_text_phone(tmp_path, builders):
    d = builders.make_kaldi_dir(tmp_path / "k", text_phone=False)
    utts, _ = read_all(d)
    assert all(u.meta["phones_from"] == "lexicon" for u in utts)
    # the first of CITY's two pronunciations is used
    assert list(utts[1].phones) == ["sil", "s", "ih", "cl", "t", "iy", "sil"]


def test_espeak_g2p_pronounces_words_missing_from_the_lexicon(tmp_path, builders):
    d = builders.make_kaldi_dir(
        tmp_path / "k", utterances={"u1": ("s1", "BEE CAT")}, text_phone=False
    )
    (utt,), problems = read_all(d)
    assert problems == [] and utt.meta["phones_from"] == "lexicon+g2p"
    assert list(utt.phones[:4]) == ["sil", "vcl", "b", "iy"]
    assert list(utt.phones[4:-1]) == ["cl", "k", "ae", "cl", "t"]  # eSpeak's "cat"


def test_wav_audio_and_absolute_paths(tmp_path, builders):
    d = builders.make_kaldi_dir(tmp_path / "k", audio_format="WAV")
    scp = d / "wav.scp"
    scp.write_text(scp.read_text().replace(" wav/", f" {d}/wav/"))
    utts, problems = read_all(d)
    assert problems == [] and utts[0].path.endswith("s1_a.wav")


def test_piped_wav_scp_is_not_supported(kaldi_dir):
    scp = kaldi_dir / "wav.scp"
    scp.write_text(scp.read_text().replace("s1_b wav/s1_b.flac", "s1_b sox x.wav -t wav - |"))
    reader = KaldiReader(kaldi_dir)
    refs, _ = reader.scan()
    with pytest.raises(CorpusError) as e:
        reader.load(refs[1])
    assert (e.value.reason, e.value.path, e.value.line) == ("unsupported audio", str(scp), 2)
    assert "not supported" in str(e.value)


def test_missing_audio_file_names_the_wav_scp_line(kaldi_dir):
    (kaldi_dir / "wav" / "s2_a.flac").unlink()
    reader = KaldiReader(kaldi_dir)
    refs, _ = reader.scan()
    with pytest.raises(CorpusError) as e:
        reader.load(refs[2])
    assert (e.value.reason, e.value.line, e.value.utt_id) == ("missing audio", 3, "s2_a")
    assert str(kaldi_dir / "wav.scp") in str(e.value)


def test_corrupt_audio_names_the_audio_file(kaldi_dir):
    flac = kaldi_dir / "wav" / "s1_a.flac"
    flac.write_bytes(b"not audio at all" * 10)
    reader = KaldiReader(kaldi_dir)
    refs, _ = reader.scan()
    with pytest.raises(CorpusError) as e:
        reader.load(refs[0])
    assert (e.value.reason, e.value.path) == ("corrupt audio", str(flac))


def test_empty_transcript_names_the_text_line(kaldi_dir):
    text = kaldi_dir / "text"
    text.write_text(text.read_text().replace("s1_b CITY", "s1_b"))
    refs, problems = KaldiReader(kaldi_dir).scan()
    assert [r.utt_id for r in refs] == ["s1_a", "s2_a"]
    assert [(p.reason, p.path, p.line, p.utt_id) for p in problems] == [
        ("empty transcript", str(text), 2, "s1_b")
    ]


def test_speaker_in_spk2gender_without_utterances(kaldi_dir):
    spk2gender = kaldi_dir / "spk2gender"
    spk2gender.write_text(spk2gender.read_text() + "s9 m\n")
    refs, problems = KaldiReader(kaldi_dir).scan()
    assert len(refs) == 3
    assert [(p.reason, p.path, p.line) for p in problems] == [
        ("speaker without utterances", str(spk2gender), 3)
    ]
    assert "s9" in str(problems[0])


def test_word_with_no_pronunciation_names_word_utterance_and_line(tmp_path, builders):
    d = builders.make_kaldi_dir(
        tmp_path / "k",
        utterances={"u1": ("s1", "BEE"), "u2": ("s1", "BEE ZORBLAX")},
        text_phone=False,
    )
    reader = KaldiReader(d, g2p=False)
    refs, _ = reader.scan()
    with pytest.raises(CorpusError) as e:
        reader.load(refs[1])
    assert (e.value.reason, e.value.path, e.value.line) == ("no pronunciation", str(d / "text"), 2)
    assert "ZORBLAX" in str(e.value) and "[u2]" in str(e.value)


@pytest.mark.parametrize(
    ("file", "old", "new", "utt", "reason", "line"),
    [  # an unknown phone, a word count that disagrees, a duration that disagrees
        ("text-phone", "s1_b.0\tS_B IH1_I", "s1_b.0\tS_B QQ1_I", 1, "unknown phone", 3),
        ("text", "s1_b CITY", "s1_b CITY BEE", 1, "phone count mismatch", None),
        ("utt2dur", "s1_a 0.5000", "s1_a 0.9000", 0, "duration mismatch", 1),
    ],
)
def test_a_bad_line_fails_loading_its_utterance_naming_it(
    kaldi_dir, file, old, new, utt, reason, line
):
    path = kaldi_dir / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    reader = KaldiReader(kaldi_dir)
    refs, _ = reader.scan()
    with pytest.raises(CorpusError) as e:
        reader.load(refs[utt])
    assert e.value.reason == reason
    if line is not None:
        assert e.value.line == line


def test_duplicate_ids_and_orphans_are_reported(kaldi_dir):
    utt2spk = kaldi_dir / "utt2spk"
    utt2spk.write_text(utt2spk.read_text() + "s1_a s2\n")
    text = kaldi_dir / "text"
    text.write_text(text.read_text() + "s3_x BEE\n")
    refs, problems = KaldiReader(kaldi_dir).scan()
    assert [r.utt_id for r in refs] == ["s1_b", "s2_a"]
    found = {(p.reason, p.path, p.line, p.utt_id) for p in problems}
    assert found == {
        ("duplicate id", str(utt2spk), 4, "s1_a"),
        ("missing audio", str(text), 4, "s3_x"),
    }


def test_missing_required_file_stops_the_scan(kaldi_dir):
    (kaldi_dir / "utt2spk").unlink()
    with pytest.raises(CorpusError, match="utt2spk"):
        KaldiReader(kaldi_dir).scan()


def test_reads_the_real_speechocean762_dev_subset(speechocean_dir):
    utts, problems = read_all(speechocean_dir)
    assert problems == []
    assert len(utts) == 1200 and len({u.speaker for u in utts}) == 60
    assert sum(u.duration for u in utts) == pytest.approx(4729.2, abs=0.1)  # README: 4,729.2 s
    assert {u.gender for u in utts} == {"f", "m"}
    assert all(u.meta["phones_from"] == "text-phone" for u in utts)
    first = next(u for u in utts if u.utt_id == "000530003")
    assert first.text == "MIKE LIKES THE ORANGE ONE" and first.speaker == "0053"
    assert list(first.phones[:6]) == ["sil", "m", "ay", "cl", "k", "l"]


def test_segments_files_are_refused(kaldi_dir):
    (kaldi_dir / "segments").write_text("s1_a rec1 0.0 0.5\n")
    with pytest.raises(CorpusError, match="segments of longer recordings are not supported"):
        KaldiReader(kaldi_dir).scan()
