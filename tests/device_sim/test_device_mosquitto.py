"""The device behind a real mosquitto (MQTT v5): answers, faults, concurrency, restarts, ACL."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from device_sim.acl import device_username
from device_sim.brokers import MosquittoBroker, free_port
from device_sim.client import DeviceClient
from device_sim.contract import (
    DEFAULT_LIMITS,
    DeviceTimeout,
    ErrorCode,
    encode_audio,
    encode_request,
    make_header,
    response_topic,
    status_topic,
)
from device_sim.ratelimit import RateLimiter
from device_sim.server import DeviceServer

from .conftest import header_json

RATE = 16000


def pcm16(x: np.ndarray) -> np.ndarray:
    """What the device hears after 16-bit WAV encoding of ``x``."""
    return sf.read(io.BytesIO(encode_audio(x, RATE)), dtype="float32")[0]


@pytest.fixture(scope="module")
def client(device_on_mosquitto, mosquitto):
    with DeviceClient(mosquitto.url, "dev-m", client_id="tester", timeout_s=20, retries=0) as c:
        yield c


def test_answer_matches_in_process_decoding(client, recognizer, speech):
    samples, sr = speech
    answer = client.transcribe(samples, sr, {"top_k": 2})
    hyp = recognizer.transcribe(pcm16(samples), sr, top_k=2)
    assert client.is_v5
    assert answer["model_id"] == recognizer.model_id
    assert answer["phones"] == hyp.phones and answer["frames"] == hyp.frames
    assert answer["log_like_per_frame"] == pytest.approx(hyp.log_like_per_frame, rel=1e-6)
    assert answer["phone_confidences"] == pytest.approx(hyp.phone_confidences, rel=1e-6)
    assert len(answer["top_k"]) == hyp.frames and len(answer["top_k"][0]) == 2
    assert answer["latency_ms"] > 0 and answer["output"] == "full"


def test_retained_status_online(client, recognizer):
    status = client.status()
    assert status["state"] == "online" and status["model_id"] == recognizer.model_id
    assert status["profile"] == {"profile": "host"} and status["limits"] == DEFAULT_LIMITS.to_dict()


def _wav(x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _frame(audio: bytes, rate: int = RATE, **header) -> bytes:
    h = make_header("fault", response_topic("dev-m", "tester"), rate, {}) | header
    return encode_request(h, audio)


TONE = (0.2 * np.sin(np.arange(RATE) / 7)).astype(np.float32)
FAULTS = {
    "not-audio": (_frame(b"RIFF but no wave at all" * 10), ErrorCode.NOT_AUDIO),
    "truncated-wav": (_frame(_wav(TONE)[:12000]), ErrorCode.TRUNCATED_AUDIO),
    "wrong-rate": (_frame(_wav(TONE, 8000), 8000), ErrorCode.BAD_SAMPLE_RATE),
    "stereo": (_frame(_wav(np.stack([TONE, TONE], 1))), ErrorCode.NOT_MONO),
    "oversized": (_frame(b"\0" * DEFAULT_LIMITS.max_payload_bytes), ErrorCode.PAYLOAD_TOO_LARGE),
    "too-long": (_frame(_wav(np.tile(TONE, 31))), ErrorCode.TOO_LONG),
    "nan": (_frame(_wav(np.full(RATE, np.nan, np.float32), subtype="FLOAT")), ErrorCode.NON_FINITE),
    "malformed-header": (struct.pack(">I", 9999) + b"{}", ErrorCode.MALFORMED_FRAME),
    "bad-json": (struct.pack(">I", 5) + b"{oops" + _wav(TONE), ErrorCode.BAD_JSON),
    "unknown-schema": (_frame(_wav(TONE), schema_version=7), ErrorCode.UNSUPPORTED_SCHEMA),
    "unknown-option": (_frame(_wav(TONE), options={"beam": 9}), ErrorCode.UNKNOWN_OPTION),
    "foreign-reply-topic": (
        _frame(_wav(TONE), reply_to="voice/dev-m/asr/response/x"),
        ErrorCode.BAD_REPLY_TOPIC,
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_gets_its_code_and_the_device_keeps_serving(client, speech, name):
    payload, code = FAULTS[name]
    answer = client.request_payload(payload, correlation="fault")
    assert answer["error"]["code"] == code, answer
    assert answer["correlation"] == "fault"  # from the header, or from MQTT v5 CorrelationData
    assert client.transcribe(*speech)["frames"] > 0


#: Header fields a fuzzed request drops, nests or (all but ``correlation``: a valid other id
#: would come back instead of ``fuzz``) retypes.
FUZZ_KEYS = ("correlation", "schema_version", "reply_to", "sample_rate", "options")
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


def _fuzz_frame(header: dict, audio: bytes, deep: tuple[str, int] | None = None) -> bytes:
    """A request frame with :func:`header_json`'s header."""
    head = header_json(header, deep)
    return struct.pack(">I", len(head)) + head + audio


