"""Tests for auditor.metrics against scikit-learn and hand-worked examples."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from auditor.metrics import fpr_key, membership_metrics, tpr_at_fpr


def test_hand_example_matches_sklearn():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.6, 0.7, 0.2, 0.1, 0.3])
    m = membership_metrics(y, s, threshold=0.5, n_bootstrap=0)
    pred = (s >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["auc"] == pytest.approx(14 / 16)  # 14 of 16 member/non-member pairs ordered
    assert (m["n_members"], m["n_nonmembers"]) == (4, 4)
    assert "ci95" not in m


def test_ties_in_auc_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 5, 300).astype(float) + y  # heavy ties
    m = membership_metrics(y, s, n_bootstrap=0)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))


def test_tpr_at_fpr_is_exact_not_interpolated():
    # 10 non-members, 10 members; at FPR <= 0.1 one non-member (score 0.95) may be called.
    neg = [0.95, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02]
    pos = [0.99, 0.97, 0.9, 0.85, 0.8, 0.6, 0.55, 0.45, 0.35, 0.25]
    y = np.r_[np.ones(10), np.zeros(10)]
    s = np.r_[pos, neg]
    # FPR 0: only members above 0.95 -> 2/10. FPR 0.1: members above 0.5 -> 7/10.
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.2)
    assert tpr_at_fpr(y, s, 0.1) == pytest.approx(0.7)
    assert tpr_at_fpr(y, s, 0.15) == pytest.approx(0.7)  # still only one false positive allowed
    assert tpr_at_fpr(y, s, 1.0) == pytest.approx(1.0)


def test_tpr_at_fpr_agrees_with_roc_curve_on_random_data():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(500), np.zeros(700)].astype(int)
    s = rng.normal(size=1200) + 0.8 * y
    s[:50] = np.round(s[:50], 1)  # a few ties
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    for target in (0.001, 0.01, 0.05, 0.3):
        assert tpr_at_fpr(y, s, target) == pytest.approx(tpr[fpr <= target].max())


def test_unmeasurable_fpr_is_none_with_note():
    y = np.r_[np.ones(50), np.zeros(50)]
    s = np.linspace(0, 1, 100)
    m = membership_metrics(y, s, fprs=(0.01, 0.001), n_bootstrap=0)
    assert m["tpr_at_fpr"][fpr_key(0.01)] is None
    assert m["tpr_at_fpr"][fpr_key(0.001)] is None
    assert "1/50" in m["tpr_at_fpr_note"]
    m = membership_metrics(
        np.r_[np.ones(100), np.zeros(100)], np.linspace(1, 0, 200), n_bootstrap=50
    )
    assert m["tpr_at_fpr"]["0.01"] == pytest.approx(1.0)
    assert m["tpr_at_fpr"]["0.001"] is None
    assert list(m["ci95"]["tpr_at_fpr"]) == ["0.01"]


def test_bootstrap_interval_covers_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)

    def width(n):
        y = np.r_[np.ones(n), np.zeros(n)]
        s = rng.normal(size=2 * n) + y
        m = membership_metrics(y, s, threshold=0.5, n_bootstrap=400, seed=2)
        for name in ("accuracy", "precision", "recall", "f1", "auc"):
            low, high = m["ci95"][name]
            assert low <= m[name] <= high
        return m["ci95"]["auc"][1] - m["ci95"]["auc"][0]

    assert width(2000) < width(50)


def test_bootstrap_is_reproducible_for_a_seed():
    y = np.r_[np.ones(100), np.zeros(100)]
    s = np.random.default_rng(0).normal(size=200) + y
    a = membership_metrics(y, s, n_bootstrap=100, seed=5)["ci95"]
    b = membership_metrics(y, s, n_bootstrap=100, seed=5)["ci95"]
    assert a == b


def test_y_pred_overrides_threshold_and_roc_points():
    y = [1, 1, 0, 0]
    m = membership_metrics(y, [0.9, 0.1, 0.8, 0.2], y_pred=[1, 0, 0, 0], n_bootstrap=0)
    assert m["threshold"] is None
    assert m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["roc"]["fpr"][0] == 0.0 and m["roc"]["tpr"][-1] == 1.0


@pytest.mark.parametrize(
    "y, s, message",
    [
        ([1, 1], [0.1, 0.2], "both members"),
        ([1, 0], [0.1], "entries"),
        ([1, 2], [0.1, 0.2], "only 0"),
        ([1, 0], [np.nan, 0.2], "non-finite"),
    ],
)
def test_bad_input_is_refused(y, s, message):
    with pytest.raises(ValueError, match=message):
        membership_metrics(y, s)
