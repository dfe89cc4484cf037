"""corpora.audio: SPHERE header parsing, SPHERE/WAV/FLAC reading, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from corpora.audio import (
    AudioFormatError,
    parse_sphere_header,
    read_audio,
    read_sphere,
    write_sphere,
)


def sphere_bytes(samples: np.ndarray, byte_format: str = "01", coding: str = "pcm") -> bytes:
    """A hand-built SPHERE file with the given byte order and coding."""
    lines = [
        "NIST_1A",
        "   1024",
        f"sample_count -i {len(samples)}",
        "sample_rate -i 16000",
        "channel_count -i 1",
        f"sample_byte_format -s2 {byte_format}",
        "sample_n_bytes -i 2",
        f"sample_coding -s{len(coding)} {coding}",
        "end_head",
    ]
    header = ("\n".join(lines) + "\n").encode().ljust(1024, b" ")
    dtype = "<i2" if byte_format == "01" else ">i2"
    return header + samples.astype(dtype).tobytes()


def test_write_then_read_sphere_round_trips(tmp_path):
    x = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_sphere(tmp_path / "a.wav", x, 16000)
    y, sr = read_audio(tmp_path / "a.wav")
    assert sr == 16000 and y.dtype == np.float32 and y.shape == (6,)
    np.testing.assert_array_equal(np.round(y * 32768).astype(np.int16), x)
    header = parse_sphere_header((tmp_path / "a.wav").read_bytes())
    assert header["header_size"] == 1024 and header["sample_count"] == 6


def test_sphere_samples_are_the_pcm_body_on_a_synthesized_corpus(tiny_synth_corpus):
    """Every sample of the project's own SPHERE files, exactly: int16 body / 32768."""
    wavs = sorted(tiny_synth_corpus.rglob("*.WAV"))
    assert len(wavs) == 16
    for wav in wavs:
        raw = wav.read_bytes()
        n = parse_sphere_header(raw)["sample_count"]
        expected = np.frombuffer(raw[1024 : 1024 + 2 * n], "<i2").astype(np.float32) / 32768
        x, sr = read_sphere(wav)
        assert sr == 16000 and x.dtype == np.float32
        np.testing.assert_array_equal(x, expected)


def test_sphere_reads_sample_count_samples_where_libsndfile_reads_every_byte(tmp_path):
    """Why the header is parsed here: libsndfile ignores ``sample_count``."""
    path = tmp_path / "t.wav"
    x = np.array([5, -7, 9], dtype=np.int16)
    path.write_bytes(sphere_bytes(x) + b"\x01\x02")
    assert len(sf.read(path, dtype="int16")[0]) == 4
    y, _ = read_sphere(path)
    np.testing.assert_array_equal(np.round(y * 32768).astype(np.int16), x)


def test_undecodable_sphere_samples_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "o.wav"
    path.write_bytes(sphere_bytes(np.arange(10, dtype=np.int16)).replace(b"-s2 01", b"-s2 1 "))
    with pytest.raises(AudioFormatError, match="cannot decode SPHERE samples") as e:
        read_sphere(path)
    assert str(path) in str(e.value)


def test_big_endian_sphere(tmp_path):
    x = np.array([1, 256, -2], dtype=np.int16)
    (tmp_path / "b.wav").write_bytes(sphere_bytes(x, byte_format="10"))
    y, _ = read_sphere(tmp_path / "b.wav")
    np.testing.assert_array_equal(np.round(y * 32768).astype(np.int16), x)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: b"RIFF" + raw[4:], "no NIST_1A magic"),
        (lambda raw: raw.replace(b"   1024", b"   abcd", 1), "header size line"),
        (
            lambda raw: raw.replace(b"sample_rate -i 16000", b"sample_rate -i sixtn"),
            "line 4: sample_rate is not an integer",
        ),
        (lambda raw: raw.replace(b"end_head", b"end_hXad"), "corrupt SPHERE header line"),
        (lambda raw: raw[:1100], "promises 100 samples"),
    ],
)
def test_corrupt_sphere_is_refused_naming_the_file(tmp_path, mangle, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(mangle(sphere_bytes(np.zeros(100, dtype=np.int16))))
    with pytest.raises(AudioFormatError, match=message) as e:
        read_sphere(path)
    assert str(path) in str(e.value)


def test_shorten_sphere_is_refused(tmp_path):
    path = tmp_path / "s.wav"
    path.write_bytes(
        sphere_bytes(np.zeros(10, dtype=np.int16), coding="pcm,embedded-shorten-v2.00")
    )
    with pytest.raises(AudioFormatError, match="compressed.*sph2pipe"):
        read_audio(path)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_wav_and_flac_are_read_as_mono_float(tmp_path, fmt):
    stereo = np.stack([np.full(50, 0.5), np.full(50, -0.25)], axis=1).astype(np.float32)  # (50, 2)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, stereo, 8000, format=fmt, subtype="PCM_16")
    y, sr = read_audio(path)
    assert sr == 8000 and y.shape == (50,) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.125, atol=1e-4)  # channel mean


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(AudioFormatError, match="not found"):
        read_audio(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"junk" * 100)
    with pytest.raises(AudioFormatError, match="cannot decode"):
        read_audio(tmp_path / "junk.wav")
