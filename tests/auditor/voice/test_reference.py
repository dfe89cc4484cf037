"""auditor.voice.reference: per-audio z-scores against OUT references, the test chosen on them."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.voice.reference import (
    PER_AUDIO_SD_MIN,
    STATISTICS,
    ReferenceCalibratedTest,
    ReferenceCalibration,
    ReferenceError,
)
from auditor.voice.reference_audit import standardised


def feats(log_like: float, conf: float, per: float) -> dict:
    return {"log_like_per_frame": log_like, "mean_confidence": conf, "per": per}


def calibration(n_refs: int, values_of, trained_on=None) -> ReferenceCalibration:
    """References ``r0..`` answering audios ``a0, a1`` of speaker ``s`` with ``values_of(r, a)``."""
    answers = {f"r{r}": {a: values_of(r, a) for a in ("a0", "a1")} for r in range(n_refs)}
    trained = trained_on or {}
    return ReferenceCalibration(answers, {f"r{r}": set(trained.get(r, ())) for r in range(n_refs)})


def test_fewer_than_four_references_are_refused():
    with pytest.raises(
        ReferenceError, match="3 references; the calibrated attack needs at least 4"
    ):
        calibration(3, lambda r, a: feats(0, 0, 0))


def test_z_scores_use_the_global_sd_with_few_references_and_orient_per_downwards():
    # audio a0: refs at log-like -3, -2, -3, -2 (mean -2.5, sd 0.577); a1 shifted by +1
    cal = calibration(4, lambda r, a: feats(-3 + r % 2 + (a == "a1"), 0.5, 0.4 - 0.1 * (r % 2)))
    cal.fit_sd([("a0", "s", ()), ("a1", "s", ())])
    assert cal.sd_note_.startswith("global (4 OUT references")
    sd = np.sqrt(1 / 3)  # ddof=1 of [-3, -2, -3, -2]
    assert cal.sd_["log_like_per_frame"] == pytest.approx(sd)
    z = cal.audio_z(("a1", "s", feats(-1.5 + 2 * sd, 0.5, 0.35 - 0.1)))
    assert z[0] == pytest.approx(2.0)  # two sds above the audio's own reference mean
    assert z[2] > 0  # a lower PER than the references' is member-like
    # the same answer on the easier audio a0 is less surprising: per-audio means matter
    assert cal.audio_z(("a0", "s", feats(-1.5 + 2 * sd, 0.5, 0.25)))[0] > z[0]


def test_references_that_trained_on_the_speaker_or_are_skipped_do_not_calibrate():
    cal = calibration(5, lambda r, a: feats(float(r), 0.5, 0.3), trained_on={4: ["s"]})
    assert sorted(cal.out_values("a0", "s")[:, 0]) == [0, 1, 2, 3]  # r4 trained on s
    assert sorted(cal.out_values("a0", "s", skip={"r0"})[:, 0]) == [1, 2, 3]
    assert len(cal.out_values("a0", "t")) == 5  # another speaker: every reference is OUT
    with pytest.raises(ReferenceError, match="zz: no OUT reference"):
        cal.audio_z(("zz", "s", feats(0, 0, 0)))


def test_per_audio_sd_with_enough_references():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(PER_AUDIO_SD_MIN, 2))
    cal = calibration(PER_AUDIO_SD_MIN, lambda r, a: feats(noise[r, int(a == "a1")], 0.5, 0.3))
    cal.fit_sd([("a0", "s", ()), ("a1", "s", ())])
    assert cal.sd_ is None and cal.sd_note_.startswith("per audio")
    ref = noise[:, 0]
    x = ref.mean() + 1.5 * ref.std(ddof=1)
    assert cal.audio_z(("a0", "s", feats(x, 0.5, 0.3)))[0] == pytest.approx(1.5)


def test_user_statistics_average_the_audios_and_combine_the_signals():
    cal = calibration(4, lambda r, a: feats(-3 + r % 2, 0.5 + 0.1 * (r % 2), 0.3))
    cal.fit_sd([("a0", "s", ()), ("a1", "s", ())])
    rows = [("a0", "s", feats(-1.5, 0.6, 0.3)), ("a1", "s", feats(-3.5, 0.5, 0.3))]
    stats = cal.user_statistics(rows)
    assert set(stats) == set(STATISTICS)
    z = [cal.audio_z(r) for r in rows]
    assert stats["log_like_per_frame"] == pytest.approx((z[0][0] + z[1][0]) / 2)
    assert stats["combined"] == pytest.approx(np.mean(np.mean(z, axis=0)))


def test_the_test_picks_the_best_statistic_sets_the_threshold_and_p_values():
    rng = np.random.default_rng(1)
    y = np.array([1] * 50 + [0] * 200)
    good = rng.normal(size=250) + 2.0 * y  # separates
    stats = [
        {"log_like_per_frame": g, "mean_confidence": rng.normal(), "per": rng.normal()}
        | {"combined": g / 2 + rng.normal()}
        for g in good
    ]
    test = ReferenceCalibratedTest(fpr=0.05).fit(stats, y)
    assert test.statistic_ == "log_like_per_frame"
    assert test.auc_by_statistic_["log_like_per_frame"] > 0.9
    assert np.mean(good[y == 0] >= test.threshold_) == pytest.approx(0.05, abs=0.01)
    p = test.p_value(np.array([-10.0, test.threshold_, 10.0]))
    assert p[0] == 1.0 and p[2] == pytest.approx(1 / 201) and 0.04 < p[1] < 0.07
    assert test.describe()["reference_users"] == {"in": 50, "out": 200}
    with pytest.raises(ReferenceError, match="lack members or non-members"):
        ReferenceCalibratedTest().fit(stats[:10], y[:10])


def test_statistics_are_standardised_by_the_models_known_nonmembers():
    nonmembers = [dict.fromkeys(STATISTICS, v) for v in (1.0, 3.0)]  # mean 2, sd sqrt(2)
    (z,) = standardised([dict.fromkeys(STATISTICS, 2.0 + 2**0.5)], nonmembers, "m")
    assert all(v == pytest.approx(1.0) for v in z.values())
    with pytest.raises(ReferenceError, match="m: 1 known non-members; 2 are needed"):
        standardised(nonmembers, nonmembers[:1], "m")
