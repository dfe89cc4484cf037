"""The device's MQTT wire contract: what the device and its clients both agree on.

A request is one MQTT message on ``voice/<device_id>/asr/request/<client_id>`` whose payload
is a *frame*: a 4-byte big-endian header length ``N``, ``N`` bytes of UTF-8 JSON header, then
the audio file bytes (16-bit PCM WAV or FLAC, mono). The header carries the schema version,
the correlation id, the reply topic, the sample rate and options, so replies pair up on
MQTT 3.1.1 too (the embedded amqtt broker speaks only 3.1.1); on an MQTT v5 broker the client
also sets ``ResponseTopic`` and ``CorrelationData``. The answer is JSON on
``voice/<device_id>/asr/response/<client_id>``; the device's retained state is on
``voice/<device_id>/status``. ``docs/protocol.md`` is the prose version of this module.

Topics, framing, header checks, error codes and limits live here and nothing else: connecting
to a broker is :mod:`device_sim.transport`, the client the auditor uses is
:mod:`device_sim.client`. This module must stay light: it imports numpy and soundfile, never
paho-mqtt or torch.
"""

from __future__ import annotations

import io
import json
import re
import struct
from dataclasses import asdict, dataclass
from enum import StrEnum, unique

import numpy as np
import soundfile as sf

#: Version of the header and answer schemas; a request with another version is refused.
SCHEMA_VERSION = 1
#: Bytes of the big-endian header-length prefix of a request frame.
HEADER_LENGTH_BYTES = 4
#: QoS of requests, answers and status.
QOS = 1
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
    """The sender's client id: the last level of its request topic; ``ValueError`` when the
    topic is not a request topic or the id is not a valid client id (no reply topic exists
    for it)."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "voice" or parts[2:4] != ["asr", "request"]:
        raise ValueError(f"not a request topic: {topic!r}")
    return _check_id("client id", parts[4])


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
    if isinstance(value, str) and 0 < len(value) <= 128 and _is_utf8(value):
        return value
    return None


def _is_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (JSON allows lone surrogates such as ``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    if not isinstance(corr, str) or not 0 < len(corr) <= 128 or not _is_utf8(corr):
        raise ProtocolError(
            ErrorCode.BAD_HEADER, "correlation must be a string of 1-128 characters (UTF-8 text)"
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
