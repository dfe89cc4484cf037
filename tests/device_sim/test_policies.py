"""Device-side privacy options: output hardening and the per-client rate limit."""

from __future__ import annotations

import pytest

from device_sim.hardening import parse_output_policy
from device_sim.ratelimit import RateLimiter, parse_rate_limit

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


def test_full_keeps_everything():
    assert parse_output_policy("full").apply(ANSWER) == ANSWER | {"output": "full"}


def test_topk_truncates_per_frame_posteriors_and_caps_requests():
    policy = parse_output_policy("topk:1")
    out = policy.apply(ANSWER)
    assert all(len(frame) == 1 for frame in out["top_k"])
    assert out["phone_confidences"] == ANSWER["phone_confidences"]
    assert policy.cap_top_k(5) == 1 and policy.cap_top_k(None) is None


def test_rounded_rounds_every_score():
    out = parse_output_policy("rounded:2").apply(ANSWER)
    assert out["log_like_per_frame"] == -1.23
    assert out["phone_confidences"] == [0.12, 0.99, 0.5]
    assert out["top_k"][0][0] == [1, 0.61]
    assert out["segments"] == ANSWER["segments"] and out["frames"] == 30


def test_transcript_only_drops_scores():
    policy = parse_output_policy("transcript-only")
    out = policy.apply(ANSWER)
    assert out["phones"] == ANSWER["phones"]
    assert not {"log_like_per_frame", "phone_confidences", "top_k", "frames", "segments"} & set(out)
    assert policy.cap_top_k(5) is None


@pytest.mark.parametrize("spec", ["topk", "topk:0", "rounded:x", "half", "topk:-1", ""])
def test_bad_output_specs_are_refused(spec):
    with pytest.raises(ValueError, match="output policy"):
        parse_output_policy(spec)


def test_token_bucket_per_client():
    now = [0.0]
    limiter = RateLimiter(rate_per_s=1.0, burst=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    assert limiter.retry_after_s("a") == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.allow("a") and not limiter.allow("a")


def test_parse_rate_limit():
    limiter = parse_rate_limit("30/min:5")
    assert limiter.rate_per_s == pytest.approx(0.5) and limiter.burst == 5
    assert parse_rate_limit("2/s").burst == 2
    for bad in ("fast", "10/day", "0/s", "-1/s"):
        with pytest.raises(ValueError):
            parse_rate_limit(bad)
