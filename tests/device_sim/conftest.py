"""Fixtures of the device tests: a tiny real checkpoint, real brokers, running devices.

The checkpoint is trained once per session with the project's recipe
(:func:`models.asr.train.train_recognizer`) on the shared ``tiny_synth_corpus``. Brokers are
real: mosquitto on a free loopback port (the tests fail, not skip, without it) and the
embedded amqtt broker. :func:`header_json` writes request headers, deeply nested ones too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from device_sim.brokers import MOSQUITTO_HINT, MosquittoBroker, find_mosquitto
from device_sim.server import DeviceServer


def header_json(header: dict, deep: tuple[str, int] | None = None) -> bytes:
    """``header`` as JSON bytes; ``deep = (field, depth)`` sets that field to ``depth`` nested
    empty lists (deeper than the JSON parser's recursion limit from about 1000)."""
    if deep is None:
        return json.dumps(header).encode()
    field, depth = deep
    text = json.dumps(header | {field: "DEEP"})
    return text.replace('"DEEP"', "[" * depth + "]" * depth).encode()


@pytest.fixture(scope="session")
def tiny_utterances(tiny_synth_corpus):
    from corpora.prepare import read_corpus

    return read_corpus(tiny_synth_corpus, "timit").utterances


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_utterances, tiny_recipe, tmp_path_factory):
    """Directory of a recognizer trained for one epoch on the tiny synthetic corpus."""
    import torch

    from models.asr.train import train_recognizer

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny_ckpt")
    train_recognizer(tiny_utterances, tiny_recipe, seed=0, out_dir=out, progress=False)
    return out


@pytest.fixture(scope="session")
def recognizer(tiny_checkpoint):
    from models.asr.recognizer import load_recognizer

    return load_recognizer(tiny_checkpoint)


@pytest.fixture(scope="session")
def speech(tiny_utterances) -> tuple[np.ndarray, int]:
    """One synthetic utterance: (float32 samples (n,), 16000)."""
    from corpora.audio import read_audio

    return read_audio(tiny_utterances[0].path)


@pytest.fixture(scope="session")
def mosquitto():
    if find_mosquitto() is None:
        pytest.fail(MOSQUITTO_HINT, pytrace=False)
    with MosquittoBroker() as broker:
        yield broker


def _serve(recognizer, device_id: str, broker_url: str):
    """Serve ``recognizer`` as ``device_id`` on the broker (host profile) while the fixture lives."""
    with DeviceServer(
        recognizer, device_id, broker_url, profile_report={"profile": "host"}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def device_on_mosquitto(recognizer, mosquitto):
    yield from _serve(recognizer, "dev-m", mosquitto.url)


@pytest.fixture(scope="module")
def device_on_amqtt(recognizer, amqtt_broker):
    yield from _serve(recognizer, "dev-a", amqtt_broker.url)
