"""Device-side privacy options: the output policy it serves with, the per-client rate limit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from device_sim.cli import main
from device_sim.ratelimit import RateLimiter, parse_rate_limit
from device_sim.server import DeviceServer


def test_device_declares_its_output_policy_in_the_registry_spelling():
    recognizer = SimpleNamespace(model_id="m")
    device = DeviceServer(recognizer, "d", "mqtt://127.0.0.1:1", output="topk")
    assert device.status("online")["output"] == "topk:k=3"  # defaults spelled out
    assert device.output.harden_answer({"top_k": [[[1, 0.5]] * 5]})["top_k"] == [[[1, 0.5]] * 3]
    with pytest.raises(ValueError, match="write 'rounding:decimals=2'"):
        DeviceServer(recognizer, "d", "mqtt://127.0.0.1:1", output="rounded:2")


def test_serve_refuses_an_old_output_spelling_before_loading(tmp_path):
    args = ["serve", "--model", str(tmp_path), "--device-id", "d", "--output", "transcript-only"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "output policy 'transcript-only' is an old spelling: write 'label_only'" in " ".join(
        result.output.split()
    )


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
