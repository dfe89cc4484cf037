"""MQTT brokers the device can run on: a private mosquitto process or the embedded amqtt broker.

:class:`MosquittoBroker` writes a config (loopback listener, no persistence, optional password
file and ACL from :mod:`device_sim.acl`) into a work directory and runs ``mosquitto -c``; it can
be stopped and started again on the same port (the broker-restart fault test).
:class:`EmbeddedBroker` runs amqtt (MQTT 3.1.1 only, anonymous) on its own asyncio loop in a
background thread of the current process. :func:`start_local_broker` picks mosquitto when it
is installed, else amqtt.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from device_sim.acl import acl_text, write_password_file

log = logging.getLogger(__name__)

MOSQUITTO_HINT = (
    "mosquitto not found (looked on PATH and in /usr/sbin): install it with "
    "`apt-get install mosquitto` (`make debs` does it)"
)


class BrokerUnavailable(RuntimeError):
    """A broker cannot be started (not installed, port taken, crashed at start)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """True once a TCP connection to ``host:port`` succeeds, False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` executable, or ``None``."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class MosquittoBroker:
    """A private mosquitto on a loopback port, with an optional password file and ACL.

    Parameters
    ----------
    port : TCP port on 127.0.0.1; default a free one.
    workdir : where config, password file, ACL and log go; default a new temp dir.
    users : ``{username: password}``; when given, anonymous access is off and the ACL of
        :func:`device_sim.acl.acl_text` applies (client id = username).
    device_ids : devices the ACL grants their device topics to.
    """

    kind = "mosquitto"

    def __init__(
        self,
        port: int | None = None,
        *,
        workdir: str | Path | None = None,
        users: dict[str, str] | None = None,
        device_ids: list[str] | None = None,
    ):
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.users = dict(users or {})
        self.device_ids = list(device_ids or [])
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> Path:
        """Write ``mosquitto.conf`` (and password/ACL files) into the work dir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            # as root mosquitto would switch to user "mosquitto", who cannot read a private work
            # dir; naming the current user keeps it (no-op when not started as root)
            f"user {getpass.getuser()}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 10000",
        ]
        if self.users:
            pw = write_password_file(self.workdir / "passwd", self.users)
            acl = self.workdir / "acl"
            acl.write_text(acl_text(self.device_ids))
            lines += [
                "allow_anonymous false",
                f"password_file {pw}",
                f"acl_file {acl}",
                "use_username_as_clientid true",
            ]
        else:
            lines.append("allow_anonymous true")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> MosquittoBroker:
        """Start mosquitto and wait until it accepts connections."""
        exe = find_mosquitto()
        if exe is None:
            raise BrokerUnavailable(MOSQUITTO_HINT)
        if self._proc is not None and self._proc.poll() is None:
            return self
        conf = self.write_config()
        self._proc = subprocess.Popen(
            [exe, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # a terminal Ctrl-C must not kill it before the device says offline
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, 10.0) or self._proc.poll() is not None:
            err = self._stop_process()
            log_text = self.log_path.read_text() if self.log_path.exists() else ""
            raise BrokerUnavailable(
                f"mosquitto did not start on port {self.port}: {err}{log_text[-2000:]}"
            )
        log.info("mosquitto listening on %s (config %s)", self.url, conf)
        return self

    def _stop_process(self) -> str:
        if self._proc is None:
            return ""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        return err

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL after 5 s); removes a work dir it made itself."""
        self._stop_process()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class EmbeddedBroker:
    """The amqtt broker (MQTT 3.1.1, anonymous) on 127.0.0.1 in a background thread.

    Parameters
    ----------
    port : TCP port; default a free one.
    """

    kind = "amqtt"

    def __init__(self, port: int | None = None):
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def config(self) -> dict:
        """amqtt ``BrokerConfig`` dict: one loopback TCP listener, anonymous access."""
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

    def start(self) -> EmbeddedBroker:
        """Start the broker thread and wait until it listens."""
        from amqtt.broker import Broker  # heavy import, only when the embedded broker is used

        # amqtt logs every refused MQTT v5 attempt (clients in "auto" mode try v5 first)
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        started = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._broker = Broker(self.config(), loop=self._loop)
                await self._broker.start()

            try:
                self._loop.run_until_complete(boot())
            except BaseException as e:  # reported to the starting thread
                failure.append(e)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not started.wait(15) or failure:
            raise BrokerUnavailable(f"amqtt did not start on port {self.port}: {failure}")
        log.info("embedded amqtt broker listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop = self._broker = self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_local_broker(
    kind: str = "auto", port: int | None = None
) -> MosquittoBroker | EmbeddedBroker:
    """Start a private broker: ``mosquitto``, ``amqtt``, or ``auto`` (mosquitto if installed)."""
    if kind not in ("auto", "mosquitto", "amqtt"):
        raise ValueError(f"broker kind must be auto, mosquitto or amqtt, got {kind!r}")
    if kind == "mosquitto" or (kind == "auto" and find_mosquitto() is not None):
        return MosquittoBroker(port).start()
    return EmbeddedBroker(port).start()
