"""The device's MQTT wire contract and a client for it (the only module the auditor imports).

A request is one MQTT message on ``voice/<device_id>/asr/request/<client_id>`` whose payload
is a *frame*: a 4-byte big-endian header length ``N``, ``N`` bytes of UTF-8 JSON header, then
the audio file bytes (16-bit PCM WAV or FLAC, mono). The header carries the schema version,
the correlation id, the reply topic, the sample rate and options, so replies pair up on
MQTT 3.1.1 too (the embedded amqtt broker speaks only 3.1.1); on an MQTT v5 broker the client
also sets ``ResponseTopic`` and ``CorrelationData``. The answer is JSON on
``voice/<device_id>/asr/response/<client_id>``; the device's retained state is on
``voice/<device_id>/status``. ``docs/protocol.md`` is the prose version of this module.

This module must stay light: it imports paho-mqtt, numpy and soundfile, never torch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import re
import struct
import threading
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum, unique
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import paho.mqtt.client as mqtt
import soundfile as sf
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

#: Version of the header and answer schemas; a request with another version is refused.
SCHEMA_VERSION = 1
#: Bytes of the big-endian header-length prefix of a request frame.
HEADER_LENGTH_BYTES = 4
#: Default MQTT port when a broker URL names none.
DEFAULT_PORT = 1883
#: QoS of requests, answers and status.
QOS = 1
#: Seconds the ``auto`` protocol choice waits for a v5 CONNACK before trying MQTT 3.1.1.
AUTO_V5_CONNACK_S = 2.0
#: Option names a request header may carry (anything else is ``unknown_option``).
KNOWN_OPTIONS = ("top_k", "text")
#: Client ids and device ids: one MQTT topic level of safe characters.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@unique
class ErrorCode(StrEnum):
    """Distinct codes of an error answer ``{"error": {"code", "message"}}`` (no aliases)."""

    MALFORMED_FRAME = "malformed_frame"  # length prefix missing or pointing past the payload
    BAD_JSON = "bad_json"  # header is not UTF-8 JSON object
    UNSUPPORTED_SCHEMA = "unsupported_schema"  # schema_version is not SCHEMA_VERSION
    BAD_HEADER = "bad_header"  # a header field is missing or has the wrong type/value
    BAD_REPLY_TOPIC = "bad_reply_topic"  # reply_to is not the sender's own response topic
    UNKNOWN_OPTION = "unknown_option"  # an option name outside KNOWN_OPTIONS
    BAD_OPTION = "bad_option"  # a known option with a bad value
    PAYLOAD_TOO_LARGE = "payload_too_large"  # the MQTT payload exceeds max_payload_bytes
    NOT_AUDIO = "not_audio"  # the audio bytes are no WAV/FLAC file
    TRUNCATED_AUDIO = "truncated_audio"  # the file promises more audio than it holds
    BAD_SAMPLE_RATE = "bad_sample_rate"  # file rate differs from the header or the device's
    NOT_MONO = "not_mono"  # more than one channel
    TOO_LONG = "too_long"  # longer than max_duration_s
    TOO_SHORT = "too_short"  # shorter than min_duration_s
    EMPTY_AUDIO = "empty_audio"  # zero samples
    NON_FINITE = "non_finite"  # NaN or infinite samples
    RATE_LIMITED = "rate_limited"  # the sender's query budget is spent
    BUSY = "busy"  # the device's request queue is full
    INTERNAL = "internal_error"  # the device failed; it keeps serving


@dataclass(frozen=True)
class Limits:
    """What a device accepts; checked before any decoding work.

    Attributes
    ----------
    max_payload_bytes : largest MQTT payload (header + audio), bytes.
    max_header_bytes : largest JSON header, bytes.
    sample_rate : the only accepted sample rate, Hz.
    channels : accepted channel count.
    min_duration_s, max_duration_s : accepted audio duration, seconds.
    """

    max_payload_bytes: int = 2 * 1024 * 1024
    max_header_bytes: int = 4096
    sample_rate: int = 16000
    channels: int = 1
    min_duration_s: float = 0.1
    max_duration_s: float = 30.0

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_LIMITS = Limits()


class ProtocolError(ValueError):
    """A request that breaks the contract; ``code`` is an :class:`ErrorCode`."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code)
        self.message = message


