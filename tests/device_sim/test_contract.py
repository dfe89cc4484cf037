"""Wire contract: framing, header checks, topics (no broker needed)."""

from __future__ import annotations

import inspect
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_sim import contract
from device_sim.contract import (
    DEFAULT_LIMITS,
    SCHEMA_VERSION,
    ErrorCode,
    Limits,
    ProtocolError,
    client_id_from_request_topic,
    encode_audio,
    encode_request,
    make_header,
    parse_header,
    peek_correlation,
    request_topic,
    response_topic,
    split_frame,
)

from .conftest import header_json

REPLY = response_topic("dev", "alice")


def _head(**changes) -> bytes:
    h = make_header("c1", REPLY, 16000, {}) | changes
    return json.dumps(h).encode()


def test_frame_round_trip():
    audio = encode_audio(np.zeros(1600, np.float32), 16000)
    header = make_header("abc", REPLY, 16000, {"top_k": 3})
    head, body = split_frame(encode_request(header, audio))
    assert body == audio
    assert parse_header(head, expected_reply_to=REPLY) == header
    assert peek_correlation(encode_request(header, audio)) == "abc"


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"", ErrorCode.MALFORMED_FRAME),
        (b"\x00\x00", ErrorCode.MALFORMED_FRAME),
        (struct.pack(">I", 0) + b"x", ErrorCode.MALFORMED_FRAME),
        (struct.pack(">I", 50) + b"{}", ErrorCode.MALFORMED_FRAME),
        (struct.pack(">I", 10**6) + b"{}", ErrorCode.MALFORMED_FRAME),
        (b"\x00" * (DEFAULT_LIMITS.max_payload_bytes + 1), ErrorCode.PAYLOAD_TOO_LARGE),
    ],
)
def test_split_frame_refuses(payload, code):
    with pytest.raises(ProtocolError) as e:
        split_frame(payload)
    assert e.value.code == code


@pytest.mark.parametrize(
    "head, code",
    [
        (b"\xff\xfe", ErrorCode.BAD_JSON),
        (b"{not json", ErrorCode.BAD_JSON),
        (b"[1, 2]", ErrorCode.BAD_JSON),
        (_head(schema_version=99), ErrorCode.UNSUPPORTED_SCHEMA),
        (_head(schema_version=None), ErrorCode.UNSUPPORTED_SCHEMA),
        (_head(correlation=""), ErrorCode.BAD_HEADER),
        (_head(correlation=5), ErrorCode.BAD_HEADER),
        (_head(sample_rate="16000"), ErrorCode.BAD_HEADER),
        (_head(sample_rate=True), ErrorCode.BAD_HEADER),
        (_head(options=[]), ErrorCode.BAD_HEADER),
        (_head(reply_to=None), ErrorCode.BAD_HEADER),
        (_head(reply_to=response_topic("dev", "bob")), ErrorCode.BAD_REPLY_TOPIC),
        (_head(options={"beam": 3}), ErrorCode.UNKNOWN_OPTION),
        (_head(options={"top_k": 0}), ErrorCode.BAD_OPTION),
        (_head(options={"top_k": "3"}), ErrorCode.BAD_OPTION),
        (_head(options={"text": "two\nlines"}), ErrorCode.BAD_OPTION),
    ],
)
def test_parse_header_refuses_with_distinct_code(head, code):
    with pytest.raises(ProtocolError) as e:
        parse_header(head, expected_reply_to=REPLY)
    assert e.value.code == code


def test_error_codes_are_distinct_and_aliases_are_refused():
    # iterating an Enum skips aliases; __members__ lists them
    assert len({c.value for c in ErrorCode.__members__.values()}) == len(ErrorCode.__members__)
    # ErrorCode's own definition with one alias more must not define a class (@enum.unique)
    source = inspect.getsource(ErrorCode) + '    ALIAS = "malformed_frame"\n'
    with pytest.raises(ValueError, match="duplicate values found.*ALIAS -> MALFORMED_FRAME"):
        exec(source, vars(contract).copy())


