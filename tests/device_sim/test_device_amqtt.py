"""The device behind the embedded amqtt broker (MQTT 3.1.1 only): pairing without v5 properties."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from device_sim.client import DeviceClient
from device_sim.contract import DeviceError, ErrorCode, encode_audio

RATE = 16000


@pytest.fixture(scope="module")
def client(device_on_amqtt, amqtt_broker):
    with DeviceClient(amqtt_broker.url, "dev-a", client_id="tester", timeout_s=20, retries=0) as c:
        yield c


def test_transcribes_over_mqtt_311(client, recognizer, speech):
    samples, sr = speech
    answer = client.transcribe(samples, sr)
    assert not client.is_v5  # amqtt refused v5; the client fell back to 3.1.1
    assert answer["model_id"] == recognizer.model_id and answer["frames"] > 0
    assert client.status()["state"] == "online"


def test_header_errors_are_answered_without_v5_properties(client, speech):
    answer = client.request_payload(struct.pack(">I", 7) + b"garbage", correlation="mine")
    assert answer["error"]["code"] == ErrorCode.BAD_JSON
    assert (
        answer["correlation"] is None
    )  # unreadable header: paired because it was the only request
    with pytest.raises(DeviceError) as e:
        client.transcribe(np.full(RATE, 0.1, np.float32), 8000)
    assert e.value.code == ErrorCode.BAD_SAMPLE_RATE
    assert client.transcribe(*speech)["frames"] > 0


def test_asyncio_requests_pair_by_correlation(client, speech):
    samples, sr = speech
    lengths = [RATE // 2 + 800 * i for i in range(6)]

    async def ask_all():
        return await asyncio.gather(*(client.atranscribe(samples[:n], sr) for n in lengths))

    answers = asyncio.run(ask_all())
    frames = [a["frames"] for a in answers]
    assert frames == sorted(frames) and len(set(frames)) == len(lengths)
    assert len({a["correlation"] for a in answers}) == len(lengths)
    assert encode_audio(samples[:10], sr)[:4] == b"RIFF"
