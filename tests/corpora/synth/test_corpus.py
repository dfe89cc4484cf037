"""Synthetic eSpeak corpus: TIMIT layout, SPHERE audio, alignments, determinism, speaker draw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from common.hashing import file_digest
from corpora.audio import read_sphere
from corpora.phones import TIMIT61
from corpora.synth.corpus import (
    SPEAKERS_PER_PROCESS,
    draw_speakers,
    plan_sentences,
    synthesize_corpus,
)
from corpora.synth.espeak_phonemes import CLOSURE_OF_RELEASE
from corpora.synth.grammar import SHARED_SENTENCES, sentence, words_of

SPEAKER_ID = re.compile(r"^[FM][A-Z]{3}[0-9]$")


def read_segments(path: Path) -> list[tuple[int, int, str]]:
    return [
        (int(a), int(b), lab)
        for a, b, lab in (ln.split(None, 2) for ln in path.read_text().splitlines())
    ]


def test_layout_and_info(tiny_synth_corpus):
    speakers = sorted(tiny_synth_corpus.glob("TRAIN/DR[1-8]/*"))
    assert len(speakers) == 4
    for folder in speakers:
        assert SPEAKER_ID.match(folder.name), folder.name
        sents = sorted(p.stem for p in folder.glob("*.WAV"))
        assert len(sents) == 4 and {"SA1", "SA2"} <= set(sents)
        assert all(re.match(r"^S[AXI]\d+$", s) for s in sents)
        for s in sents:
            assert all((folder / f"{s}.{ext}").is_file() for ext in ("PHN", "WRD", "TXT"))
    info = json.loads((tiny_synth_corpus / "synth_info.json").read_text())
    assert info["seed"] == 7 and info["generator_version"]
    assert sorted(s["speaker_id"] for s in info["speakers"]) == sorted(f.name for f in speakers)


def test_audio_text_phones_and_words_agree(tiny_synth_corpus):
    for wav in sorted(tiny_synth_corpus.glob("TRAIN/*/*/*.WAV")):
        x, sr = read_sphere(wav)
        assert sr == 16000 and 0.5 < len(x) / sr < 10 and x.std() > 0.001
        begin, end, text = wav.with_suffix(".TXT").read_text().split(None, 2)
        assert (int(begin), int(end)) == (0, len(x))
        if wav.stem in ("SA1", "SA2"):
            assert text.strip() == SHARED_SENTENCES[int(wav.stem[-1]) - 1]
        phones = read_segments(wav.with_suffix(".PHN"))
        assert phones[0][0] == 0 and phones[-1][1] == len(x)
        assert phones[0][2] == "h#" and phones[-1][2] == "h#"
        assert all(a < b for a, b, _ in phones)
        assert all(prev[1] == nxt[0] for prev, nxt in zip(phones, phones[1:], strict=False))
        labels = [lab for *_, lab in phones]
        assert set(labels) <= set(TIMIT61)
        for i, lab in enumerate(labels):  # every release comes right after its closure
            if lab in CLOSURE_OF_RELEASE:
                assert labels[i - 1] == CLOSURE_OF_RELEASE[lab], (wav, i, labels[i - 1 : i + 1])
        words = read_segments(wav.with_suffix(".WRD"))
        assert [w for *_, w in words] == words_of(text)
        assert all(0 < a < b <= len(x) for a, b, _ in words)
        assert all(p[1] <= n[0] for p, n in zip(words, words[1:], strict=False))


def test_speakers_differ():
    speakers = draw_speakers(12, seed=3)
    assert len({s.speaker_id for s in speakers}) == 12
    for field in ("pitch", "rate", "vtl_alpha", "snr_db", "eq_hz", "rms_db"):
        assert len({getattr(s, field) for s in speakers}) > 6, field
    assert {s.gender for s in speakers} == {"F", "M"}
    assert draw_speakers(12, seed=3) == speakers
    assert draw_speakers(12, seed=4) != speakers


def test_sentence_plan():
    plan = plan_sentences(5, 10, seed=1)
    ids = [sid for sid, _ in plan]
    assert ids[:2] == ["SA1", "SA2"] and len(set(ids)) == 10
    assert sum(i.startswith("SX") for i in ids) == 5 and sum(i.startswith("SI") for i in ids) == 3
    assert len({sentence(0, i) for i in range(3000)}) > 1900  # a few thousand distinct overall
    with pytest.raises(ValueError, match="at least 2"):
        plan_sentences(0, 1, seed=1)


def test_same_seed_same_bytes_whatever_the_jobs(tmp_path):
    n = SPEAKERS_PER_PROCESS + 1  # two worker blocks, so jobs=2 really runs in parallel
    one = synthesize_corpus(tmp_path / "one", n, seed=11, utterances_per_speaker=2, jobs=1)
    two = synthesize_corpus(tmp_path / "two", n, seed=11, utterances_per_speaker=2, jobs=2)
    assert one["utterances"] == two["utterances"] == 2 * n and one["seconds"] > n
    assert file_digest(tmp_path / "one") == file_digest(tmp_path / "two")
    other = synthesize_corpus(tmp_path / "other", n, seed=12, utterances_per_speaker=2, jobs=2)
    assert other["utterances"] == 2 * n
    assert file_digest(tmp_path / "other") != file_digest(tmp_path / "one")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_speakers"):
        synthesize_corpus(tmp_path, 0, seed=1)
    with pytest.raises(ValueError, match="utterances_per_speaker"):
        synthesize_corpus(tmp_path, 1, seed=1, utterances_per_speaker=1)


def test_alignment_follows_the_audio(tiny_synth_corpus):
    """Voiceless closures are quieter than their releases; vowels are louder than h#."""
    import numpy as np

    def power(x, a, b):
        return float(np.mean(x[a:b] ** 2)) + 1e-12

    closures, vowels = [], []
    for wav in sorted(tiny_synth_corpus.glob("TRAIN/*/*/*.WAV")):
        x, _ = read_sphere(wav)
        phones = read_segments(wav.with_suffix(".PHN"))
        silence = power(x, *phones[0][:2])
        for (a, b, lab), (c, d, _) in zip(phones, phones[1:], strict=False):
            if lab in ("pcl", "tcl", "kcl"):
                closures.append(power(x, a, b) < power(x, c, d))
            if lab in ("aa", "ae", "ah", "ao", "ay", "eh", "ey", "ih", "iy", "ow", "uw"):
                vowels.append(power(x, a, b) > 10 * silence)
    assert len(closures) > 20 and np.mean(closures) > 0.9
    assert len(vowels) > 40 and np.mean(vowels) > 0.95
