"""CIFAR-10 loading and the member / non-member / shadow-pool index split.

Three on-disk forms are read, all into the same :class:`ImageDataset` (uint8 images
``(n, H, W, 3)``, int64 labels, class names, train and test parts):

* the official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``,
  ``batches.meta``), optionally fetched by :func:`download_cifar10` when the user asks;
* a class-folder tree ``ROOT/{train,test}/<class>/<image>``;
* a zip of such a tree (e.g. the JPEG re-encoding of CIFAR-10 the recipes' ``data`` names).

Class indices follow the sorted class names (for CIFAR-10 this is the official label order).
Decoding 60,000 JPEGs takes a while, so trees and zips are decoded once and cached as ``.npy``
files under ``~/.cache/iot-privacy-auditor/cifar10/<sha256 of the source>/``.

Every bad input (corrupt image, class folder missing from a split, label count mismatch, a
zip entry outside the class-folder layout) raises :class:`DatasetError` naming the file.

The module (about 440 lines) stays whole: its readers of the three forms share the dataset
type, its checks and its cache, and each reader is short.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from common.hashing import file_digest
from corpora.splits import SplitError, draw_splits, read_record_splits, write_splits

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_DIR = "cifar-10-batches-py"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CACHE_FILES = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy", "classes.json")


class DatasetError(ValueError):
    """An image dataset on disk that cannot be read as asked; the message names the file."""


@dataclass(frozen=True)
class ImageDataset:
    """Images and labels of one dataset, split train/test.

    Attributes
    ----------
    x_train, x_test : np.ndarray
        uint8 images ``(n, H, W, 3)``, channels last, values 0..255.
    y_train, y_test : np.ndarray
        int64 class indices ``(n,)`` into ``classes``.
    classes : tuple of str
        Class names, index order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """Train then test concatenated: ``x (n_train + n_test, H, W, 3)``, ``y (n,)``.

        The record pool that :func:`member_split` indexes (train records first).
        """
        return (
            np.concatenate([self.x_train, self.x_test]),
            np.concatenate([self.y_train, self.y_test]),
        )


# --------------------------------------------------------------------------------------
# entry point


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/iot-privacy-auditor/cifar10``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "iot-privacy-auditor" / "cifar10"


def load_image_dataset(
    source: str | Path,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    download: bool = False,
    progress: bool = True,
) -> ImageDataset:
    """Load CIFAR-10 (or any dataset in one of the three layouts) from ``source``.

    Parameters
    ----------
    source : path
        A zip of a class-folder tree, a class-folder tree, a ``cifar-10-batches-py`` folder,
        or a folder that holds ``cifar-10-batches-py``.
    cache_dir : path, optional
        Where decoded trees/zips are cached (default :func:`default_cache_dir`).
    use_cache : bool
        Read and write the ``.npy`` cache for trees and zips.
    download : bool
        When ``source`` holds no dataset, download the official CIFAR-10 python batches into
        ``source`` (needs network access; never done unless asked).
    progress : bool
        Show a progress bar while decoding images.

    Returns
    -------
    ImageDataset
    """
    src = Path(source)
    batches = _find_batches_dir(src)
    if batches is None and download:
        batches = download_cifar10(src)
    if batches is not None:
        return load_cifar_batches(batches)
    if not src.exists():
        raise DatasetError(
            f"{src}: no such file or folder (pass download=True / --download to fetch CIFAR-10)"
        )
    if not use_cache:
        return _decode_source(src, progress=progress)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = cache / file_digest(src)  # sha256 of the file, or of the folder's paths and files
    if all((entry / f).exists() for f in _CACHE_FILES):
        log.info("loading cached arrays from %s", entry)
        return _read_cache(entry)
    ds = _decode_source(src, progress=progress)
    _write_cache(entry, ds)
    log.info("cached decoded arrays in %s", entry)
    return ds


def _decode_source(src: Path, *, progress: bool) -> ImageDataset:
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise DatasetError(f"{src}: not a zip file, a class-folder tree nor {BATCHES_DIR}")
        return load_class_zip(src, progress=progress)
    return load_class_tree(src, progress=progress)


# --------------------------------------------------------------------------------------
# cache


def _write_cache(entry: Path, ds: ImageDataset) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        tmp = entry / f"{name}.tmp.npy"
        np.save(tmp, getattr(ds, name), allow_pickle=False)
        tmp.replace(entry / f"{name}.npy")  # atomic: a half-written cache is never read
    (entry / "classes.json").write_text(json.dumps(list(ds.classes)))


def _read_cache(entry: Path) -> ImageDataset:
    arrays = {
        n: np.load(entry / f"{n}.npy", allow_pickle=False)
        for n in ("x_train", "y_train", "x_test", "y_test")
    }
    classes = tuple(json.loads((entry / "classes.json").read_text()))
    return ImageDataset(classes=classes, **arrays)


