"""Tests for auditor.voice.features: edit counts against the reference, per-user aggregation."""

import numpy as np
import pytest

from auditor.voice.features import (
    AGGREGATES,
    UTTERANCE_FEATURES,
    FeatureError,
    user_feature_names,
    user_features,
    utterance_features,
)

ANSWER = {
    "phones": ["sil", "k", "ae", "t", "s", "sil"],
    "log_like_per_frame": -3.5,
    "frames": 80,
    "phone_confidences": [0.9, 0.6, 0.8, 0.7, 0.4, 0.95],
}
REFERENCE = ["sil", "k", "ae", "t", "sil"]


def test_utterance_features_count_edits_on_the_39_folding():
    f = utterance_features(ANSWER, REFERENCE)
    assert (f["subs"], f["ins"], f["dels"]) == (0, 1, 0)
    assert f["per"] == pytest.approx(1 / 5)
    assert f["min_confidence"] == 0.4
    assert f["mean_confidence"] == pytest.approx(np.mean(ANSWER["phone_confidences"]))
    assert f["frames_per_ref_phone"] == pytest.approx(80 / 5)
    assert list(f) == list(UTTERANCE_FEATURES)
    # closures fold into silence on the 39 set: no error for vcl against sil
    folded = utterance_features(ANSWER | {"phones": ["sil", "k", "ae", "t", "vcl"]}, REFERENCE)
    assert folded["per"] == 0.0


def test_bad_answers_and_missing_references_are_named():
    with pytest.raises(FeatureError, match="utt7: no reference phones"):
        utterance_features(ANSWER, [], "utt7")
    with pytest.raises(FeatureError, match="utt8: answer lacks log_like_per_frame"):
        utterance_features({"phones": ["sil"], "frames": 3}, REFERENCE, "utt8")


def test_user_features_aggregate_each_feature_over_the_audios():
    rows = [utterance_features(ANSWER | {"log_like_per_frame": v}, REFERENCE) for v in (-1, -2, -6)]
    x = user_features(rows)
    names = user_feature_names()
    assert x.shape == (len(UTTERANCE_FEATURES) * len(AGGREGATES),) == (len(names),)
    got = dict(zip(names, x, strict=True))
    assert got["sum_log_like_per_frame"] == -9
    assert got["median_log_like_per_frame"] == -2
    assert got["min_log_like_per_frame"] == -6
    assert got["var_log_like_per_frame"] == pytest.approx(np.var([-1, -2, -6]))
    with pytest.raises(FeatureError):
        user_features([])
