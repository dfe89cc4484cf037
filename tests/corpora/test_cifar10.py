"""CIFAR-10 loaders on tiny generated datasets: zips, class trees, official batches, the cache."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from common.hashing import file_digest
from corpora.cifar10 import (
    DatasetError,
    ImageDataset,
    download_cifar10,
    load_class_tree,
    load_class_zip,
    load_image_dataset,
    load_member_split,
    member_split,
    save_member_split,
    write_class_zip,
)

CLASSES = ("cat", "airplane", "dog")  # deliberately unsorted: indices follow sorted names
COUNTS = {"train": 4, "test": 2}  # images per class


def _jpeg(rng: np.random.Generator, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _tree_entries(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        f"{split}/{cls}/{i:04d}.jpg": _jpeg(rng)
        for split, n in COUNTS.items()
        for cls in CLASSES
        for i in range(n)
    }


def _zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_zip_of_class_folders_is_decoded_with_sorted_class_indices(tmp_path):
    ds = load_class_zip(_zip(tmp_path / "d.zip", _tree_entries()), progress=False)
    assert ds.classes == ("airplane", "cat", "dog")
    assert ds.x_train.shape == (12, 8, 8, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (6, 8, 8, 3)
    assert ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [4, 4, 4]
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]


def test_class_tree_folder_and_wrapping_folder_give_the_same_arrays(tmp_path):
    entries = _tree_entries()
    for name, data in entries.items():
        f = tmp_path / "tree" / "cifar" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    from_tree = load_class_tree(tmp_path / "tree", progress=False)  # train/test under "cifar/"
    from_zip = load_class_zip(_zip(tmp_path / "d.zip", entries), progress=False)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_tree, name), getattr(from_zip, name))


def test_tree_without_a_test_split_is_refused(tmp_path):
    (tmp_path / "tree" / "cifar" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match="split folder missing"):
        load_class_tree(tmp_path / "tree")


def test_png_export_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    ds = ImageDataset(
        x_train=rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8),
        y_train=np.array([0, 0, 1, 1, 2, 2]),  # grouped by class: the order the reader returns
        x_test=rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8),
        y_test=np.array([0, 1, 2]),
        classes=("a", "b", "c"),
    )
    back = load_class_zip(write_class_zip(tmp_path / "x.zip", ds), progress=False)
    assert back.classes == ds.classes
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))


def test_cache_is_written_once_and_read_back(tmp_path):
    src = _zip(tmp_path / "d.zip", _tree_entries())
    cache = tmp_path / "cache"
    first = load_image_dataset(src, cache_dir=cache, progress=False)
    entry = cache / file_digest(src)
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        ["x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy", "classes.json"]
    )
    # poison the cached labels: a second load must come from the cache, not from the zip
    np.save(entry / "y_test.npy", np.zeros(6, dtype=np.int64))
    second = load_image_dataset(src, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(second.x_train, first.x_train)
    assert second.y_test.tolist() == [0] * 6 != first.y_test.tolist()
    assert second.classes == first.classes


def test_corrupt_image_error_names_the_entry(tmp_path):
    entries = _tree_entries()
    entries["train/dog/0002.jpg"] = b"\xff\xd8\xff not really a jpeg"
    with pytest.raises(DatasetError, match="train/dog/0002.jpg"):
        load_class_zip(_zip(tmp_path / "d.zip", entries), progress=False)


def test_class_missing_from_a_split_is_refused(tmp_path):
    entries = {k: v for k, v in _tree_entries().items() if not k.startswith("test/dog/")}
    with pytest.raises(DatasetError, match=r"\['dog'\] missing from split 'test'"):
        load_class_zip(_zip(tmp_path / "d.zip", entries), progress=False)


def test_zip_that_is_not_a_class_tree_is_refused(tmp_path):
    entries = _tree_entries()
    entries["train/stray.jpg"] = entries.pop("train/cat/0000.jpg")
    with pytest.raises(DatasetError, match="train/stray.jpg"):
        load_class_zip(_zip(tmp_path / "d.zip", entries), progress=False)
    with pytest.raises(DatasetError, match="not a class-folder tree"):
        load_class_zip(_zip(tmp_path / "e.zip", {"images/a.jpg": b"x", "b.txt": b"y"}))


def test_images_of_different_sizes_are_refused(tmp_path):
    entries = _tree_entries()
    entries["test/cat/0001.jpg"] = _jpeg(np.random.default_rng(3), size=9)
    with pytest.raises(DatasetError, match="test/cat/0001.jpg"):
        load_class_zip(_zip(tmp_path / "d.zip", entries), progress=False)


def test_plain_file_and_missing_source_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a zip file"):
        load_image_dataset(tmp_path / "notes.txt", use_cache=False)
    with pytest.raises(DatasetError, match="--download"):
        load_image_dataset(tmp_path / "absent.zip")


def _write_batches(folder, n_per_batch: int = 3, *, bad_labels: bool = False):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    planes = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 3, n_per_batch + (name == "test_batch" and bad_labels)))
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
        planes[name] = data
    return planes


def test_official_batches_are_read_channels_last(tmp_path):
    planes = _write_batches(tmp_path / "cifar-10-batches-py")
    ds = load_image_dataset(tmp_path)  # the folder that holds cifar-10-batches-py
    assert ds.classes == ("airplane", "automobile", "bird")
    assert ds.x_train.shape == (15, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    first = planes["data_batch_1"][0]  # R plane (1024), then G, then B, each row-major
    assert ds.x_train[0, 0, 1, 0] == first[1]  # red at row 0, column 1
    assert ds.x_train[0, 1, 0, 1] == first[1024 + 32]  # green at row 1, column 0
    assert ds.x_train[0, 31, 31, 2] == first[3071]  # blue at the last pixel


def test_official_batch_with_label_count_mismatch_names_the_file(tmp_path):
    _write_batches(tmp_path / "cifar-10-batches-py", bad_labels=True)
    with pytest.raises(DatasetError, match=r"test_batch: 4 labels for 3 images"):
        load_image_dataset(tmp_path / "cifar-10-batches-py")


class _Payload:
    """Unpickles into a call of ``os.system``: what a crafted batch file could run."""

    def __reduce__(self):
        import os

        return (os.system, ("touch hacked",))


def test_a_batch_that_would_run_code_is_refused_before_running_it(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": _Payload(), b"labels": []}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"data_batch_2: .*system is not allowed"):
        load_image_dataset(folder)
    assert not (tmp_path / "hacked").exists()


def test_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="cannot download CIFAR-10"):
        download_cifar10(tmp_path, url="http://127.0.0.1:9/cifar-10-python.tar.gz")
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()


def test_member_split_is_disjoint_sized_and_seeded(tmp_path):
    s = member_split(100, 20, seed=3, n_shadow_pool=40)
    assert [len(s[k]) for k in ("target_members", "target_nonmembers", "shadow_pool")] == [
        20,
        20,
        40,
    ]
    everything = np.concatenate(list(s.values()))
    assert len(np.unique(everything)) == 80 and everything.max() < 100
    again = member_split(100, 20, seed=3, n_shadow_pool=40)
    other = member_split(100, 20, seed=4, n_shadow_pool=40)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    assert not np.array_equal(s["target_members"], other["target_members"])
    with pytest.raises(ValueError, match="pool has only 100"):
        member_split(100, 40, seed=0, n_shadow_pool=30)


def test_a_seeded_member_split_keeps_its_records():
    """Pinned: the records a seed draws (splits of past runs must stay reproducible)."""
    s = member_split(30, 5, seed=3, n_shadow_pool=8, n_nonmembers=4)
    assert {k: v.tolist() for k, v in s.items()} == {
        "target_members": [3, 20, 23, 26, 27],
        "target_nonmembers": [12, 17, 18, 28],
        "shadow_pool": [0, 8, 9, 10, 11, 13, 15, 25],
    }
    assert all(v.dtype == np.int64 for v in s.values())


def test_member_split_file_round_trip_and_overlap_check(tmp_path):
    s = member_split(50, 10, seed=0, n_shadow_pool=20, n_nonmembers=5)
    save_member_split(tmp_path / "split.json", s, seed=0, pool="train+test")
    back = load_member_split(tmp_path / "split.json")
    assert all(np.array_equal(s[k], back[k]) for k in s)
    doc = json.loads((tmp_path / "split.json").read_text())
    assert doc["pool"] == "train+test"
    doc["splits"]["shadow_pool"].append(doc["splits"]["target_members"][0])
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="in both target_members and shadow_pool"):
        load_member_split(tmp_path / "bad.json")


def test_cache_key_and_archive_md5_keep_their_values(tmp_path):
    """Pinned (values of the code before ``common.hashing`` computed them): the cache folder of a
    decoded source and the md5 the official archive is checked against."""
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.py").write_bytes(b"B")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"A")
    (tmp_path / "f.bin").write_bytes(b"cifar")
    assert file_digest(tmp_path / "d") == (
        "649a77f8a2365a38a7f41a783f5b140a56ba8d6015c18fb6f04f2ce136b8fdad"
    )
    assert file_digest(tmp_path / "f.bin") == (
        "b19f9308522231ee9ffbdd35dcbd6f83bff95bd45fb73d97203a8da1fa789ad3"
    )
    with pytest.raises(DatasetError, match="md5 f5e79fd55db721a19cf28aa3ea5f1573 is not the"):
        download_cifar10(tmp_path / "dl", url=(tmp_path / "f.bin").as_uri())
