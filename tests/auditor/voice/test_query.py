"""Tests for auditor.voice.query against a real device on the embedded amqtt broker.

Checks the record (one JSON line per answer or failure), resuming without re-querying,
the query budget, a device that goes offline mid-audit, and in-process shadow querying.
"""

import dataclasses
import json

import pytest

from auditor.voice.query import OFFLINE_AFTER_TIMEOUTS, query_device, query_recognizer, read_record
from corpora.manifest import read_manifest


@pytest.fixture(scope="module")
def utts(tiny_manifest):
    return sorted(read_manifest(tiny_manifest), key=lambda u: u.utt_id)[:6]


def test_answers_are_recorded_and_a_rerun_reuses_them(tiny_device, utts, tmp_path):
    broker, device_id = tiny_device
    record = tmp_path / "q.jsonl"
    first = query_device(utts, record, broker=broker, device_id=device_id, progress=False)
    assert first.sent == 6 and first.reused == 0 and not first.errors and first.stopped is None
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    assert [x["utt_id"] for x in lines] == [u.utt_id for u in utts]
    assert all(x["model"] == f"device:{device_id}" and x["answer"]["frames"] > 0 for x in lines)
    second = query_device(utts, record, broker=broker, device_id=device_id, progress=False)
    assert second.sent == 0 and second.reused == 6 and second.answers == first.answers
    with pytest.raises(ConnectionError, match="cannot reach device"):
        query_device(
            utts,
            tmp_path / "new.jsonl",
            broker="mqtt://127.0.0.1:9",
            device_id=device_id,
            progress=False,
        )
    # answers of another model (the device was retrained since) are asked again
    lines = record.read_text().splitlines()
    stale = json.loads(lines[0])
    stale["answer"]["model_id"] = "older-model"
    record.write_text("\n".join([json.dumps(stale), *lines[1:]]) + "\n")
    third = query_device(utts, record, broker=broker, device_id=device_id, progress=False)
    assert third.sent == 1 and third.reused == 5
    assert len(record.read_text().splitlines()) == 7  # appended, nothing rewritten
    # the device's status comes back with the answers: its model and its output policy
    assert third.status["model_id"] == third.answers[utts[0].utt_id]["model_id"]
    assert third.status["output"] == "full"
    # answers given under another output policy (the device was hardened since) too
    lines = record.read_text().splitlines()
    hardened = json.loads(lines[1])
    hardened["answer"]["output"] = "rounding:decimals=1"
    record.write_text("\n".join([lines[0], json.dumps(hardened), *lines[2:]]) + "\n")
    fourth = query_device(utts, record, broker=broker, device_id=device_id, progress=False)
    assert fourth.sent == 1 and fourth.reused == 5
    assert fourth.answers[hardened["utt_id"]]["output"] == "full"


def test_budget_stops_and_unreadable_audio_is_a_recorded_failure(tiny_device, utts, tmp_path):
    broker, device_id = tiny_device
    record = tmp_path / "q.jsonl"
    lost = dataclasses.replace(utts[0], utt_id="lost", path=str(tmp_path / "missing.wav"))
    res = query_device(
        [lost, *utts], record, broker=broker, device_id=device_id, budget=3, progress=False
    )
    assert res.sent == 3 and "budget of 3" in res.stopped
    assert res.errors["lost"]["code"] == "unreadable_audio"
    assert read_record(record, f"device:{device_id}")["lost"]["error"]["code"] == "unreadable_audio"


def test_device_offline_mid_audit_resumes_without_requerying(
    tiny_target, amqtt_url, utts, tmp_path
):
    from device_sim.server import DeviceServer
    from models.asr.recognizer import load_recognizer

    recognizer = load_recognizer(tiny_target)
    record = tmp_path / "q.jsonl"
    with DeviceServer(recognizer, "flaky", amqtt_url, profile_report={}):
        done = query_device(utts[:2], record, broker=amqtt_url, device_id="flaky", progress=False)
    assert len(done.answers) == 2
    offline = query_device(
        utts, record, broker=amqtt_url, device_id="flaky", timeout_s=0.5, retries=0, progress=False
    )
    assert offline.sent == OFFLINE_AFTER_TIMEOUTS and "device offline" in offline.stopped
    assert offline.reused == 2 and {e["code"] for e in offline.errors.values()} == {"timeout"}
    with DeviceServer(recognizer, "flaky", amqtt_url, profile_report={}):
        back = query_device(utts, record, broker=amqtt_url, device_id="flaky", progress=False)
    assert back.reused == 2 and back.sent == 4 and len(back.answers) == 6 and not back.errors


def test_shadows_are_queried_in_process_with_the_same_record(tiny_shadows, utts, tmp_path):
    from models.asr.recognizer import load_recognizer

    record = tmp_path / "q.jsonl"
    res = query_recognizer(
        load_recognizer(tiny_shadows[0].path), utts, record, model="shadow-0", progress=False
    )
    assert len(res.answers) == 6
    rec = read_record(record, "shadow-0")
    assert set(rec) == {u.utt_id for u in utts}
    assert {"phones", "log_like_per_frame", "frames", "phone_confidences"} <= set(
        rec[utts[0].utt_id]["answer"]
    )
    assert read_record(record, "device:x") == {}
    one_by_one = query_recognizer(
        load_recognizer(tiny_shadows[0].path),
        utts,
        tmp_path / "q1.jsonl",
        model="shadow-0",
        batch=1,
        progress=False,
    )
    for utt_id, answer in one_by_one.answers.items():
        assert answer["phones"] == res.answers[utt_id]["phones"]
        batched = res.answers[utt_id]["log_like_per_frame"]
        assert answer["log_like_per_frame"] == pytest.approx(batched, rel=1e-4)


def test_a_cut_last_line_is_ignored_but_a_bad_middle_line_is_named(tmp_path):
    record = tmp_path / "q.jsonl"
    good = json.dumps({"model": "m", "utt_id": "a", "speaker": "s", "answer": {}})
    record.write_text(good + "\n" + '{"model": "m", "utt')
    assert set(read_record(record, "m")) == {"a"}
    record.write_text('{"model"\n' + good + "\n")
    with pytest.raises(ValueError, match="q.jsonl:1: not a JSON query record"):
        read_record(record, "m")
