"""Tests for auditor.voice.attack: the forest pipeline and the calibrated per-user test."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from auditor.voice.attack import CalibratedUserTest, make_forest_attack


def _users(n, shift, seed):
    """n IN and n OUT users, 5 features; IN users have feature 3 lower by ``shift``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, 5))  # (2n, 5)
    y = np.array([1] * n + [0] * n)
    x[:n, 3] -= shift
    return x, y


def test_calibrated_test_finds_the_separating_feature_and_orders_users():
    X, y = _users(60, 2.0, 0)
    names = [f"f{i}" for i in range(5)]
    test = CalibratedUserTest(feature_names=names).fit(X, y)
    assert test.score_name_ == "f3" and test.direction_ == -1.0
    Xt, yt = _users(40, 2.0, 1)
    llr, p = test.log_likelihood_ratio(Xt), test.p_value(Xt)
    assert roc_auc_score(yt, llr) > 0.85
    assert np.median(p[yt == 1]) < 0.1 < np.median(p[yt == 0])
    assert ((test.predict(Xt) == yt).mean()) > 0.75
    proba = test.predict_proba(Xt)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_calibrated_test_needs_both_classes_and_a_fit():
    X, _ = _users(5, 1.0, 0)
    with pytest.raises(ValueError, match="both 0"):
        CalibratedUserTest().fit(X, np.ones(10, dtype=int))
    with pytest.raises(Exception, match="not fitted"):
        CalibratedUserTest().p_value(X)


def test_forest_pipeline_follows_sklearn_conventions():
    X, y = _users(50, 1.5, 2)
    forest = make_forest_attack(n_estimators=50, random_state=0)
    fitted = clone(forest).fit(X, y)
    Xt, yt = _users(50, 1.5, 3)
    assert roc_auc_score(yt, fitted.predict_proba(Xt)[:, 1]) > 0.8
    again = clone(forest).fit(X, y)
    assert np.array_equal(again.predict_proba(Xt), fitted.predict_proba(Xt))  # seeded


def test_calibrated_test_ranks_users_monotonically_when_in_and_out_spreads_differ():
    rng = np.random.default_rng(4)
    # IN users tightly around 3, OUT users widely around 0: per-side Gaussians would call a
    # user at 10 (far more member-like than any IN user) a non-member
    X = np.concatenate([rng.normal(3.0, 0.2, 40), rng.normal(0.0, 2.0, 40)])[:, None]
    y = np.array([1] * 40 + [0] * 40)
    test = CalibratedUserTest().fit(X, y)
    assert test.in_std_ < test.out_std_ / 5
    grid = np.linspace(-10.0, 12.0, 200)[:, None]  # increasing scores
    llr = test.log_likelihood_ratio(grid)
    assert np.all(np.diff(llr) > 0)
    assert np.all(np.diff(test.p_value(grid)) <= 0)
    assert test.predict([[10.0], [-10.0]]).tolist() == [1, 0]
    # ranking by the LLR is ranking by the score: extreme members count as members
    Xt = np.array([[12.0], [9.0], [3.1], [2.9], [0.5], [-0.5], [-4.0], [-6.0]])
    yt = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    assert roc_auc_score(yt, test.log_likelihood_ratio(Xt)) == 1.0