# --------------------------------------------------------------------------------------
# class-folder trees and zips


def load_class_tree(root: str | Path, *, progress: bool = True) -> ImageDataset:
    """Decode ``ROOT/{train,test}/<class>/<image>`` (one wrapping folder above is allowed)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    base = _tree_base(root, [p.name for p in root.iterdir()], lambda n: (root / n).is_dir())
    base_dir = root / base if base else root
    entries = []
    for split in SPLITS:
        split_dir = base_dir / split
        if not split_dir.is_dir():
            raise DatasetError(f"{split_dir}: split folder missing from the class-folder tree")
        for item in sorted(split_dir.iterdir()):
            if not item.is_dir():
                raise DatasetError(f"{item}: a file where a class folder was expected")
            for f in sorted(item.iterdir()):
                if not f.is_file():
                    raise DatasetError(f"{f}: expected an image file inside class folder")
                entries.append((split, item.name, str(f)))
    return _assemble(root, entries, lambda name: Path(name).read_bytes(), progress)


def load_class_zip(path: str | Path, *, progress: bool = True) -> ImageDataset:
    """Decode a zip holding ``{train,test}/<class>/<image>`` (optionally under one folder)."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{path}: not a readable zip file ({e})") from e
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]  # skip directory entries
        tops = {n.split("/", 1)[0] for n in names}
        base = _tree_base(path, sorted(tops), lambda t: any(n.startswith(t + "/") for n in names))
        entries = []
        for n in sorted(names):
            rel = n[len(base) + 1 :] if base else n
            parts = rel.split("/")
            if len(parts) != 3 or parts[0] not in SPLITS or not parts[1] or not parts[2]:
                raise DatasetError(
                    f"{path}: entry {n!r} is not <split>/<class>/<image> with split in {SPLITS}"
                )
            entries.append((parts[0], parts[1], n))
        return _assemble(path, entries, zf.read, progress)


def _tree_base(where: Path, tops: list[str], is_dir) -> str:
    """'' when ``train``/``test`` sit at the top, else the one wrapping folder holding them."""
    if all(s in tops and is_dir(s) for s in SPLITS):
        return ""
    if len(tops) == 1 and is_dir(tops[0]):
        return tops[0]
    raise DatasetError(
        f"{where}: not a class-folder tree: expected folders {SPLITS} at the top "
        f"(or under one wrapping folder), found {sorted(tops)[:10]}"
    )


def _assemble(
    where: Path, entries: list[tuple[str, str, str]], read, progress: bool
) -> ImageDataset:
    """Decode ``(split, class, name)`` entries into an :class:`ImageDataset`."""
    classes_of = {s: sorted({c for sp, c, _ in entries if sp == s}) for s in SPLITS}
    for split in SPLITS:
        if not classes_of[split]:
            raise DatasetError(f"{where}: split {split!r} has no class folders with images")
    classes = sorted(set(classes_of["train"]) | set(classes_of["test"]))
    for split in SPLITS:
        missing = sorted(set(classes) - set(classes_of[split]))
        if missing:
            raise DatasetError(f"{where}: class folder(s) {missing} missing from split {split!r}")
    index = {c: i for i, c in enumerate(classes)}
    images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    shape = None
    for split, cls, name in tqdm(
        entries, desc=f"decoding {where.name}", disable=not progress, unit="img"
    ):
        arr = _decode_image(read(name), name)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise DatasetError(
                f"{name}: image is {arr.shape}, the dataset's first image is {shape}"
            )
        images[split].append(arr)
        labels[split].append(index[cls])
    return ImageDataset(
        x_train=np.stack(images["train"]),
        y_train=np.asarray(labels["train"], dtype=np.int64),
        x_test=np.stack(images["test"]),
        y_test=np.asarray(labels["test"], dtype=np.int64),
        classes=tuple(classes),
    )


def _decode_image(data: bytes, name: str) -> np.ndarray:
    """uint8 ``(H, W, 3)`` RGB pixels of one encoded image; errors name the file."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{name}: corrupt or unreadable image ({e})") from e


def write_class_zip(path: str | Path, ds: ImageDataset, *, image_format: str = "PNG") -> Path:
    """Write ``ds`` as a zip of ``{train,test}/<class>/<index>.<ext>`` images (PIL encoder).

    The inverse of :func:`load_class_zip` (exact with a lossless ``image_format`` such as PNG);
    used to export subsets and to build small datasets for smoke runs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = image_format.lower()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for split in SPLITS:
            x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
            for i, (img, label) in enumerate(zip(x, y, strict=True)):
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format=image_format)
                zf.writestr(f"{split}/{ds.classes[label]}/{i:05d}.{ext}", buf.getvalue())
    return path


# --------------------------------------------------------------------------------------
# the official python batches


