"""common.hashing: digests of text, arrays, labelled records, JSON documents and files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from common.hashing import arrays_digest, digest, file_digest, json_digest, records_digest


def test_parts_are_hashed_in_turn():
    x = np.arange(6, dtype=np.int16).reshape(2, 3)
    expected = hashlib.sha256(b"ab" + "é".encode() + x.tobytes()).hexdigest()
    assert digest(b"ab", "é", x) == expected
    assert digest(b"ab", "é", np.asfortranarray(x)) == expected  # C order whatever the layout
    assert digest("ab", algorithm="sha1") == hashlib.sha1(b"ab").hexdigest()


def test_arrays_digest_is_names_and_bytes_in_name_order():
    w = np.arange(4, dtype=np.float32).reshape(2, 2)
    b = np.array(3, dtype=np.int64)  # 0-d, as a batch-norm step counter
    expected = hashlib.sha256(b"a.b" + b.tobytes() + b"a.w" + w.tobytes()).hexdigest()
    assert arrays_digest({"a.w": w, "a.b": b}) == expected
    assert arrays_digest({"a.w": np.asfortranarray(w), "a.b": b}) == expected
    assert arrays_digest({"a.w": w, "a.b": b + 1}) != expected


def test_records_digest_keeps_the_checkpoint_fingerprint():
    """Pinned: the ``train_fingerprint`` CIFAR checkpoints record (x's bytes, int64 labels)."""
    x = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    pinned = "0d3d507a615f58c3aff97b7fcdac6f0a45344c5da36b988d9923f05da1d48d7e"
    assert records_digest(x, np.array([3, 1], dtype=np.int32)) == pinned
    assert records_digest(x, [3, 1]) == pinned
    assert records_digest(x, [1, 3]) != pinned


def test_json_digest_ignores_key_order():
    doc = {"b": [1, 2], "a": {"y": 0.5, "x": None}}
    assert json_digest(doc) == json_digest({"a": {"x": None, "y": 0.5}, "b": [1, 2]})
    assert (
        json_digest(doc) == hashlib.sha256(b'{"a": {"x": null, "y": 0.5}, "b": [1, 2]}').hexdigest()
    )


def test_file_and_folder_digests(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.py").write_bytes(b"B")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"A")
    assert file_digest(tmp_path / "d" / "b.py") == hashlib.sha256(b"B").hexdigest()
    everything = hashlib.sha256(b"b.py\0B\0sub/a.txt\0A\0").hexdigest()
    assert file_digest(tmp_path / "d") == everything
    assert file_digest(tmp_path / "d", "*.py") == hashlib.sha256(b"b.py\0B\0").hexdigest()
    with pytest.raises(FileNotFoundError, match="nope"):
        file_digest(tmp_path / "nope")
