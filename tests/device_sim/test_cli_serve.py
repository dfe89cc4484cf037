"""``device-sim serve`` as a process with its own broker, ``device-sim query``, collection mode."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from device_sim.cli import main
from device_sim.contract import encode_audio

pytestmark = pytest.mark.slow  # the device CLI in subprocesses, with brokers


def test_serve_query_collect_and_sigterm(tiny_checkpoint, speech, tmp_path):
    samples, sr = speech
    wav = tmp_path / "hello.wav"
    wav.write_bytes(encode_audio(samples, sr))
    collect = tmp_path / "kept"
    cmd = [
        sys.executable,
        "-m",
        "device_sim.cli",
        "serve",
        "--model",
        str(tiny_checkpoint),
        "--device-id",
        "cli",
        "--profile",
        "rpi3",
        "--collect",
        str(collect),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"serve exited early: {''.join(lines)}"
            lines.append(line)
            if "online at" in line:
                break
        url = re.search(r"mqtt://[\d.]+:\d+", "".join(lines)).group(0)
        assert "started private mosquitto broker" in "".join(lines) and "(int8)" in "".join(lines)
        runner = CliRunner()
        args = [
            "query",
            "--device-id",
            "cli",
            "--broker",
            url,
            "--client-id",
            "carol",
            "--text",
            "hello there",
        ]
        result = runner.invoke(main, [*args, str(wav)])
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert answer["frames"] > 0 and answer["phones"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert '"answered": 1' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (collect / "text").read_text().split(maxsplit=1)[1].strip() == "hello there"
    assert (collect / "utt2spk").read_text().split() == ["carol-000001", "carol"]


def test_query_reports_an_unreachable_broker(tmp_path):
    wav = tmp_path / "x.wav"
    wav.write_bytes(encode_audio([0.0] * 1600, 16000))
    result = CliRunner().invoke(
        main, ["query", "--device-id", "d", "--broker", "mqtt://127.0.0.1:1", str(wav)]
    )
    assert result.exit_code != 0 and "cannot connect" in result.output


def test_broker_command_runs_amqtt_until_sigint():
    import paho.mqtt.client as mqtt

    from device_sim.brokers import free_port
    from device_sim.transport import connect_mqtt

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "device_sim.cli", "broker", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stderr.readline()]
        while lines[-1] and "listening at" not in lines[-1] and len(lines) < 50:
            lines.append(proc.stderr.readline())
        assert "amqtt broker listening at" in lines[-1], lines
        client, version = connect_mqtt(f"mqtt://127.0.0.1:{port}", "probe")
        assert version == mqtt.MQTTv311
        client.disconnect()
        client.loop_stop()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
