"""The audited CIFAR-10 model: trained on a seeded member split, saved, and loaded back.

A target folder holds the checkpoint (``model.safetensors`` + ``model.json``), the member split
(``split.json``: indices into the pooled train+test records of the dataset, see
:meth:`models.vision.data.ImageDataset.pooled`) and the per-epoch training history
(``history.json``). The attacks read the split to know which records they may use
(``shadow_pool``) and which they are scored on (``target_members`` vs ``target_nonmembers``);
they reach the model only through :meth:`CifarTarget.predict_proba`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from models.vision.data import (
    ImageDataset,
    load_image_dataset,
    load_member_split,
    member_split,
    save_member_split,
)
from models.vision.train import load_cnn, predict_proba, read_cnn_json, save_cnn, train_cnn

log = logging.getLogger(__name__)

SPLIT_FILE = "split.json"
HISTORY_FILE = "history.json"


@dataclass
class CifarTarget:
    """A trained target with its data pool and member split.

    Attributes
    ----------
    model : torch.nn.Module
        The target CNN (logits out).
    x, y : np.ndarray
        The pooled records ``(n, H, W, 3)`` uint8 and labels ``(n,)`` the split indexes.
    split : dict of str to np.ndarray
        ``target_members``, ``target_nonmembers``, ``shadow_pool`` index arrays.
    classes : tuple of str
        Class names.
    info : dict
        The checkpoint's ``model.json``.
    """

    model: nn.Module
    x: np.ndarray
    y: np.ndarray
    split: dict[str, np.ndarray]
    classes: tuple[str, ...]
    info: dict

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The black-box query: softmax outputs ``(n, n_classes)`` of images ``(n, H, W, 3)``."""
        return predict_proba(self.model, x)

    def records(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one named split (e.g. ``"shadow_pool"``)."""
        idx = self.split[name]
        return self.x[idx], self.y[idx]


def train_target(
    data: str | Path,
    out: str | Path,
    *,
    train_size: int,
    seed: int,
    cnn_config: dict | None = None,
    n_shadow_pool: int | None = None,
    n_nonmembers: int | None = None,
    cache_dir: str | Path | None = None,
    download: bool = False,
    progress: bool = True,
) -> dict:
    """Split the pooled records of ``data``, train the target CNN on the members, save to ``out``.

    Parameters
    ----------
    data : path
        Dataset source for :func:`models.vision.data.load_image_dataset`.
    out : path
        Target folder to write (checkpoint, ``split.json``, ``history.json``).
    train_size : int
        Number of members (the target's training set).
    seed : int
        Seeds the split and the training.
    cnn_config : dict, optional
        Keys of :data:`models.vision.train.DEFAULT_TRAIN` / ``DEFAULT_ARCH``.
    n_shadow_pool : int, optional
        Records given to the attacker; default: every record not used by the target.
    n_nonmembers : int, optional
        Evaluation non-members (default ``train_size``); they are also the target's test set.
    cache_dir, download, progress
        Passed to the loader / trainer.

    Returns
    -------
    dict
        ``out`` (str), ``train_size``, ``seed``, ``final`` (train / test loss and accuracy),
        ``train_test_gap`` (train accuracy - test accuracy), ``seconds`` (training wall time).
    """
    out = Path(out)
    ds = load_image_dataset(data, cache_dir=cache_dir, download=download, progress=progress)
    x, y = ds.pooled()
    n_non = train_size if n_nonmembers is None else n_nonmembers
    pool = len(x) - train_size - n_non if n_shadow_pool is None else n_shadow_pool
    split = member_split(len(x), train_size, seed, pool, n_nonmembers=n_non)
    cfg = dict(cnn_config or {})
    members, nonmembers = split["target_members"], split["target_nonmembers"]
    log.info("training target on %d members (seed %d)", len(members), seed)
    model, hist = train_cnn(
        x[members], y[members], cfg, seed=seed,
        x_val=x[nonmembers], y_val=y[nonmembers], progress=progress,
    )  # fmt: skip
    final = hist["final"]
    summary = {
        "out": str(out),
        "train_size": int(train_size),
        "seed": int(seed),
        "final": final,
        "train_test_gap": final["train_acc"] - final["val_acc"],
        "seconds": float(sum(hist["seconds"])),
    }
    source = {"data": str(Path(data).resolve()), "classes": list(ds.classes)}
    save_cnn(
        model, cfg, out, meta={**source, **summary, "train_fingerprint": hist["train_fingerprint"]}
    )
    save_member_split(out / SPLIT_FILE, split, seed=seed, pool="train+test", **source)
    (out / HISTORY_FILE).write_text(json.dumps(hist, indent=1))
    return summary


def load_target(
    target_dir: str | Path,
    *,
    data: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> CifarTarget:
    """Load a folder written by :func:`train_target` (``data`` overrides the recorded source)."""
    target_dir = Path(target_dir)
    info = read_cnn_json(target_dir)
    source = data if data is not None else info["meta"].get("data")
    if source is None:
        raise ValueError(f"{target_dir / 'model.json'}: no data source recorded; pass data")
    ds: ImageDataset = load_image_dataset(source, cache_dir=cache_dir, progress=progress)
    x, y = ds.pooled()
    split = load_member_split(target_dir / SPLIT_FILE)
    top = max(int(v.max()) for v in split.values() if len(v))
    if top >= len(x):
        raise ValueError(
            f"{target_dir / SPLIT_FILE}: index {top} outside the {len(x)} records of {source}"
        )
    recorded = info["meta"].get("classes")
    if recorded is not None and tuple(recorded) != ds.classes:
        raise ValueError(f"{source}: classes {ds.classes} differ from the target's {recorded}")
    return CifarTarget(load_cnn(target_dir), x, y, split, ds.classes, info)