class DeviceError(RuntimeError):
    """The device answered with an error; ``code`` and ``answer`` hold what it said."""

    def __init__(self, answer: dict):
        err = answer.get("error") or {}
        self.code = str(err.get("code", "unknown"))
        self.message = str(err.get("message", ""))
        self.answer = answer
        super().__init__(f"device error {self.code}: {self.message}")


class DeviceTimeout(TimeoutError):
    """No answer within the timeout after every retry."""


# ----------------------------------------------------------------------------- topics


def _check_id(kind: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{kind} {value!r} must match {ID_PATTERN.pattern}")
    return value


def request_topic(device_id: str, client_id: str) -> str:
    """Topic a client publishes its requests to."""
    return (
        f"voice/{_check_id('device id', device_id)}/asr/request/{_check_id('client id', client_id)}"
    )


def request_subscription(device_id: str) -> str:
    """Wildcard the device subscribes to (every client's request topic)."""
    return f"voice/{_check_id('device id', device_id)}/asr/request/+"


def response_topic(device_id: str, client_id: str) -> str:
    """Topic the device answers a client on (the ACL lets only that client read it)."""
    device, client = _check_id("device id", device_id), _check_id("client id", client_id)
    return f"voice/{device}/asr/response/{client}"


def status_topic(device_id: str) -> str:
    """Retained device state (``online``/``offline``); only the device may write it."""
    return f"voice/{_check_id('device id', device_id)}/status"


def client_id_from_request_topic(topic: str) -> str:
    """The sender's client id: the last level of its request topic."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "voice" or parts[2:4] != ["asr", "request"]:
        raise ValueError(f"not a request topic: {topic!r}")
    return parts[4]


# ----------------------------------------------------------------------------- framing


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    """Encode mono float samples in [-1, 1] (shape ``(n,)``) as 16-bit PCM WAV or FLAC bytes."""
    buf = io.BytesIO()
    sf.write(
        buf, np.asarray(samples, dtype=np.float32), int(sample_rate), format=fmt, subtype="PCM_16"
    )
    return buf.getvalue()


def make_header(
    correlation: str, reply_to: str, sample_rate: int, options: dict | None = None
) -> dict:
    """The request header as a dict (see :func:`parse_header` for what the device checks)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "correlation": correlation,
        "reply_to": reply_to,
        "sample_rate": int(sample_rate),
        "options": dict(options or {}),
    }


def encode_request(header: dict, audio: bytes) -> bytes:
    """Frame a request: ``>I`` header length, JSON header, audio bytes."""
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(head)) + head + audio


def split_frame(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bytes]:
    """Split a request payload into (header bytes, audio bytes); checks sizes first."""
    if len(payload) > limits.max_payload_bytes:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}",
        )
    if len(payload) < HEADER_LENGTH_BYTES:
        raise ProtocolError(
            ErrorCode.MALFORMED_FRAME, f"payload of {len(payload)} bytes has no length prefix"
        )
    (n,) = struct.unpack(">I", payload[:HEADER_LENGTH_BYTES])
    if n == 0 or n > limits.max_header_bytes:
        raise ProtocolError(
            ErrorCode.MALFORMED_FRAME, f"header length {n} outside 1..{limits.max_header_bytes}"
        )
    if HEADER_LENGTH_BYTES + n > len(payload):
        raise ProtocolError(
            ErrorCode.MALFORMED_FRAME,
            f"header length {n} runs past the {len(payload)}-byte payload",
        )
    return payload[HEADER_LENGTH_BYTES : HEADER_LENGTH_BYTES + n], payload[
        HEADER_LENGTH_BYTES + n :
    ]


