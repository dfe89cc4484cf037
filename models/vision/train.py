"""Training of the CIFAR-10 CNN of :mod:`models.vision.cnn`: :func:`train_cnn`, the entry point.

One job per module: the training keys and their checks (:mod:`models.vision.config`), the
epoch loops with the defenses wired in (:mod:`models.vision.trainer`), queries
(:mod:`models.vision.inference`: images to tensors, logits, probabilities, loss) and checkpoints
(:mod:`models.vision.checkpoint`). Their public names are importable from here too.

The optimiser follows the reference paper (section 4.2.3: learning rate 0.001, learning-rate
decay 1e-7, up to 100 epochs). The paper does not name the optimiser; we use Adam (as the
public Shokri / ML-Leaks code does) with the Keras-style time decay
``lr_t = lr / (1 + lr_decay * t)``, ``t`` = number of optimiser steps so far. The L2 option is
Adam's coupled ``weight_decay`` (adds ``weight_decay * w`` to each gradient, i.e. a loss term
``weight_decay / 2 * ||w||^2``). Early stopping is off by default.

Training-time defenses (:mod:`models.privacy`), each a config key:

- ``weight_decay`` (L2) and ``dropout`` (an architecture key);
- ``advreg``: ``None`` or the parameters of the registry's ``advreg`` (``lam``, ``k_steps``,
  ``ref_fraction``, ``attack_lr``, ``warmup_epochs``): Nasr et al.'s min-max game
  (:class:`models.privacy.advreg.AdversarialRegularizer`). After ``warmup_epochs`` plain epochs,
  every batch first takes ``k_steps`` max steps of the inference model
  (:meth:`~models.privacy.advreg.AdversarialRegularizer.max_steps`: the batch's members against
  a random batch of the *reference set*, both as the eval-mode network answers them), then one
  classifier step on ``CE + lam * mean -log(1 - h)`` (the penalty on the training forward
  pass). The reference set, non-members of the same distribution, is ``x_ref, y_ref``, records
  outside the training data (required: :func:`auditor.cifar.target.train_target` draws one of
  ``ref_fraction`` x the training size for the target, and another for the attacker's shadows);
- ``dpsgd``: ``None`` or ``noise_multiplier``, ``max_grad_norm``, ``delta``: DP-SGD through Opacus
  (:func:`models.privacy.dpsgd.make_private`, RDP accountant) with Poisson-sampled batches of
  expected size ``batch_size`` and the same Adam optimizer and schedule; the history holds
  ``epsilon`` at ``min(delta, 1 / (10 n))`` (:func:`models.privacy.dpsgd.default_delta`) and
  ``dp``, the statement of what it covers (per training image, record-level). The CNN has no BatchNorm, so ``ModuleValidator`` finds nothing to
  fix and the saved architecture is the plain one (a module that would need fixing is refused
  rather than saved under an architecture it no longer has);
- ``stacking`` (an architecture key): ML-Leaks model stacking (:class:`StackedCNN`): the
  training set is cut into ``n_first + 1`` disjoint seeded parts; each first-level CNN trains on
  its part (same recipe), the meta-classifier trains ``meta_epochs`` epochs on the first-level
  softmax outputs of the last part.

- ``augment``: ``None`` or ``flip`` (bool), ``crop`` (pixels): each training batch is drawn
  through :func:`augment_batch` (random left-right mirror, random crop of the image padded with
  ``crop`` zero pixels), a fresh draw every epoch (Kaya & Dumitras, ICML 2021, on augmentation
  against membership inference). It combines with every other key.

``advreg``, ``dpsgd`` and ``stacking`` are mutually exclusive.

Everything a worker needs is plain numpy + a dict, so shadow and reference models can be trained
in other processes (``auditor.executor``). Checkpoints are a folder with ``model.safetensors``
and ``model.json``; nothing is pickled.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from common.hashing import records_digest
from models.vision.checkpoint import load_cnn, read_cnn_json, save_cnn
from models.vision.config import DEFAULT_TRAIN, resolve_config
from models.vision.inference import evaluate, images_to_tensor, predict_logits, predict_proba
from models.vision.trainer import augment_batch, train_single, train_stacked

__all__ = [  # the public names of the CNN's modules, importable from here as before
    "DEFAULT_TRAIN",
    "augment_batch",
    "evaluate",
    "images_to_tensor",
    "load_cnn",
    "predict_logits",
    "predict_proba",
    "read_cnn_json",
    "resolve_config",
    "save_cnn",
    "train_cnn",
]


def train_cnn(
    x: np.ndarray,
    y: np.ndarray,
    config: dict,
    *,
    seed: int,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    x_ref: np.ndarray | None = None,
    y_ref: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Train the reference CNN on images ``x (n, H, W, 3)`` and labels ``y (n,)``.

    Parameters
    ----------
    x, y : np.ndarray
        Training images (uint8 0..255 or float in [0, 1], channels last) and int labels.
    config : dict
        Keys of :data:`DEFAULT_TRAIN` and :data:`models.vision.cnn.DEFAULT_ARCH` (defenses:
        module docstring).
    seed : int
        Seeds the initialisation, the batch order, dropout, the defenses' draws and noise.
    x_val, y_val : np.ndarray, optional
        Held-out records whose loss and accuracy are logged each epoch (needed for early
        stopping).
    x_ref, y_ref : np.ndarray, optional
        The defender's reference non-members for ``advreg``, outside ``x`` (required with
        ``advreg``, ignored without).
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
        eval mode, train on all of ``x``), ``config`` (resolved), ``seed``, ``n_train``,
        ``train_fingerprint`` (:func:`common.hashing.records_digest` of ``x, y``),
        ``train_seconds`` (wall time of the whole call) and per defense:
        ``epsilon`` / ``delta`` (dpsgd), ``n_ref`` / ``attack_gain`` (advreg: the inference
        model's last gain per epoch, nats), ``first_level`` (stacking: each first-level
        model's history summary).
    """
    t_start = time.perf_counter()
    cfg = resolve_config(config)
    if cfg["num_threads"]:
        torch.set_num_threads(int(cfg["num_threads"]))
    y = np.asarray(y, dtype=np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    has_val = x_val is not None and y_val is not None
    if cfg["early_stopping_patience"] and not has_val:
        raise ValueError("early_stopping_patience needs x_val and y_val")
    if cfg["advreg"] is not None and (x_ref is None or y_ref is None or not len(y_ref)):
        raise ValueError(
            "advreg needs x_ref, y_ref: reference non-members from outside the training data"
        )
    if cfg["stacking"] is not None:
        model, hist = train_stacked(x, y, cfg, seed, x_val, y_val, progress)
    else:
        model, hist = train_single(x, y, cfg, seed, x_val, y_val, x_ref, y_ref, progress)
    model.eval()
    train_loss, train_acc = evaluate(model, x, y)
    val_loss, val_acc = evaluate(model, x_val, y_val) if has_val else (None, None)
    hist["final"] = {
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val_loss,
        "val_acc": val_acc,
    }
    hist.update(config=cfg, seed=seed, n_train=len(y), train_fingerprint=records_digest(x, y))
    hist["train_seconds"] = time.perf_counter() - t_start
    return model, hist
