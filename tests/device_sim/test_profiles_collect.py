"""Device profiles (memory ceiling, int8 quantization) and collection mode's Kaldi data dir."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from device_sim.collect import KaldiCollector
from device_sim.profiles import ModelTooLarge, apply_profile, get_profile, model_nbytes
from models.asr.recognizer import load_recognizer


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="rpi3"):
        get_profile("rpi9")


def test_quantization_shrinks_the_model_and_still_decodes(tiny_checkpoint, speech):
    rec = load_recognizer(tiny_checkpoint)
    samples, sr = speech
    reference = rec.transcribe(samples, sr)
    report = apply_profile(rec, get_profile("host", quantize=True))
    assert report["quantized"] and report["model_bytes"] < 0.5 * report["model_bytes_float"]
    assert model_nbytes(rec.network) == report["model_bytes"]
    hyp = rec.transcribe(samples, sr)
    assert hyp.frames == reference.frames and len(hyp.phones) > 0
    assert (
        abs(hyp.log_like_per_frame - reference.log_like_per_frame)
        < 0.5 * abs(reference.log_like_per_frame) + 1
    )


def test_model_that_does_not_fit_is_refused(tiny_checkpoint):
    rec = load_recognizer(tiny_checkpoint)
    tiny_board = dataclasses.replace(get_profile("rpi3"), model_memory_mb=0.001)
    with pytest.raises(ModelTooLarge, match="rpi3 allows"):
        apply_profile(rec, tiny_board)


def test_collected_dir_reads_back_as_a_kaldi_corpus(tmp_path, recognizer, speech):
    from corpora.prepare import read_corpus

    samples, sr = speech
    hyp = recognizer.transcribe(samples, sr)
    col = KaldiCollector(tmp_path / "kept")
    first = col.add("alice", samples, sr, hyp.phones, None)
    second = col.add("bob", samples, sr, hyp.phones, "please turn the lights on")
    assert col.add("bob", samples, sr, ["sil"], None) is None  # silence without text: not kept
    assert KaldiCollector(tmp_path / "kept").count == 2  # numbering continues in a new run
    utts = {u.utt_id: u for u in read_corpus(tmp_path / "kept", "kaldi").utterances}
    assert set(utts) == {first, second}
    assert utts[first].speaker == "alice" and utts[second].speaker == "bob"
    spoken = [p for p in hyp.phones if p not in {"sil", "cl", "vcl", "epi"}]
    got = [p for p in utts[first].phones if p not in {"sil", "cl", "vcl", "epi"}]
    expected = [{"dx": "t"}.get(p, p) for p in spoken]  # dx has no ARPAbet spelling of its own
    assert got == [
        q for p in expected for q in ({"el": ["ax", "l"], "en": ["ax", "n"]}.get(p, [p]))
    ]
    assert utts[second].text == "please turn the lights on"
    assert np.isclose(utts[first].duration, len(samples) / sr, atol=1e-3)
