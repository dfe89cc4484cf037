"""The output policy: one spelling, one object hardening voice answers and probability vectors."""

import numpy as np
import pytest

from models.privacy.serving import (
    SCORE_FIELDS,
    TRANSCRIPT_FIELDS,
    OutputPolicy,
    parse_output_policy,
)

P = np.array([[0.55, 0.3, 0.1, 0.05], [0.26, 0.25, 0.25, 0.24]])
ANSWER = {
    "schema_version": 1,
    "correlation": "c",
    "model_id": "m",
    "phones": ["sil", "aa", "sil"],
    "phones39": ["sil", "aa", "sil"],
    "log_like_per_frame": -1.23456789,
    "frames": 30,
    "phone_confidences": [0.123456, 0.98765, 0.5],
    "segments": [[0, 10], [10, 20], [20, 30]],
    "top_k": [[[1, 0.61234], [2, 0.2], [3, 0.1]]] * 30,
    "latency_ms": 3.0,
}


def test_full_is_identity():
    full = parse_output_policy("full")
    assert full == OutputPolicy() == OutputPolicy.from_serving(None) and full.spec == "full"
    out = full.harden_proba(P)
    np.testing.assert_array_equal(out, P)
    assert out is not P  # a copy: hardening never aliases the model's answer
    assert full.harden_answer(ANSWER) == ANSWER | {"output": "full"}
    assert full.cap_top_k(7) == 7 and full.reveals_scores


@pytest.mark.parametrize(
    ("spec", "canonical", "serving"),
    [
        ("topk:k=2", "topk:k=2", {"name": "topk", "k": 2}),
        ("topk", "topk:k=3", {"name": "topk", "k": 3}),  # the registry's default
        ("rounding:decimals=2", "rounding:decimals=2", {"name": "rounding", "decimals": 2}),
        ("label_only", "label_only", {"name": "label_only"}),
    ],
)
def test_specs_are_the_registry_spelling_and_round_trip(spec, canonical, serving):
    policy = parse_output_policy(spec)
    assert policy.spec == canonical
    assert parse_output_policy(policy.spec) == policy == OutputPolicy.from_serving(serving)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("transcript-only", "'label_only'"),
        ("transcript_only", "'label_only'"),
        ("rounded:2", "'rounding:decimals=2'"),
        ("rounded", "'rounding:decimals=D'"),
        ("topk:3", "'topk:k=3'"),
        ("top_k:k=3", "'topk'"),
        ("none", "'full'"),
    ],
)
def test_old_spellings_are_refused_naming_the_new_one(old, new):
    with pytest.raises(ValueError, match=f"output policy '{old}'.* write {new}"):
        parse_output_policy(old)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("topk:k=0", "k >= 1"),
        ("rounding:decimals=-1", "decimals >= 0"),
        ("topk:k=1.5", "not of type int"),
        ("topk:depth=3", "no parameter"),
        ("l2", "acts at stage 'train', not at serving"),
        ("half", "unknown defense 'half'"),
        ("", "unknown defense ''"),
        ("topk:k=1+label_only", "one defense expected"),
    ],
)
def test_bad_specs_are_refused_with_the_grammar(spec, match):
    with pytest.raises(ValueError, match=match) as err:
        parse_output_policy(spec)
    assert "output policy" in str(err.value)


def test_constructing_a_policy_checks_it_too():
    with pytest.raises(ValueError, match="'dropout' acts at stage 'train'"):
        OutputPolicy("dropout", {"p": 0.5})
    with pytest.raises(ValueError, match="'full' takes no parameters"):
        OutputPolicy("full", {"k": 1})
    with pytest.raises(ValueError, match="k >= 1"):
        OutputPolicy.from_serving({"name": "topk", "k": 0})


def test_topk_keeps_k_and_renormalises():
    out = parse_output_policy("topk:k=2").harden_proba(P)
    assert ((out > 0).sum(axis=1) == 2).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0, :2], np.array([0.55, 0.3]) / 0.85)
    np.testing.assert_allclose(out[1], [0.26 / 0.51, 0.25 / 0.51, 0, 0])  # tie: lower index kept
    with pytest.raises(ValueError, match="k <= 4"):
        parse_output_policy("topk:k=5").harden_proba(P)


def test_rounding_leaves_coarse_values_summing_to_one():
    policy = parse_output_policy("rounding:decimals=1")
    out = policy.harden_proba(P)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0], [0.6, 0.3, 0.1, 0.0])
    many = np.random.default_rng(0).dirichlet(np.ones(4), 500)
    out = policy.harden_proba(many)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out * 10, np.round(out * 10))  # on the 0.1 grid
    assert np.abs(out - many).max() < 0.1
    with pytest.raises(ValueError, match=r"\(n, C\)"):
        policy.harden_proba(P[0])


def test_topk_truncates_voice_posteriors_and_caps_requests():
    policy = parse_output_policy("topk:k=1")
    out = policy.harden_answer(ANSWER)
    assert all(len(frame) == 1 for frame in out["top_k"]) and out["output"] == "topk:k=1"
    assert out["phone_confidences"] == ANSWER["phone_confidences"]
    assert policy.cap_top_k(5) == 1 and policy.cap_top_k(None) is None


def test_rounding_rounds_every_voice_score():
    out = parse_output_policy("rounding:decimals=2").harden_answer(ANSWER)
    assert out["log_like_per_frame"] == -1.23
    assert out["phone_confidences"] == [0.12, 0.99, 0.5]
    assert out["top_k"][0][0] == [1, 0.61]
    assert out["segments"] == ANSWER["segments"] and out["frames"] == 30
    assert set(SCORE_FIELDS) <= set(ANSWER)


def test_label_only_hardens_a_voice_answer_and_a_probability_vector_alike():
    """One policy object: the transcript (the predicted phones) and nothing that scores it; the
    predicted class as a one-hot vector and nothing that scores it."""
    policy = OutputPolicy.from_serving({"name": "label_only"})
    assert policy == parse_output_policy("label_only") and not policy.reveals_scores
    voice = policy.harden_answer(ANSWER)
    assert voice["phones"] == ANSWER["phones"] and voice["output"] == "label_only"
    assert set(voice) <= set(TRANSCRIPT_FIELDS)
    assert not {"log_like_per_frame", "phone_confidences", "top_k", "frames", "segments"} & set(
        voice
    )
    assert policy.cap_top_k(5) is None
    proba = policy.harden_proba(P)
    np.testing.assert_array_equal(proba, [[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    np.testing.assert_array_equal(proba.argmax(axis=1), P.argmax(axis=1))