def _find_batches_dir(src: Path) -> Path | None:
    for cand in (src, src / BATCHES_DIR):
        if cand.is_dir() and (cand / "test_batch").exists():
            return cand
    return None


def load_cifar_batches(folder: str | Path) -> ImageDataset:
    """Read the official ``cifar-10-batches-py`` folder.

    The official files are Python pickles of dicts of numpy arrays. This is the dataset's
    published *data* format (not a model); it is the only place the project unpickles
    anything, and only files the user pointed at.
    """
    folder = Path(folder)
    meta = _unpickle(folder / "batches.meta")
    try:
        classes = tuple(c.decode() for c in meta[b"label_names"])
    except (KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{folder / 'batches.meta'}: no label_names ({e})") from e
    parts = {
        "train": [_read_batch(folder / b, len(classes)) for b in _TRAIN_BATCHES],
        "test": [_read_batch(folder / "test_batch", len(classes))],
    }
    return ImageDataset(
        x_train=np.concatenate([x for x, _ in parts["train"]]),
        y_train=np.concatenate([y for _, y in parts["train"]]),
        x_test=parts["test"][0][0],
        y_test=parts["test"][0][1],
        classes=classes,
    )


class _BatchUnpickler(pickle.Unpickler):
    """Loads only what the official batches hold (dicts, lists, bytes, numbers and numpy
    arrays): any other global, e.g. a function a crafted file would call, is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    if not path.exists():
        raise DatasetError(f"{path}: missing from {BATCHES_DIR}")
    try:
        with path.open("rb") as f:  # official CIFAR-10 data format: only its types load
            return _BatchUnpickler(f, encoding="bytes").load()
    except Exception as e:  # a truncated/corrupt/forbidden pickle can raise many types
        raise DatasetError(f"{path}: unreadable CIFAR batch ({type(e).__name__}: {e})") from e


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(n, 32, 32, 3)`` images and int64 labels of one official batch file."""
    d = _unpickle(path)
    try:
        data = np.asarray(d[b"data"], dtype=np.uint8)  # (n, 3072): R plane, G plane, B plane
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except KeyError as e:
        raise DatasetError(f"{path}: missing field {e}") from e
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: data has shape {data.shape}, expected (n, 3072)")
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(f"{path}: labels outside 0..{n_classes - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def download_cifar10(dest: str | Path, *, url: str = CIFAR10_URL) -> Path:
    """Download and unpack the official CIFAR-10 python batches into ``dest``.

    Returns the ``cifar-10-batches-py`` folder. Raises ``RuntimeError`` when offline.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "cifar-10-python.tar.gz"
    log.info("downloading %s to %s", url, archive)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, archive.open("wb") as f:
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
    except (urllib.error.URLError, OSError) as e:
        archive.unlink(missing_ok=True)
        raise RuntimeError(f"cannot download CIFAR-10 from {url} (offline?): {e}") from e
    md5 = file_digest(archive, algorithm="md5")
    if md5 != CIFAR10_MD5:
        raise DatasetError(f"{archive}: md5 {md5} is not the official {CIFAR10_MD5}")
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")
    return dest / BATCHES_DIR


# --------------------------------------------------------------------------------------
# membership split


def member_split(
    n_total: int,
    train_size: int,
    seed: int,
    n_shadow_pool: int,
    n_nonmembers: int | None = None,
) -> dict[str, np.ndarray]:
    """Disjoint seeded index sets over a pool of ``n_total`` records.

    Parameters
    ----------
    n_total : int
        Size of the record pool (e.g. ``len(ImageDataset.pooled()[0])``).
    train_size : int
        Number of target members (the target's training set).
    seed : int
        Seed of the permutation (:func:`corpora.splits.draw_splits`).
    n_shadow_pool : int
        Records the attacker owns (shadow / reference models), disjoint from the target's.
    n_nonmembers : int, optional
        Non-members used for evaluation (default ``train_size``: balanced, as in the paper).

    Returns
    -------
    dict
        ``{"target_members", "target_nonmembers", "shadow_pool"}`` -> sorted int64 index arrays.
    """
    n_non = train_size if n_nonmembers is None else n_nonmembers
    sizes = {"target_members": train_size, "target_nonmembers": n_non, "shadow_pool": n_shadow_pool}
    return draw_splits(n_total, sizes, seed)


def save_member_split(path: str | Path, split: dict[str, np.ndarray], **meta) -> None:
    """Write a split as JSON ``{**meta, "splits": {name: [index, ...]}}`` (:func:`write_splits`)."""
    write_splits(path, split, **meta)


def load_member_split(path: str | Path) -> dict[str, np.ndarray]:
    """Read a split written by :func:`save_member_split` (checks that the sets are disjoint)."""
    try:
        return read_record_splits(path)
    except SplitError as e:
        raise DatasetError(str(e)) from e