def test_header_without_options_reads_as_empty_options():
    header = make_header("c1", REPLY, 16000)
    del header["options"]
    assert parse_header(json.dumps(header).encode(), expected_reply_to=REPLY)["options"] == {}


@pytest.mark.parametrize("head", [b"[" * 4000, b'{"":' * 1000, b"[" * 2000 + b"]" * 2000])
def test_deeply_nested_header_is_bad_json(head):
    assert len(head) <= DEFAULT_LIMITS.max_header_bytes
    with pytest.raises(ProtocolError) as e:
        parse_header(head, expected_reply_to=REPLY)
    assert e.value.code == ErrorCode.BAD_JSON
    assert peek_correlation(struct.pack(">I", len(head)) + head) is None


#: JSON values of every kind, a little nested.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=10,
)
HEADER_KEYS = ("schema_version", "correlation", "reply_to", "sample_rate", "options")
HEADER_CODES = {
    ErrorCode.BAD_JSON,
    ErrorCode.UNSUPPORTED_SCHEMA,
    ErrorCode.BAD_HEADER,
    ErrorCode.BAD_REPLY_TOPIC,
    ErrorCode.UNKNOWN_OPTION,
    ErrorCode.BAD_OPTION,
}


@settings(max_examples=300, deadline=None)
@given(
    drop=st.sets(st.sampled_from(HEADER_KEYS)),
    changes=st.dictionaries(st.sampled_from((*HEADER_KEYS, "extra")), JSON_VALUES, max_size=3),
    options=st.dictionaries(st.sampled_from(("top_k", "text", "beam")), JSON_VALUES, max_size=2),
    deep=st.none() | st.tuples(st.sampled_from(HEADER_KEYS), st.integers(500, 2000)),
)
def test_mutated_headers_get_a_specific_code_or_parse(drop, changes, options, deep):
    """Headers with fields dropped, retyped or nested ``deep`` lists down: each is refused with
    a header code or parsed with its ``options`` as a dict."""
    header = make_header("c1", REPLY, 16000, {}) | {"options": options} | changes
    for key in drop:
        header.pop(key, None)
    try:
        parsed = parse_header(header_json(header, deep), expected_reply_to=REPLY)
    except ProtocolError as e:
        assert e.code in HEADER_CODES
    else:
        assert isinstance(parsed["options"], dict) and set(parsed["options"]) <= {"top_k", "text"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_protocol_errors(payload):
    try:
        head, _ = split_frame(payload, Limits(max_payload_bytes=200))
        parse_header(head, expected_reply_to=REPLY)
    except ProtocolError as e:
        assert e.code in set(ErrorCode)


def test_topics_and_ids():
    assert request_topic("d1", "alice") == "voice/d1/asr/request/alice"
    assert client_id_from_request_topic("voice/d1/asr/request/alice") == "alice"
    with pytest.raises(ValueError):
        request_topic("d1", "a/b")
    with pytest.raises(ValueError):
        response_topic("d+", "alice")
    with pytest.raises(ValueError):
        client_id_from_request_topic("voice/d1/status")
    for bad in ("bad id", "x" * 65, "", "a+b"):  # no reply topic exists for these
        with pytest.raises(ValueError, match="client id"):
            client_id_from_request_topic(f"voice/d1/asr/request/{bad}")


def test_a_correlation_id_that_is_not_utf8_text_is_a_bad_header():
    head = json.dumps(make_header("x\ud800y", response_topic("d1", "alice"), 16000)).encode()
    assert b"\\ud800" in head  # JSON carries the lone surrogate as an escape
    with pytest.raises(ProtocolError) as e:
        parse_header(head)
    assert e.value.code == ErrorCode.BAD_HEADER and "UTF-8" in e.value.message
    assert peek_correlation(struct.pack(">I", len(head)) + head) is None


def test_contract_module_imports_neither_torch_nor_paho():
    code = (
        "import sys, device_sim.contract; "
        "print(sorted(m for m in ('torch', 'paho') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert SCHEMA_VERSION == 1