def _json_object(head: bytes) -> dict:
    """The JSON object in ``head``; ``bad_json`` for anything else, nesting too deep included."""
    try:
        header = json.loads(head.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError are ValueErrors
        raise ProtocolError(ErrorCode.BAD_JSON, f"header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise ProtocolError(
            ErrorCode.BAD_JSON, f"header is a JSON {type(header).__name__}, not an object"
        )
    return header


def peek_correlation(payload: bytes) -> str | None:
    """Best-effort correlation id of a payload that may be malformed (for error answers)."""
    try:
        head, _ = split_frame(payload, Limits(max_payload_bytes=len(payload) + 1))
        value = _json_object(head).get("correlation")
    except ProtocolError:
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def parse_header(head: bytes, *, expected_reply_to: str | None = None) -> dict:
    """Decode and validate a JSON header; returns it with ``options`` normalised.

    Checks, in order: JSON object (``bad_json``), ``schema_version`` (``unsupported_schema``),
    ``correlation`` 1-128 chars, ``sample_rate`` positive int, ``options`` object
    (``bad_header``), ``reply_to`` equal to ``expected_reply_to`` (``bad_reply_topic``), option
    names (``unknown_option``) and values (``bad_option``). A missing ``options`` becomes ``{}``.
    """
    header = _json_object(head)
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_SCHEMA,
            f"schema_version {version!r}; this device speaks {SCHEMA_VERSION}",
        )
    corr = header.get("correlation")
    if not isinstance(corr, str) or not 0 < len(corr) <= 128:
        raise ProtocolError(
            ErrorCode.BAD_HEADER, "correlation must be a string of 1-128 characters"
        )
    rate = header.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ProtocolError(
            ErrorCode.BAD_HEADER, f"sample_rate must be a positive integer, got {rate!r}"
        )
    options = header.get("options", {})
    if not isinstance(options, dict):
        raise ProtocolError(ErrorCode.BAD_HEADER, "options must be a JSON object")
    reply_to = header.get("reply_to")
    if not isinstance(reply_to, str):
        raise ProtocolError(ErrorCode.BAD_HEADER, "reply_to must be a string")
    if expected_reply_to is not None and reply_to != expected_reply_to:
        raise ProtocolError(
            ErrorCode.BAD_REPLY_TOPIC,
            f"reply_to {reply_to!r} is not the sender's topic {expected_reply_to!r}",
        )
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ProtocolError(
            ErrorCode.UNKNOWN_OPTION, f"unknown option(s) {unknown}; known: {list(KNOWN_OPTIONS)}"
        )
    top_k = options.get("top_k")
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50
    ):
        raise ProtocolError(
            ErrorCode.BAD_OPTION, f"top_k must be an integer in 1..50, got {top_k!r}"
        )
    text = options.get("text")
    if text is not None and (
        not isinstance(text, str) or not text.strip() or "\n" in text or len(text) > 1000
    ):
        raise ProtocolError(
            ErrorCode.BAD_OPTION, "text must be one non-empty line of at most 1000 characters"
        )
    return header | {"options": options}


def error_answer(code: ErrorCode | str, message: str, correlation: str | None) -> dict:
    """The JSON answer for a refused or failed request."""
    return {
        "schema_version": SCHEMA_VERSION,
        "correlation": correlation,
        "error": {"code": str(code), "message": message},
    }