@st.composite
def fuzz_payloads(draw) -> bytes:
    """Random bytes, or a frame whose header lost fields, got JSON of other types or a deeply
    nested field, carrying a good WAV or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=3000))
    header = make_header("fuzz", response_topic("dev-m", "tester"), RATE, {})
    for key in draw(st.sets(st.sampled_from(FUZZ_KEYS))):
        del header[key]
    changes = st.dictionaries(st.sampled_from((*FUZZ_KEYS[1:], "extra")), JSON_LEAVES, max_size=2)
    header |= draw(changes)
    deep = draw(st.none() | st.tuples(st.sampled_from(FUZZ_KEYS), st.integers(800, 2000)))
    audio = draw(st.just(_wav(TONE)) | st.binary(max_size=2000))
    return _fuzz_frame(header, audio, deep)


NO_OPTIONS = {
    k: v
    for k, v in make_header("fuzz", response_topic("dev-m", "tester"), RATE).items()
    if k != "options"
}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fuzz_payloads())
@example(_fuzz_frame(NO_OPTIONS, _wav(TONE)))  # `options` is optional: answered
@example(_fuzz_frame(NO_OPTIONS, _wav(TONE), deep=("options", 2000)))  # bad_json
@example(_fuzz_frame(NO_OPTIONS, b"", deep=("extra", 1500)))
def test_fuzzed_requests_get_a_specific_code_and_the_device_keeps_serving(client, speech, payload):
    answer = client.request_payload(payload, correlation="fuzz")
    assert answer["correlation"] == "fuzz"
    if "error" in answer:
        assert answer["error"]["code"] in set(ErrorCode) - {ErrorCode.INTERNAL}, answer
    else:
        assert answer["frames"] > 0
    assert client.transcribe(*speech)["frames"] > 0


def test_concurrent_clients_never_mix_answers(device_on_mosquitto, mosquitto, recognizer, speech):
    samples, sr = speech
    lengths = [
        RATE // 2 + 1600 * i for i in range(8)
    ]  # distinct durations -> distinct frame counts
    expected = {n: recognizer.transcribe(pcm16(samples[:n]), sr).frames for n in lengths}

    def user(i: int) -> list[tuple[int, int]]:
        with DeviceClient(
            mosquitto.url, "dev-m", client_id=f"user{i}", timeout_s=30, retries=0
        ) as dev:
            out = []
            for j in range(3):
                n = lengths[(i + j) % len(lengths)]
                out.append((n, dev.transcribe(samples[:n], sr)["frames"]))
            return out

    with ThreadPoolExecutor(8) as pool:
        results = [pair for chunk in pool.map(user, range(8)) for pair in chunk]
    assert len(results) == 24
    assert all(frames == expected[n] for n, frames in results)


def test_rate_limit_is_answered_with_its_code(recognizer, mosquitto, speech):
    limiter = RateLimiter(rate_per_s=1e-3, burst=2)
    with DeviceServer(recognizer, "dev-rl", mosquitto.url, rate_limiter=limiter):
        with DeviceClient(
            mosquitto.url, "dev-rl", client_id="greedy", timeout_s=20, retries=0
        ) as dev:
            codes = [
                dev.request(encode_audio(speech[0], RATE), RATE).get("error", {}).get("code")
                for _ in range(3)
            ]
        with DeviceClient(
            mosquitto.url, "dev-rl", client_id="polite", timeout_s=20, retries=0
        ) as dev:
            assert "error" not in dev.request(encode_audio(speech[0], RATE), RATE)
    assert codes == [None, None, ErrorCode.RATE_LIMITED]


def test_broker_restart_with_requests_in_flight(recognizer, speech, tmp_path):
    samples, sr = speech
    long = np.tile(samples, int(20 * sr // len(samples)) + 1)[
        : 20 * sr
    ]  # 20 s: decoding takes a while
    broker = MosquittoBroker(free_port(), workdir=tmp_path / "broker").start()
    try:
        with DeviceServer(recognizer, "dev-r", broker.url) as server:
            with DeviceClient(
                broker.url, "dev-r", client_id="patient", timeout_s=8, retries=3
            ) as dev:
                expected = dev.transcribe(long, sr)["frames"]
                with ThreadPoolExecutor(4) as pool:
                    futures = [pool.submit(dev.transcribe, long, sr) for _ in range(4)]
                    time.sleep(0.1)
                    in_flight = 5 - server.stats["answered"]
                    broker.restart(down_s=1.0)
                    answers = [f.result(timeout=90) for f in futures]
                assert in_flight > 0, "the restart came after every answer: nothing was in flight"
                assert [a["frames"] for a in answers] == [expected] * 4
                assert dev.connections == 2  # the client lost the broker and came back
                assert dev.transcribe(samples, sr)["frames"] > 0
                assert dev.status()["state"] == "online"  # the device re-announced itself
    finally:
        broker.stop()


def test_clean_stop_and_last_will_say_offline(recognizer, mosquitto):
    server = DeviceServer(recognizer, "dev-s", mosquitto.url).start()
    server.stop()
    with DeviceClient(mosquitto.url, "dev-s", timeout_s=5) as dev:
        assert dev.status()["state"] == "offline"
    server = DeviceServer(recognizer, "dev-s", mosquitto.url).start()
    with DeviceClient(mosquitto.url, "dev-s", timeout_s=5) as dev:
        assert dev.status()["state"] == "online"
        # the device vanishes without DISCONNECT: the broker sends its will
        server._client.loop_stop()
        server._client.socket().close()
        deadline = time.monotonic() + 10
        while dev.status(timeout_s=1)["state"] != "offline" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dev.status()["state"] == "offline"


def test_acl_keeps_answers_private(recognizer, speech, tmp_path):
    samples, sr = speech
    users = {device_username("dev-acl"): "dpw", "alice": "apw", "bob": "bpw"}
    with MosquittoBroker(users=users, device_ids=["dev-acl"], workdir=tmp_path / "acl") as broker:
        with DeviceServer(
            recognizer, "dev-acl", broker.url, username=device_username("dev-acl"), password="dpw"
        ):
            spied: list[str] = []
            bob = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id="bob", protocol=mqtt.MQTTv5
            )
            bob.username_pw_set("bob", "bpw")
            bob.on_message = lambda c, u, msg: spied.append(msg.topic)
            bob.connect(broker.host, broker.port)
            bob.loop_start()
            bob.subscribe([("voice/dev-acl/asr/response/#", 1), ("voice/+/asr/response/alice", 1)])
            bob.publish(
                status_topic("dev-acl"), json.dumps({"state": "offline"}), qos=1, retain=True
            )
            time.sleep(0.3)
            with DeviceClient(
                broker.url, "dev-acl", client_id="alice", username="alice", password="apw"
            ) as dev:
                assert dev.transcribe(samples, sr)["frames"] > 0
                assert dev.status()["state"] == "online"  # bob cannot overwrite the device's status
            with DeviceClient(
                broker.url,
                "dev-acl",
                client_id="alice",
                username="bob",
                password="bpw",
                timeout_s=1.5,
                retries=0,
            ) as impostor:
                with pytest.raises(DeviceTimeout):  # the broker makes bob's client id "bob"
                    impostor.transcribe(samples, sr)
            time.sleep(0.3)
            bob.loop_stop()
            bob.disconnect()
            assert spied == []
            with pytest.raises(ConnectionError):
                DeviceClient(broker.url, "dev-acl", client_id="anon").connect()


def test_full_queue_is_answered_busy(recognizer, mosquitto, speech):
    samples, sr = speech
    long = encode_audio(np.tile(samples, int(20 * sr // len(samples)) + 1)[: 20 * sr], sr)
    with DeviceServer(recognizer, "dev-q", mosquitto.url, queue_size=1) as server:
        with DeviceClient(
            mosquitto.url, "dev-q", client_id="eager", timeout_s=30, retries=0
        ) as dev:

            async def burst():
                return await asyncio.gather(*(dev.arequest(long, sr) for _ in range(6)))

            answers = asyncio.run(burst())
    codes = [a.get("error", {}).get("code") for a in answers]
    assert ErrorCode.BUSY in codes and None in codes
    assert server.stats["answered"] == codes.count(None)


def test_poison_requests_are_dropped_or_answered_and_the_device_keeps_serving(
    client, mosquitto, speech
):
    """A client id with no reply topic (a space, 65 characters) and a correlation id with a
    lone surrogate used to kill paho's network thread or the worker: the device went silent."""
    raw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="poisoner")
    raw.connect(mosquitto.host, mosquitto.port)
    raw.loop_start()
    try:
        frame = _frame(_wav(TONE))
        for bad in ("bad id", "x" * 65):
            raw.publish(f"voice/dev-m/asr/request/{bad}", frame, qos=1).wait_for_publish(10)
        assert client.transcribe(*speech)["frames"] > 0
        head = json.dumps(make_header("x\ud800y", response_topic("dev-m", "tester"), RATE))
        surrogate = struct.pack(">I", len(head)) + head.encode() + _wav(TONE)
        answer = client.request_payload(surrogate, correlation="poison")
        assert answer["error"]["code"] == ErrorCode.BAD_HEADER
        assert client.transcribe(*speech)["frames"] > 0
    finally:
        raw.loop_stop()
        raw.disconnect()
