"""Audio file I/O shared by corpus readers, feature extraction and the device.

Samples are decoded by soundfile (libsndfile) in every format, NIST SPHERE (TIMIT's ``.WAV``)
included. The SPHERE header is still parsed here: libsndfile exposes none of its fields, reads
every byte after the header as samples whatever ``sample_count`` says (a truncated file comes
back short without a word), accepts a header without ``end_head`` and names no file in its
errors. SPHERE is also written here: libsndfile's NIST writer lays out another header
(different fields, NUL padding), so synthesized corpora would change bytes.
Every reader returns mono float32 samples in [-1, 1] and the sample rate in Hz.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

SPHERE_MAGIC = b"NIST_1A"


class AudioFormatError(ValueError):
    """An audio file that cannot be decoded; the message names the file."""


def parse_sphere_header(raw: bytes, name: str = "<bytes>") -> dict[str, str | int]:
    """Parse a NIST SPHERE header into ``{field: value}`` plus ``header_size``.

    Raises :class:`AudioFormatError` for a missing magic, an unreadable size line or a
    header that claims more bytes than the file has.
    """
    if not raw.startswith(SPHERE_MAGIC):
        raise AudioFormatError(f"{name}: not a NIST SPHERE file (no NIST_1A magic)")
    lines = raw[:4096].split(b"\n")
    try:
        header_size = int(lines[1].strip())
    except (IndexError, ValueError) as e:
        raise AudioFormatError(f"{name}: corrupt SPHERE header size line") from e
    if header_size < 16 or header_size > len(raw):
        raise AudioFormatError(f"{name}: SPHERE header size {header_size} out of range")
    fields: dict[str, str | int] = {"header_size": header_size}
    for lineno, line in enumerate(raw[:header_size].split(b"\n")[2:], 3):
        text = line.decode("ascii", errors="replace").strip()
        if text == "end_head":
            break
        if not text or text.startswith(";"):
            continue
        parts = text.split(None, 2)
        if len(parts) != 3 or not parts[1].startswith("-"):
            raise AudioFormatError(f"{name}: corrupt SPHERE header line {lineno}: {text!r}")
        key, kind, value = parts
        if kind.startswith("-i"):
            try:
                fields[key] = int(value)
            except ValueError as e:
                raise AudioFormatError(
                    f"{name}: SPHERE header line {lineno}: {key} is not an integer"
                ) from e
        else:
            fields[key] = value
    else:
        raise AudioFormatError(f"{name}: SPHERE header has no end_head")
    return fields


def read_sphere(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM NIST SPHERE file -> (samples float32 (n,), sample_rate Hz)."""
    path = Path(path)
    raw = path.read_bytes()
    h = parse_sphere_header(raw, str(path))
    coding = str(h.get("sample_coding", "pcm"))
    if "shorten" in coding or "wavpack" in coding:
        raise AudioFormatError(
            f"{path}: SPHERE sample_coding {coding!r} is compressed; decompress it first "
            "(e.g. `sph2pipe -f wav`) and point the reader at the PCM files"
        )
    for key in ("sample_rate", "sample_count", "sample_n_bytes", "channel_count"):
        if key not in h:
            raise AudioFormatError(f"{path}: SPHERE header lacks {key}")
    if h["sample_n_bytes"] != 2:
        raise AudioFormatError(
            f"{path}: only 16-bit SPHERE is supported, got {h['sample_n_bytes']} bytes"
        )
    if h["channel_count"] != 1:
        raise AudioFormatError(
            f"{path}: only mono SPHERE is supported, got {h['channel_count']} channels"
        )
    n = int(h["sample_count"])
    held = (len(raw) - int(h["header_size"])) // 2
    if held < n:
        raise AudioFormatError(
            f"{path}: SPHERE header promises {n} samples but the file holds {held}"
        )
    try:
        x, _ = sf.read(io.BytesIO(raw), frames=n, dtype="float32")
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFormatError(f"{path}: cannot decode SPHERE samples ({e})") from e
    return x, int(h["sample_rate"])


def write_sphere(path: str | Path, samples: np.ndarray, sample_rate: int = 16000) -> None:
    """Write int16 (or float in [-1, 1]) mono samples as a 1024-byte-header NIST SPHERE file."""
    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = np.clip(np.round(x.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    lines = [
        "NIST_1A",
        "   1024",
        "database_id -s5 TIMIT",
        f"sample_count -i {len(x)}",
        f"sample_rate -i {sample_rate}",
        "channel_count -i 1",
        "sample_byte_format -s2 01",
        "sample_n_bytes -i 2",
        "sample_sig_bits -i 16",
        "sample_coding -s3 pcm",
        "end_head",
    ]
    header = ("\n".join(lines) + "\n").encode("ascii").ljust(1024, b" ")
    Path(path).write_bytes(header + x.astype("<i2").tobytes())


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read SPHERE, WAV or FLAC -> (mono float32 samples (n,), sample_rate Hz)."""
    path = Path(path)
    if not path.exists():
        raise AudioFormatError(f"{path}: audio file not found")
    with path.open("rb") as f:
        magic = f.read(7)
    if magic == SPHERE_MAGIC:
        return read_sphere(path)
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFormatError(f"{path}: cannot decode audio ({e})") from e
    if x.shape[1] != 1:
        x = x.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(x[:, 0]), int(sr)
