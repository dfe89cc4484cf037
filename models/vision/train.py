"""Training, prediction and checkpoints for the CIFAR-10 CNN of :mod:`models.vision.cnn`.

The optimiser follows the reference paper (section 4.2.3: learning rate 0.001, learning-rate
decay 1e-7, up to 100 epochs). The paper does not name the optimiser; we use Adam (as the
public Shokri / ML-Leaks code does) with the Keras-style time decay
``lr_t = lr / (1 + lr_decay * t)``, ``t`` = number of optimiser steps so far. The L2 option is
Adam's coupled ``weight_decay`` (adds ``weight_decay * w`` to each gradient, i.e. a loss term
``weight_decay / 2 * ||w||^2``). Early stopping is off by default.

Everything a worker needs is plain numpy + a dict, so shadow and reference models can be trained
in other processes (``auditor.executor``). Checkpoints are a folder with ``model.safetensors``
and ``model.json``; nothing is pickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from models.vision.cnn import DEFAULT_ARCH, arch_from_config, build_cnn

log = logging.getLogger(__name__)

#: Training keys and their defaults; a config may also hold the keys of ``DEFAULT_ARCH``.
DEFAULT_TRAIN: dict = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.001,
    "lr_decay": 1e-7,  # Keras-style: lr / (1 + lr_decay * steps)
    "weight_decay": 0.0,  # L2 coefficient (Adam's coupled weight decay)
    "early_stopping_patience": 0,  # epochs without val-loss improvement; 0 = off
    "num_threads": None,  # torch.set_num_threads; None = leave as is
}
CHECKPOINT_FORMAT = "iot-privacy-auditor/cifar-cnn"
CHECKPOINT_VERSION = 1


def resolve_config(config: dict) -> dict:
    """Defaults (training + architecture) updated by ``config``; unknown keys are refused."""
    known = {**DEFAULT_TRAIN, **DEFAULT_ARCH}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"unknown CNN config key(s) {unknown}; known: {sorted(known)}")
    cfg = {**known, **config}
    cfg.update(arch_from_config(cfg))
    if int(cfg["epochs"]) < 1 or int(cfg["batch_size"]) < 1:
        raise ValueError(
            f"epochs and batch_size must be >= 1, got {cfg['epochs']}, {cfg['batch_size']}"
        )
    return cfg


def images_to_tensor(x: np.ndarray) -> torch.Tensor:
    """float32 ``(n, 3, H, W)`` in [0, 1] from ``(n, H, W, 3)`` images.

    uint8 images are divided by 255; float images are taken as already in [0, 1].
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (n, H, W, 3), got shape {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.float() / 255.0 if x.dtype == np.uint8 else t.float()
    return t.permute(0, 3, 1, 2).contiguous()  # (n, 3, H, W)


def train_cnn(
    x: np.ndarray,
    y: np.ndarray,
    config: dict,
    *,
    seed: int,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Train the reference CNN on images ``x (n, H, W, 3)`` and labels ``y (n,)``.

    Parameters
    ----------
    x, y : np.ndarray
        Training images (uint8 0..255 or float in [0, 1], channels last) and int labels.
    config : dict
        Keys of :data:`DEFAULT_TRAIN` and :data:`models.vision.cnn.DEFAULT_ARCH`.
    seed : int
        Seeds the initialisation, the batch order and dropout.
    x_val, y_val : np.ndarray, optional
        Held-out records whose loss and accuracy are logged each epoch (needed for early
        stopping).
    progress : bool
        A progress bar over epochs on stderr.

    Returns
    -------
    model : torch.nn.Module
        The trained network in eval mode (outputs logits).
    history : dict
        Per-epoch lists ``epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds`` (train
        figures are running averages over the epoch's batches; ``val_*`` are None without
        validation data), ``final`` (train / val loss and accuracy of the returned model in
        eval mode), ``config`` (resolved), ``seed``, ``n_train``, ``train_fingerprint``.
    """
    cfg = resolve_config(config)
    if cfg["num_threads"]:
        torch.set_num_threads(int(cfg["num_threads"]))
    y = np.asarray(y, dtype=np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    has_val = x_val is not None and y_val is not None
    if cfg["early_stopping_patience"] and not has_val:
        raise ValueError("early_stopping_patience needs x_val and y_val")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_cnn(cfg)
    xt, yt = images_to_tensor(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 1.0 / (1.0 + cfg["lr_decay"] * step)
    )
    loss_fn = nn.CrossEntropyLoss()
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
    hist: dict = {k: [] for k in keys}
    best = (float("inf"), None, 0)  # (val loss, state dict, epochs since improvement)
    bs = int(cfg["batch_size"])
    bar = tqdm(range(1, int(cfg["epochs"]) + 1), desc="train cnn", disable=not progress, unit="ep")
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.from_numpy(rng.permutation(len(xt)))
        tot_loss, tot_ok = 0.0, 0
        for start in range(0, len(xt), bs):
            idx = order[start : start + bs]
            logits = model(xt[idx])  # (b, n_classes)
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_ok += int((logits.argmax(1) == yt[idx]).sum())
        row = {"epoch": epoch, "train_loss": tot_loss / len(xt), "train_acc": tot_ok / len(xt)}
        row["val_loss"], row["val_acc"] = evaluate(model, x_val, y_val) if has_val else (None, None)
        row["lr"] = sched.get_last_lr()[0]
        row["seconds"] = time.perf_counter() - t0
        for k in keys:
            hist[k].append(row[k])
        bar.set_postfix(
            loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}", val_acc=row["val_acc"]
        )
        if cfg["early_stopping_patience"]:
            if row["val_loss"] < best[0]:
                best = (row["val_loss"], copy.deepcopy(model.state_dict()), 0)
            else:
                best = (best[0], best[1], best[2] + 1)
            if best[2] >= cfg["early_stopping_patience"]:
                log.info("early stop after epoch %d (best val loss %.4f)", epoch, best[0])
                model.load_state_dict(best[1])
                break
    model.eval()
    train_loss, train_acc = evaluate(model, x, y)
    val_loss, val_acc = evaluate(model, x_val, y_val) if has_val else (None, None)
    hist["final"] = {
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val_loss,
        "val_acc": val_acc,
    }
    hist.update(config=cfg, seed=seed, n_train=len(y), train_fingerprint=data_fingerprint(x, y))
    return model, hist


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """float32 logits ``(n, n_classes)`` of images ``x (n, H, W, 3)`` (model put in eval mode)."""
    model.eval()
    xt = images_to_tensor(x)
    outs = [model(xt[i : i + batch_size]) for i in range(0, len(xt), batch_size)]
    if not outs:
        return np.zeros((0, model.classifier[-1].out_features), dtype=np.float32)
    return torch.cat(outs).numpy()


def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """float64 softmax probabilities ``(n, n_classes)`` of images ``x (n, H, W, 3)``."""
    logits = torch.from_numpy(predict_logits(model, x, batch_size)).double()
    return torch.softmax(logits, dim=1).numpy()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of ``model`` on ``x, y``."""
    logits = torch.from_numpy(predict_logits(model, x))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss = float(nn.functional.cross_entropy(logits, yt))
    return loss, float((logits.argmax(1) == yt).float().mean())


def data_fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 (hex) of the training images and labels, recorded in checkpoints."""
    h = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    h.update(np.asarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def save_cnn(model: nn.Module, config: dict, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write ``path/model.safetensors`` and ``path/model.json`` (resolved config + ``meta``)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch_from_config(cfg),
        "config": cfg,
        "meta": meta or {},
    }
    (out / "model.json").write_text(json.dumps(doc, indent=2))
    return out


def read_cnn_json(path: str | Path) -> dict:
    """The ``model.json`` of a checkpoint folder, checked for format and version."""
    p = Path(path) / "model.json"
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a readable CNN checkpoint description ({e})") from e
    if doc.get("format") != CHECKPOINT_FORMAT or doc.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{p}: format {doc.get('format')!r} v{doc.get('version')} is not "
            f"{CHECKPOINT_FORMAT!r} v{CHECKPOINT_VERSION}"
        )
    return doc


def load_cnn(path: str | Path) -> nn.Module:
    """The model saved by :func:`save_cnn` in ``path``, in eval mode."""
    doc = read_cnn_json(path)
    model = build_cnn(doc["arch"])
    weights = Path(path) / "model.safetensors"
    try:
        model.load_state_dict(load_file(str(weights)))
    except (OSError, RuntimeError) as e:
        raise ValueError(
            f"{weights}: weights do not match {Path(path) / 'model.json'} ({e})"
        ) from e
    return model.eval()
