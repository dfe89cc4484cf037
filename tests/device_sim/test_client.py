"""DeviceClient without a broker: pairing answers, retries and timeouts of the blocking and
asyncio paths (a fake paho client records what would be published)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from device_sim.client import DeviceClient
from device_sim.contract import DeviceError, DeviceTimeout, parse_header, split_frame


class _FakeMqtt:
    """Records publishes; ``answer`` (if set) makes each publish answered at once."""

    def __init__(self, device: DeviceClient, answer: dict | None = None):
        self.device, self.answer, self.published = device, answer, []

    def publish(self, topic, payload, qos, properties):
        self.published.append((topic, payload))
        if self.answer is not None:
            head, _ = split_frame(payload)
            reply = self.answer | {"correlation": parse_header(head)["correlation"]}
            msg = SimpleNamespace(topic=self.device.reply_topic, payload=json.dumps(reply).encode())
            self.device._on_message(None, None, msg)


def _client(answer: dict | None = None, retries: int = 2) -> tuple[DeviceClient, _FakeMqtt]:
    dev = DeviceClient("mqtt://127.0.0.1:1", "dev", client_id="me", timeout_s=0.05, retries=retries)
    fake = _FakeMqtt(dev, answer)
    dev._client = fake
    return dev, fake


def test_answers_pair_by_correlation_sync_and_async():
    dev, fake = _client({"phones": ["sil"]})
    assert dev.request(b"RIFF", 16000)["phones"] == ["sil"]
    assert asyncio.run(dev.arequest(b"RIFF", 16000))["phones"] == ["sil"]
    assert [topic for topic, _ in fake.published] == ["voice/dev/asr/request/me"] * 2
    assert dev._pending == {}


def test_error_answers_raise_device_error_sync_and_async():
    dev, _ = _client({"error": {"code": "too_short", "message": "short"}})
    with pytest.raises(DeviceError, match="too_short"):
        dev.transcribe([0.0] * 160, 16000)
    with pytest.raises(DeviceError, match="too_short"):
        asyncio.run(dev.atranscribe([0.0] * 160, 16000))


@pytest.mark.parametrize("use_asyncio", [False, True])
def test_every_attempt_timing_out_raises_device_timeout(use_asyncio):
    dev, fake = _client(retries=2)
    payload = b"not a frame"
    with pytest.raises(DeviceTimeout, match="after 3 attempts"):
        if use_asyncio:
            asyncio.run(dev.arequest_payload(payload, "c1"))
        else:
            dev.request_payload(payload, "c1")
    assert [p for _, p in fake.published] == [payload] * 3  # same payload, same correlation
    assert dev._pending == {}


def test_requests_need_a_connection():
    dev = DeviceClient("mqtt://127.0.0.1:1", "dev", client_id="me")
    with pytest.raises(ConnectionError, match="not connected"):
        dev.request_payload(b"x")


def test_client_module_does_not_import_torch():
    code = "import sys, device_sim.client; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
