"""State targets from alignments / flat start, and HMM parameter estimation."""

from __future__ import annotations

import numpy as np
import pytest

from corpora.phones import UnknownPhoneError
from models.asr.config import ConfigError, load_config, resolve_config
from models.asr.hmm import HmmParams, phone_ids
from models.asr.targets import (
    alignment_states,
    flat_start_states,
    speech_span,
    split_states,
    states_to_phone_segments,
)
from models.asr.viterbi import AlignmentError

FEAT = resolve_config()["features"]


def test_split_states_evenly_inside_each_segment():
    seg = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    out = split_states(seg, np.array([4, 7, 4]), 3)
    assert out.tolist() == [12, 12, 13, 13, 14, 14, 21, 22, 23, 12, 13]


def test_alignment_states_use_frame_centres():
    # frame t centre = 160 t + 200 samples; phone 'aa' covers frames 0-2, 'sil' frames 3-5
    align = [(0, 680, "aa"), (680, 1200, "sil")]
    states = alignment_states(align, 6, FEAT, 3)
    aa, sil = phone_ids(["aa", "sil"])
    assert states.tolist() == [aa * 3, aa * 3 + 1, aa * 3 + 2, sil * 3, sil * 3 + 1, sil * 3 + 2]


def test_flat_start_and_its_limits():
    states = flat_start_states(np.array([1, 2]), 7, 3)
    assert states.tolist() == [3, 3, 4, 5, 6, 7, 8]
    with pytest.raises(AlignmentError):
        flat_start_states(np.array([1, 2]), 5, 3)


def test_flat_start_gives_quiet_edges_to_silence():
    energy = np.r_[np.zeros(10), np.full(12, 8.0), np.zeros(6)]  # (28,) speech in frames 10-21
    assert speech_span(energy) == (10, 21)
    sil, a, b = 5, 1, 2
    states = flat_start_states(np.array([sil, a, b, sil]), 28, 3, speech_span(energy))
    phones = states // 3
    assert phones.tolist() == [sil] * 10 + [a] * 6 + [b] * 6 + [sil] * 6
    # a span too short for the inner phones falls back to the equal cut
    plain = flat_start_states(np.array([sil, a, b, sil]), 28, 3)
    assert np.array_equal(flat_start_states(np.array([sil, a, b, sil]), 28, 3, (12, 14)), plain)


def test_states_to_segments_splits_repeated_phones():
    # phone 1 twice in a row (re-entry from its last state), then phone 0
    states = np.array([3, 4, 5, 3, 3, 4, 5, 0, 1, 2])
    assert states_to_phone_segments(states, 3) == [(1, 0, 3), (1, 3, 7), (0, 7, 10)]


def test_phone_ids_refuse_unknown():
    with pytest.raises(UnknownPhoneError, match="'q'"):
        phone_ids(["sil", "q"])


def test_hmm_estimates_from_counts():
    paths = [np.array([0, 0, 0, 1, 2, 2]), np.array([3, 4, 5])]
    phones = [np.array([0]), np.array([1, 1])]
    hmm = HmmParams.estimate(paths, phones, states_per_phone=3, lm_smoothing=0.0, n_phones=2)
    # state 0: 2 stays + 1 pseudo, 1 leave + 1 pseudo
    assert np.exp(hmm.log_self[0]) == pytest.approx(3 / 5)
    assert np.exp(hmm.log_self) + np.exp(hmm.log_next) == pytest.approx(np.ones(6))
    assert np.exp(hmm.log_priors).sum() == pytest.approx(1.0)
    assert np.exp(hmm.log_priors[0]) == pytest.approx(4 / 15)
    assert np.exp(hmm.lm_start).tolist() == pytest.approx([0.5, 0.5])
    assert np.exp(hmm.lm_bigram[1, 1]) == pytest.approx(1.0)
    assert np.exp(hmm.lm_bigram[0]).tolist() == pytest.approx([0.5, 0.5])  # never followed
    back = HmmParams.from_dict(hmm.to_dict())
    assert np.array_equal(back.lm_bigram, hmm.lm_bigram)


def test_config_refuses_unknown_keys_and_modes(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'hiden'"):
        resolve_config({"network": {"hiden": [3]}})
    with pytest.raises(ConfigError, match="features.cmvn"):
        resolve_config({"features": {"cmvn": "per-day"}})
    p = tmp_path / "c.yaml"
    p.write_text("network:\n  hidden: [1024, 1024, 1024, 1024]\n")
    assert load_config(p)["network"]["hidden"] == [1024] * 4
    assert load_config(p, {"training": {"epochs": 1}})["training"]["epochs"] == 1
