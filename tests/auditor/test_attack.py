"""Tests for auditor.attack: the forest pipeline and the calibrated per-user test."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from auditor.attack import CalibratedUserTest, make_forest_attack


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
