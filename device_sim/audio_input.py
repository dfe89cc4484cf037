"""Decode and check the audio bytes of a request before the recognizer sees them.

Turns WAV/FLAC bytes into mono float32 samples, or raises :class:`device_sim.contract.ProtocolError`
with the code of the first limit broken: ``not_audio``, ``truncated_audio`` (libsndfile reads a
WAV whose ``data`` chunk promises more bytes than it holds without complaint, so the RIFF chunk
sizes are checked here), ``bad_sample_rate``, ``not_mono``, ``too_long``, ``too_short``,
``empty_audio``, ``non_finite``. Durations are checked from the file header, before decoding.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from device_sim.contract import ErrorCode, Limits, ProtocolError


def wav_missing_bytes(raw: bytes) -> int:
    """Bytes a RIFF/WAVE ``data`` chunk declares beyond what ``raw`` holds (0 if complete)."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            available = len(raw) - (pos + 8)
            return 0 if size in (0, 0xFFFFFFFF) else max(0, size - available)
        pos += 8 + size + (size & 1)
    return 0


def decode_audio(audio: bytes, header_rate: int, limits: Limits) -> np.ndarray:
    """Decode request audio -> mono float32 samples ``(n,)`` in [-1, 1] at ``limits.sample_rate``.

    Parameters
    ----------
    audio : the WAV/FLAC file bytes after the request header.
    header_rate : the sample rate the header declares, Hz.
    limits : the device's limits.
    """
    info = _read_info(audio)
    _check_format(info, header_rate, limits)
    _check_duration(info, limits)
    return _decode_samples(audio, info)


def _read_info(audio: bytes):
    """The ``soundfile.info`` of non-empty WAV/FLAC ``audio`` whose RIFF chunks are complete."""
    if not audio:
        raise ProtocolError(ErrorCode.EMPTY_AUDIO, "the request carries no audio bytes")
    try:
        info = sf.info(io.BytesIO(audio))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ProtocolError(ErrorCode.NOT_AUDIO, f"audio bytes are not WAV/FLAC ({e})") from e
    missing = wav_missing_bytes(audio)
    if missing:
        raise ProtocolError(ErrorCode.TRUNCATED_AUDIO, f"WAV data chunk is {missing} bytes short")
    return info


def _check_format(info, header_rate: int, limits: Limits) -> None:
    """The file's sample rate is the header's and the device's; its channels the device's."""
    if info.samplerate != header_rate:
        raise ProtocolError(
            ErrorCode.BAD_SAMPLE_RATE,
            f"file is {info.samplerate} Hz but the header says {header_rate} Hz",
        )
    if info.samplerate != limits.sample_rate:
        raise ProtocolError(
            ErrorCode.BAD_SAMPLE_RATE,
            f"{info.samplerate} Hz audio; this device takes {limits.sample_rate} Hz",
        )
    if info.channels != limits.channels:
        raise ProtocolError(
            ErrorCode.NOT_MONO, f"{info.channels} channels; this device takes {limits.channels}"
        )


def _check_duration(info, limits: Limits) -> None:
    """The header's duration is within the device's limits and the file holds samples."""
    duration = info.frames / info.samplerate
    if duration > limits.max_duration_s:
        raise ProtocolError(
            ErrorCode.TOO_LONG, f"{duration:.2f} s of audio, limit {limits.max_duration_s} s"
        )
    if info.frames == 0:
        raise ProtocolError(ErrorCode.EMPTY_AUDIO, "the audio file holds no samples")
    if duration < limits.min_duration_s:
        raise ProtocolError(
            ErrorCode.TOO_SHORT, f"{duration:.3f} s of audio, minimum {limits.min_duration_s} s"
        )


def _decode_samples(audio: bytes, info) -> np.ndarray:
    """The first channel of ``audio`` as float32 ``(n,)``, all the header promises, finite."""
    try:
        x, _ = sf.read(io.BytesIO(audio), dtype="float32", always_2d=True)  # (n, channels)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ProtocolError(
            ErrorCode.TRUNCATED_AUDIO, f"audio cannot be decoded to the end ({e})"
        ) from e
    if x.shape[0] < info.frames:
        raise ProtocolError(
            ErrorCode.TRUNCATED_AUDIO, f"header promises {info.frames} samples, got {x.shape[0]}"
        )
    samples = np.ascontiguousarray(x[:, 0])  # (n,)
    if not np.all(np.isfinite(samples)):
        raise ProtocolError(ErrorCode.NON_FINITE, "audio contains NaN or infinite samples")
    return samples
