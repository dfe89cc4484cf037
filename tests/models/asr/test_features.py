"""Features: fbank equals torchaudio's Kaldi fbank, splicing, CMVN, the cache, audio checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torchaudio.compliance import kaldi

from models.asr.config import resolve_config
from models.asr.features import (
    FeatureCache,
    RecognizerInputError,
    SplicedFrames,
    apply_cmvn,
    check_audio,
    cmvn_stats,
    fbank,
    fbank_config_key,
    num_frames,
    splice,
)

FEAT = resolve_config()["features"]


def test_fbank_matches_torchaudio_kaldi():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    ours = fbank(x, FEAT)
    ref = kaldi.fbank(
        torch.from_numpy(x)[None] * 32768.0,
        num_mel_bins=40,
        frame_length=25.0,
        frame_shift=10.0,
        sample_frequency=16000,
        dither=0.0,
        energy_floor=0.0,
    )
    assert ours.shape == (98, 40) == (num_frames(16000, FEAT), 40)
    assert torch.equal(ours, ref)


def test_splice_repeats_edges_and_gather_agrees():
    a = torch.arange(12.0).reshape(4, 3)  # (frames, dim)
    b = torch.arange(100.0, 106.0).reshape(2, 3)
    s = splice(a, 1)
    assert s.shape == (4, 9)
    assert torch.equal(s[0], torch.cat([a[0], a[0], a[1]]))
    assert torch.equal(s[3], torch.cat([a[2], a[3], a[3]]))
    frames = SplicedFrames([a, b], context=1)
    assert len(frames) == 6 and frames.input_dim == 9
    idx = torch.tensor([5, 0, 3, 4])
    expected = torch.cat([splice(a, 1), splice(b, 1)])[idx]
    assert torch.equal(frames.gather(idx), expected)


def test_cmvn_normalises():
    f = torch.randn(50, 4) * 3 + 7
    n = apply_cmvn(f, *cmvn_stats([f]))
    assert torch.allclose(n.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(n.std(0, unbiased=False), torch.ones(4), atol=1e-4)


@pytest.mark.parametrize(
    ("x", "sr", "code"),
    [
        (np.zeros(0), 16000, "empty_audio"),
        (np.zeros((2, 800)), 16000, "empty_audio"),
        (np.zeros(1000), 16000, "too_short"),
        (np.array([0.0, np.nan] * 2000), 16000, "non_finite"),
        (np.zeros(4000), 44100, "bad_sample_rate"),
    ],
)
def test_check_audio_codes(x, sr, code):
    with pytest.raises(RecognizerInputError) as e:
        check_audio(x, sr, FEAT, min_frames=10)
    assert e.value.code == code


def test_cache_hits_misses_and_never_serves_stale(tone_corpus, tmp_path):
    utts = tone_corpus[:3]
    cache = FeatureCache(tmp_path)
    first, skipped, stats = cache.load(utts, FEAT, 10)
    assert skipped == [] and stats["hits"] == 0 and stats["misses"] == 3
    again, _, stats = cache.load(utts, FEAT, 10)
    assert stats == stats | {"hits": 3, "misses": 0}
    assert all(torch.equal(first[u.utt_id], again[u.utt_id]) for u in utts)
    # a changed fbank config uses another cache file
    other = FEAT | {"num_mel_bins": 23}
    feats, _, stats = cache.load(utts, other, 10)
    assert stats["misses"] == 3 and feats[utts[0].utt_id].shape[1] == 23
    assert cache.path_for(other) != cache.path_for(FEAT)
    # a rewritten audio file is recomputed, not read from the cache
    x = np.fromfile(utts[0].path, dtype=np.uint8)
    st = os.stat(utts[0].path)
    x.tofile(utts[0].path)
    os.utime(utts[0].path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _, _, stats = cache.load(utts, FEAT, 10)
    assert stats["hits"] == 2 and stats["misses"] == 1


def test_cache_file_name_keeps_its_value():
    """Pinned: the fbank cache of a config keeps its file name (``FEATURE_VERSION`` 1); keys that
    do not change raw fbanks, and their order, leave it alone."""
    key = fbank_config_key(FEAT)
    assert key == "d159c7bcea4d5786"
    assert fbank_config_key(dict(reversed(list(FEAT.items()))) | {"cmvn": "none"}) == key
    assert fbank_config_key(FEAT | {"num_mel_bins": 23}) != key
    assert FeatureCache(None).path_for(FEAT) is None
