"""Request audio checks: each broken limit has its own error code."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from device_sim.audio_input import decode_audio, wav_missing_bytes
from device_sim.contract import DEFAULT_LIMITS, ErrorCode, ProtocolError, encode_audio

RATE = 16000


def _wav(x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_decodes_wav_and_flac():
    x = _tone(0.5)
    for data in (encode_audio(x, RATE), encode_audio(x, RATE, "FLAC")):
        y = decode_audio(data, RATE, DEFAULT_LIMITS)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.max(np.abs(y - x)) < 1e-3


@pytest.mark.parametrize(
    "data, header_rate, code",
    [
        (b"definitely not audio" * 5, RATE, ErrorCode.NOT_AUDIO),
        (b"", RATE, ErrorCode.EMPTY_AUDIO),
        (_wav(_tone(1.0))[:9000], RATE, ErrorCode.TRUNCATED_AUDIO),
        (_wav(_tone(1.0), 8000), 8000, ErrorCode.BAD_SAMPLE_RATE),
        (_wav(_tone(1.0)), 8000, ErrorCode.BAD_SAMPLE_RATE),
        (_wav(np.stack([_tone(1.0)] * 2, axis=1)), RATE, ErrorCode.NOT_MONO),
        (_wav(_tone(DEFAULT_LIMITS.max_duration_s + 1)), RATE, ErrorCode.TOO_LONG),
        (_wav(_tone(0.05)), RATE, ErrorCode.TOO_SHORT),
        (_wav(np.zeros(0, np.float32)), RATE, ErrorCode.EMPTY_AUDIO),
        (_wav(np.full(RATE, np.nan, np.float32), subtype="FLOAT"), RATE, ErrorCode.NON_FINITE),
    ],
    ids=[
        "junk",
        "nothing",
        "truncated",
        "8k",
        "rate-mismatch",
        "stereo",
        "long",
        "short",
        "empty",
        "nan",
    ],
)
def test_each_broken_limit_has_its_code(data, header_rate, code):
    with pytest.raises(ProtocolError) as e:
        decode_audio(data, header_rate, DEFAULT_LIMITS)
    assert e.value.code == code


def test_wav_missing_bytes():
    data = _wav(_tone(0.1))
    assert wav_missing_bytes(data) == 0
    assert wav_missing_bytes(data[:-100]) == 100
    assert wav_missing_bytes(b"fLaC....") == 0
