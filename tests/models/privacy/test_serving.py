import numpy as np
import pytest

from models.privacy.serving import harden

P = np.array([[0.55, 0.3, 0.1, 0.05], [0.26, 0.25, 0.25, 0.24]])


def test_none_is_identity():
    np.testing.assert_array_equal(harden(P), P)


def test_topk_keeps_k_and_renormalises():
    out = harden(P, "topk", k=2)
    assert ((out > 0).sum(axis=1) == 2).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0, :2], np.array([0.55, 0.3]) / 0.85)
    with pytest.raises(ValueError, match="k"):
        harden(P, "topk", k=5)


def test_rounding_leaves_coarse_values_summing_to_one():
    out = harden(P, "rounding", decimals=1)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0], [0.6, 0.3, 0.1, 0.0])
    many = np.random.default_rng(0).dirichlet(np.ones(4), 500)
    out = harden(many, "rounding", decimals=1)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out * 10, np.round(out * 10))  # on the 0.1 grid
    assert np.abs(out - many).max() < 0.1


def test_label_only_and_alias():
    expected = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    np.testing.assert_array_equal(harden(P, "label_only"), expected)
    np.testing.assert_array_equal(harden(P, "transcript_only"), expected)


def test_training_defense_is_not_a_serving_option():
    with pytest.raises(ValueError, match="stage"):
        harden(P, "l2")
