"""Run ``device-sim serve`` in a subprocess, as a vendor would, until the caller is done.

The end-to-end audit (which plays the vendor before it audits) and the device benchmark start
the device this way: the same command line a user runs, with its own broker, stopped with
SIGINT. The device's stderr goes to a log file; the broker URL is read from it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Seconds a device may take to load its model and come online.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServedDevice:
    """A device serving in a subprocess: its broker URL and process id."""

    url: str
    pid: int


@contextmanager
def serve_in_subprocess(
    model: str | Path,
    device_id: str,
    *,
    broker_kind: str,
    profile: str,
    log_path: str | Path,
    output: str = "full",
) -> Iterator[ServedDevice]:
    """Run ``device-sim serve`` (with its private broker) in a subprocess while in the block.

    ``output`` is the device's output policy (``device-sim serve --output``). Raises
    ``RuntimeError`` with the log's last lines when the device does not come online within
    :data:`START_TIMEOUT_S`.
    """
    cmd = [
        sys.executable,
        "-m",
        "device_sim.cli",
        "serve",
        "--model",
        str(model),
        "--device-id",
        device_id,
        "--broker-kind",
        broker_kind,
        "--profile",
        profile,
        "--output",
        output,
    ]
    proc = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    log = _DeviceLog(proc, Path(log_path), device_id)
    try:
        if not log.online.wait(START_TIMEOUT_S) or proc.poll() is not None or not log.url:
            raise RuntimeError(
                f"device did not come online ({' '.join(cmd)}); its log {log_path}: "
                + " | ".join(log.lines[-5:])
            )
        yield ServedDevice(log.url, proc.pid)
    finally:
        _stop(proc)


class _DeviceLog:
    """Copies the device's stderr to a file in a thread; notes the broker URL and 'online'."""

    def __init__(self, proc: subprocess.Popen, path: Path, device_id: str):
        self.lines: list[str] = []
        self.url = ""
        self.online = threading.Event()
        self._marker = f"device {device_id} online"
        threading.Thread(target=self._drain, args=(proc, path), daemon=True).start()

    def _drain(self, proc: subprocess.Popen, path: Path) -> None:
        with path.open("w") as f:
            for line in proc.stderr:
                f.write(line)
                f.flush()
                self.lines.append(line.rstrip())
                if " broker at " in line:
                    self.url = line.rsplit(" broker at ", 1)[1].strip()
                if self._marker in line:
                    self.online.set()
        self.online.set()  # the process ended


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