# ----------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class BrokerAddress:
    """Host and port of a broker parsed from ``mqtt://HOST[:PORT]``."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://HOST[:PORT]`` (or ``HOST:PORT``); credentials go in their own options."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"broker URL {url!r} must look like mqtt://HOST:PORT")
    if parsed.username or parsed.password:
        raise ValueError("put broker credentials in --username/--password, not in the URL")
    return BrokerAddress(parsed.hostname, parsed.port or DEFAULT_PORT)


class _ConnectFailed(ConnectionError):
    def __init__(self, reason: str, unsupported: bool):
        super().__init__(reason)
        self.unsupported = unsupported


def connect_mqtt(
    broker: str | BrokerAddress,
    client_id: str,
    *,
    protocol: str = "auto",
    username: str | None = None,
    password: str | None = None,
    clean: bool = True,
    will: tuple[str, bytes] | None = None,
    on_connect=None,
    on_message=None,
    timeout_s: float = 10.0,
) -> tuple[mqtt.Client, int]:
    """Connect a paho client (callback API v2) and start its network thread.

    Parameters
    ----------
    broker : ``mqtt://HOST:PORT`` or a parsed address.
    client_id : MQTT client id (also the last level of this client's topics).
    protocol : ``"5"``, ``"3.1.1"`` or ``"auto"`` (try v5, fall back to 3.1.1 when the broker
        refuses it or sends no CONNACK within :data:`AUTO_V5_CONNACK_S`, as amqtt 0.12 does).
    clean : ``False`` asks for a persistent session (QoS 1 messages survive a reconnect).
    will : ``(topic, payload)`` published retained by the broker if this client vanishes.
    on_connect : ``f(client, is_v5)`` called after every (re)connection, e.g. to subscribe.
    on_message : paho ``on_message`` callback.
    timeout_s : seconds to wait for CONNACK.

    Returns
    -------
    (client, protocol) with ``protocol`` ``mqtt.MQTTv5`` or ``mqtt.MQTTv311``. paho reconnects
    by itself after a broker restart.
    """
    addr = broker if isinstance(broker, BrokerAddress) else parse_broker_url(broker)
    choices = {"auto": [mqtt.MQTTv5, mqtt.MQTTv311], "5": [mqtt.MQTTv5], "3.1.1": [mqtt.MQTTv311]}
    if protocol not in choices:
        raise ValueError(f"protocol must be one of {sorted(choices)}, got {protocol!r}")
    last: _ConnectFailed | None = None
    versions = choices[protocol]
    for version in versions:
        # amqtt never answers a v5 CONNECT that carries a will: in auto mode the v5 attempt gets
        # a short CONNACK wait (a reachable broker answers in milliseconds); 3.1.1 works anyway
        wait_s = (
            min(timeout_s, AUTO_V5_CONNACK_S)
            if len(versions) > 1 and version == mqtt.MQTTv5
            else timeout_s
        )
        try:
            client = _connect_once(
                addr,
                client_id,
                version,
                username,
                password,
                clean,
                will,
                on_connect,
                on_message,
                wait_s,
            )
            return client, version
        except _ConnectFailed as e:
            last = e
            if not e.unsupported:
                break
    raise ConnectionError(f"cannot connect to {addr.url} as {client_id!r}: {last}")


def _connect_once(
    addr, client_id, version, username, password, clean, will, on_connect, on_message, timeout_s
):
    """One attempt with MQTT ``version``: the started client; raises :class:`_ConnectFailed`."""
    is_v5 = version == mqtt.MQTTv5
    client = _new_client(client_id, version, username, password, clean, will)
    first = threading.Event()
    outcome: dict = {}
    client.on_connect, client.on_disconnect = _connection_callbacks(
        client_id, addr, is_v5, on_connect, first, outcome
    )
    if on_message is not None:
        client.on_message = on_message
    try:
        client.connect(
            addr.host,
            addr.port,
            keepalive=30,
            clean_start=clean if is_v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=_connect_properties(is_v5, clean),
        )
    except OSError as e:
        raise _ConnectFailed(f"{addr.url}: {e}", unsupported=False) from e
    client.loop_start()
    _await_connack(client, first, outcome, timeout_s, is_v5)
    return client


def _new_client(client_id, version, username, password, clean, will) -> mqtt.Client:
    """A paho client (callback API v2) with its reconnect delays, credentials and will set."""
    is_v5 = version == mqtt.MQTTv5
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        clean_session=None if is_v5 else clean,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=4)
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        client.will_set(will[0], will[1], qos=QOS, retain=True)
    return client


def _connection_callbacks(client_id, addr, is_v5, on_connect, first, outcome):
    """paho ``(on_connect, on_disconnect)`` callbacks of one connection attempt.

    The first CONNACK or disconnection sets ``first``, a failure noted as ``outcome["error"]``;
    later ones are logged (paho reconnects by itself). ``on_connect(client, is_v5)`` runs after
    every successful connection.
    """

    def _on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if not first.is_set():
                outcome["error"] = str(reason_code)
                first.set()
            log.warning("%s: connection refused: %s", client_id, reason_code)
            return
        if on_connect is not None:
            on_connect(c, is_v5)
        if not first.is_set():
            first.set()
        else:
            log.info("%s: reconnected to %s", client_id, addr.url)

    def _on_disconnect(c, userdata, flags, reason_code, properties):
        if not first.is_set():
            outcome["error"] = f"disconnected before CONNACK ({reason_code})"
            first.set()
        elif reason_code != 0:
            log.warning("%s: lost connection (%s); paho will reconnect", client_id, reason_code)

    return _on_connect, _on_disconnect


def _connect_properties(is_v5: bool, clean: bool) -> Properties | None:
    """CONNECT properties: a one-hour session expiry for a persistent v5 session, else none."""
    if not is_v5 or clean:
        return None
    connect_props = Properties(PacketTypes.CONNECT)
    connect_props.SessionExpiryInterval = 3600
    return connect_props


def _await_connack(client, first, outcome, timeout_s, is_v5) -> None:
    """Wait for the first CONNACK; on a refusal or timeout stop ``client``, raise _ConnectFailed."""
    if not first.wait(timeout_s) or "error" in outcome:
        client.loop_stop()
        client.disconnect()
        reason = outcome.get("error", f"no CONNACK within {timeout_s} s")
        # amqtt answers a v5 CONNECT with "Unsupported protocol version" or, when the CONNECT
        # carries v5 properties, by closing the connection: both mean "try 3.1.1"
        refused_v5 = "Unsupported protocol" in reason or "CONNACK" in reason
        raise _ConnectFailed(reason, unsupported=is_v5 and refused_v5)


# ----------------------------------------------------------------------------- client


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
        corr = uuid.uuid4().hex
        return encode_request(
            make_header(corr, self.reply_topic, sample_rate, options), audio
        ), corr

    def request_payload(self, payload: bytes, correlation: str | None = None) -> dict:
        """Send a raw payload (any bytes) and return the answer dict, error answers included.

        ``correlation`` is the id to wait for; default: the one in the payload's header.
        Retries after a timeout; raises :class:`DeviceTimeout` when every attempt times out.
        """
        corr = correlation or peek_correlation(payload) or uuid.uuid4().hex
        for attempt in range(self.retries + 1):
            fut = self._submit(payload, corr)
            try:
                return fut.result(timeout=self.timeout_s)
            except concurrent.futures.TimeoutError:
                log.warning("%s: no answer to %s (attempt %d)", self.client_id, corr, attempt + 1)
        with self._lock:
            self._pending.pop(corr, None)
        raise DeviceTimeout(
            f"no answer from device {self.device_id!r} to {corr} after {self.retries + 1} attempts"
        )

    async def arequest_payload(self, payload: bytes, correlation: str | None = None) -> dict:
        """Asyncio version of :meth:`request_payload`."""
        corr = correlation or peek_correlation(payload) or uuid.uuid4().hex
        for attempt in range(self.retries + 1):
            fut = asyncio.wrap_future(self._submit(payload, corr))
            try:
                return await asyncio.wait_for(fut, self.timeout_s)
            except TimeoutError:
                log.warning("%s: no answer to %s (attempt %d)", self.client_id, corr, attempt + 1)
        with self._lock:
            self._pending.pop(corr, None)
        raise DeviceTimeout(
            f"no answer from device {self.device_id!r} to {corr} after {self.retries + 1} attempts"
        )

    def request(self, audio: bytes, sample_rate: int, options: dict | None = None) -> dict:
        """Send encoded audio (WAV/FLAC bytes); return the answer, error answers included."""
        payload, corr = self._frame(audio, sample_rate, options)
        return self.request_payload(payload, corr)

    async def arequest(self, audio: bytes, sample_rate: int, options: dict | None = None) -> dict:
        """Asyncio version of :meth:`request`."""
        payload, corr = self._frame(audio, sample_rate, options)
        return await self.arequest_payload(payload, corr)

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
