"""The client the auditor uses: :class:`DeviceClient` sends audio to a device over MQTT and
returns its parsed answer, blocking or with asyncio.

It frames requests with :mod:`device_sim.contract` and connects with
:mod:`device_sim.transport`; the blocking and asyncio request paths share one retry policy
(:meth:`DeviceClient._attempts`) and wait on the same future (the asyncio path through
:func:`asyncio.wrap_future`). Like the contract it never imports torch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import soundfile as sf
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device_sim.contract import (
    QOS,
    DeviceError,
    DeviceTimeout,
    encode_audio,
    encode_request,
    make_header,
    peek_correlation,
    request_topic,
    response_topic,
    status_topic,
)
from device_sim.transport import connect_mqtt

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    payload: bytes
    future: concurrent.futures.Future
    properties: Properties | None


class DeviceClient:
    """Send audio to a device over MQTT and get its parsed answer (blocking or asyncio).

    Parameters
    ----------
    broker : ``mqtt://HOST:PORT`` of the broker the device listens on.
    device_id : the device's id (``voice/<device_id>/...``).
    client_id : this client's MQTT client id; default ``client-<random>``. With an ACL it must
        be the id the broker lets this user use.
    username, password : broker credentials, if the broker wants them.
    timeout_s : seconds to wait for each attempt's answer.
    retries : extra attempts after a timeout (same correlation id; duplicates are ignored).
    protocol : ``"auto"`` (MQTT v5, else 3.1.1), ``"5"`` or ``"3.1.1"``.

    Examples
    --------
    >>> with DeviceClient("mqtt://127.0.0.1:1883", "speaker1") as dev:   # doctest: +SKIP
    ...     answer = dev.transcribe_file("hello.wav")
    ...     answer["phones"]
    """

    def __init__(
        self,
        broker: str,
        device_id: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        protocol: str = "auto",
    ):
        self.broker = broker
        self.device_id = device_id
        self.client_id = client_id or f"client-{uuid.uuid4().hex[:10]}"
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.retries = retries
        self.protocol = protocol
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._sub_refused = False
        self._client: mqtt.Client | None = None
        self._version: int | None = None
        self._sub_mid: int | None = None
        self._connections = 0

    # -- connection --------------------------------------------------------
    @property
    def reply_topic(self) -> str:
        return response_topic(self.device_id, self.client_id)

    @property
    def is_v5(self) -> bool:
        return self._version == mqtt.MQTTv5

    @property
    def connections(self) -> int:
        """Successful connections so far (more than 1 after a broker restart)."""
        return self._connections

    def connect(self) -> DeviceClient:
        """Connect and subscribe to this client's reply topic (waits for SUBACK)."""
        self._client, self._version = connect_mqtt(
            self.broker,
            self.client_id,
            protocol=self.protocol,
            username=self.username,
            password=self.password,
            on_connect=self._on_connect,
            on_message=self._on_message,
        )
        if not self._subscribed.wait(10) or self._sub_refused:
            self.close()
            why = "broker refused the subscription to" if self._sub_refused else "no SUBACK for"
            raise ConnectionError(f"{self.client_id}: {why} {self.reply_topic}")
        return self

    def close(self) -> None:
        """Disconnect; pending requests fail with :class:`ConnectionError`."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        with self._lock:
            for p in self._pending.values():
                if not p.future.done():
                    p.future.set_exception(ConnectionError("client closed"))
            self._pending.clear()

    def __enter__(self) -> DeviceClient:
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def _on_connect(self, client: mqtt.Client, is_v5: bool) -> None:
        self._connections += 1
        self._subscribed.clear()
        client.on_subscribe = self._on_subscribe
        _, self._sub_mid = client.subscribe(self.reply_topic, qos=QOS)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._sub_mid:
            return
        self._sub_refused = any(rc.is_failure for rc in reason_codes)
        self._subscribed.set()
        if self._sub_refused:
            log.error("%s: broker refused subscription to %s", self.client_id, self.reply_topic)
            return
        if self._connections > 1:  # answers sent while we were away are lost: ask again
            with self._lock:
                pending = list(self._pending.values())
            for p in pending:
                client.publish(self._request_topic, p.payload, qos=QOS, properties=p.properties)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            answer = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s: undecodable answer on %s ignored", self.client_id, msg.topic)
            return
        corr = answer.get("correlation") if isinstance(answer, dict) else None
        with self._lock:
            if corr is None and len(self._pending) == 1:  # device could not read our header
                corr = next(iter(self._pending))
            pending = self._pending.pop(corr, None)
        if pending is None:
            log.debug(
                "%s: answer for unknown/finished correlation %r ignored", self.client_id, corr
            )
            return
        if not pending.future.done():
            pending.future.set_result(answer)

    @property
    def _request_topic(self) -> str:
        return request_topic(self.device_id, self.client_id)

    # -- requests ----------------------------------------------------------
    def _submit(self, payload: bytes, correlation: str) -> concurrent.futures.Future:
        if self._client is None:
            raise ConnectionError("DeviceClient is not connected (use connect() or `with`)")
        props = None
        if self.is_v5:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = self.reply_topic
            props.CorrelationData = correlation.encode("utf-8")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._pending[correlation] = _Pending(payload, fut, props)
        self._client.publish(self._request_topic, payload, qos=QOS, properties=props)
        return fut

    def _frame(self, audio: bytes, sample_rate: int, options: dict | None) -> tuple[bytes, str]:
        """A request frame for encoded audio with a fresh correlation id: ``(payload, corr)``."""
        corr = uuid.uuid4().hex
        return encode_request(
            make_header(corr, self.reply_topic, sample_rate, options), audio
        ), corr

    def _attempts(
        self, payload: bytes, correlation: str | None
    ) -> Iterator[concurrent.futures.Future]:
        """Publish ``payload`` once per attempt and yield the future of its answer.

        The caller waits on each future for :attr:`timeout_s` and asks for the next one only
        after a timeout; after the last attempt this raises :class:`DeviceTimeout`. The
        correlation id is ``correlation``, else the one in the payload's header, else a fresh one.
        """
        corr = correlation or peek_correlation(payload) or uuid.uuid4().hex
        for attempt in range(self.retries + 1):
            yield self._submit(payload, corr)
            log.warning("%s: no answer to %s (attempt %d)", self.client_id, corr, attempt + 1)
        with self._lock:
            self._pending.pop(corr, None)
        raise DeviceTimeout(
            f"no answer from device {self.device_id!r} to {corr} after {self.retries + 1} attempts"
        )

    def request_payload(self, payload: bytes, correlation: str | None = None) -> dict:
        """Send a raw payload (any bytes) and return the answer dict, error answers included.

        ``correlation`` is the id to wait for; default: the one in the payload's header.
        Retries after a timeout; raises :class:`DeviceTimeout` when every attempt times out.
        """
        for fut in self._attempts(payload, correlation):
            try:
                return fut.result(timeout=self.timeout_s)
            except concurrent.futures.TimeoutError:
                continue
        raise AssertionError("unreachable: _attempts raises DeviceTimeout")

    async def arequest_payload(self, payload: bytes, correlation: str | None = None) -> dict:
        """Asyncio version of :meth:`request_payload`."""
        for fut in self._attempts(payload, correlation):
            try:
                return await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
            except TimeoutError:
                continue
        raise AssertionError("unreachable: _attempts raises DeviceTimeout")

    def request(self, audio: bytes, sample_rate: int, options: dict | None = None) -> dict:
        """Send encoded audio (WAV/FLAC bytes); return the answer, error answers included."""
        return self.request_payload(*self._frame(audio, sample_rate, options))

    async def arequest(self, audio: bytes, sample_rate: int, options: dict | None = None) -> dict:
        """Asyncio version of :meth:`request`."""
        return await self.arequest_payload(*self._frame(audio, sample_rate, options))

    def transcribe(
        self, samples: np.ndarray, sample_rate: int, options: dict | None = None
    ) -> dict:
        """Transcribe mono samples (float, ``(n,)``, in [-1, 1]); raises :class:`DeviceError`."""
        return _ok(self.request(encode_audio(samples, sample_rate), sample_rate, options))

    async def atranscribe(
        self, samples: np.ndarray, sample_rate: int, options: dict | None = None
    ) -> dict:
        """Asyncio version of :meth:`transcribe`."""
        return _ok(await self.arequest(encode_audio(samples, sample_rate), sample_rate, options))

    def transcribe_file(self, path: str | Path, options: dict | None = None) -> dict:
        """Send a WAV/FLAC file as it is on disk; raises :class:`DeviceError` on an error answer."""
        path = Path(path)
        try:
            sample_rate = sf.info(str(path)).samplerate
        except (sf.LibsndfileError, RuntimeError) as e:
            raise ValueError(f"{path}: not a WAV/FLAC file soundfile can read ({e})") from e
        return _ok(self.request(path.read_bytes(), sample_rate, options))

    def status(self, timeout_s: float = 5.0) -> dict | None:
        """The device's retained status message, or ``None`` if none arrives in ``timeout_s``."""
        if self._client is None:
            raise ConnectionError("DeviceClient is not connected")
        got: concurrent.futures.Future = concurrent.futures.Future()
        topic = status_topic(self.device_id)

        def _on_status(client, userdata, msg):
            if not got.done():
                got.set_result(json.loads(msg.payload.decode("utf-8")))

        self._client.message_callback_add(topic, _on_status)
        self._client.subscribe(topic, qos=QOS)
        try:
            return got.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            return None
        finally:
            self._client.unsubscribe(topic)
            self._client.message_callback_remove(topic)


def _ok(answer: dict) -> dict:
    if "error" in answer:
        raise DeviceError(answer)
    return answer
