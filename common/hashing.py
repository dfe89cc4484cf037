"""Content digests (hex) of bytes, text, arrays, JSON documents and files.

The one place the project hashes content: training-data fingerprints and model ids recorded in
checkpoints, cache keys and file names, in-memory record checks, the CIFAR-10 archive's md5.
SHA-256 unless a caller asks otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def digest(*parts: bytes | str | np.ndarray, algorithm: str = "sha256") -> str:
    """Digest of ``parts`` in turn: bytes as they are, text as UTF-8, arrays as their C-order
    bytes (neither shape nor dtype enter: fix the dtype, or add the shape, where it matters)."""
    h = hashlib.new(algorithm)
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part).tobytes()
        h.update(part)
    return h.hexdigest()


def arrays_digest(arrays: Mapping[str, np.ndarray], algorithm: str = "sha256") -> str:
    """Digest of named arrays (e.g. a network's weights) in sorted name order: each name, then
    the array's C-order bytes (:func:`digest`)."""
    return digest(
        *(p for name in sorted(arrays) for p in (name, arrays[name])), algorithm=algorithm
    )


def records_digest(x: np.ndarray, y: np.ndarray, algorithm: str = "sha256") -> str:
    """Digest of labelled records: ``x``'s bytes, then ``y`` as int64 (any integer dtype of the
    same labels gives the same digest)."""
    return digest(np.asarray(x), np.asarray(y, dtype=np.int64), algorithm=algorithm)


def json_digest(doc, algorithm: str = "sha256") -> str:
    """Digest of ``json.dumps(doc, sort_keys=True)``: equal for equal configs whatever their key
    order."""
    return digest(json.dumps(doc, sort_keys=True), algorithm=algorithm)


def file_digest(path: str | Path, pattern: str = "*", algorithm: str = "sha256") -> str:
    """Digest of a file's bytes, or of a folder's files matching ``pattern`` (recursively): each
    one's relative path (POSIX), a NUL, its bytes, a NUL, in sorted path order."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder to digest")
    h = hashlib.new(algorithm)
    if p.is_file():
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    for f in sorted(q for q in p.rglob(pattern) if q.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
