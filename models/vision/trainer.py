"""The CIFAR-10 CNN's training loops: one CNN (plain, advreg, DP-SGD, augmented) or a stack.

:func:`train_single` runs the epochs of one network with Adam and the Keras-style learning-rate
decay, the advreg game, DP-SGD through Opacus and data augmentation wired in as the config asks;
:func:`train_stacked` trains ML-Leaks' first-level CNNs on disjoint parts of the training set
(:func:`corpora.splits.draw_parts`) and the meta-classifier on the last part. Both return
``(model, history)``; :func:`models.vision.train.train_cnn` checks the inputs and completes the
history. The defenses are described in :mod:`models.vision.train`.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from corpora.splits import draw_parts
from models.privacy.advreg import AdversarialRegularizer
from models.vision.cnn import build_cnn
from models.vision.inference import evaluate, images_to_tensor

log = logging.getLogger(__name__)

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def augment_batch(xb: torch.Tensor, flip: bool, crop: int, gen: torch.Generator) -> torch.Tensor:
    """A random mirror and crop of each image of ``xb (b, 3, H, W)``; same shape.

    Each image is mirrored left-right with probability 1/2 (``flip``) and cut at a uniform
    offset out of itself padded with ``crop`` zero pixels on every side (``crop`` 0: no crop).
    """
    b, _, h, w = xb.shape
    if flip:
        mirror = torch.rand(b, generator=gen) < 0.5  # (b,)
        xb = torch.where(mirror[:, None, None, None], xb.flip(3), xb)
    if crop:
        padded = nn.functional.pad(xb, (crop, crop, crop, crop))  # (b, 3, H + 2c, W + 2c)
        dy = torch.randint(0, 2 * crop + 1, (b,), generator=gen)  # (b,) row offsets
        dx = torch.randint(0, 2 * crop + 1, (b,), generator=gen)  # (b,) column offsets
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (b, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (b, 1, 1, W)
        idx = torch.arange(b)[:, None, None, None]
        chan = torch.arange(xb.shape[1])[None, :, None, None]
        xb = padded[idx, chan, rows, cols]  # (b, 3, H, W)
    return xb


def train_single(x, y, cfg, seed, x_val, y_val, x_ref, y_ref, progress):
    """One CNN, plain or with ``advreg`` / ``dpsgd``: ``(model, history)``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    has_val = x_val is not None and y_val is not None
    model = build_cnn(cfg)
    hist: dict = {k: [] for k in HISTORY_KEYS}
    adv = cfg["advreg"]
    xt, yt = images_to_tensor(x), torch.from_numpy(y)
    bs = int(cfg["batch_size"])
    reg, draw_reference = None, None
    if adv is not None:
        reg, draw_reference = _advreg_setup(cfg, seed, x_ref, y_ref, rng, bs, hist)
    dp = _dpsgd_setup(model, cfg, xt, yt, seed, hist) if cfg["dpsgd"] is not None else None
    net, opt = (dp.module, dp.optimizer) if dp is not None else (model, _adam(model, cfg))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 1.0 / (1.0 + cfg["lr_decay"] * step)
    )
    aug = cfg["augment"]
    aug_gen = torch.Generator().manual_seed(seed + 3) if aug is not None else None
    best = (float("inf"), None, 0)  # (val loss, state dict, epochs since improvement)
    bar = tqdm(range(1, int(cfg["epochs"]) + 1), desc="train cnn", disable=not progress, unit="ep")
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        batches = _epoch_batches(dp, rng, xt, yt, bs)
        if aug is not None:
            batches = _augmented(batches, aug, aug_gen)
        adversarial = reg is not None and epoch > adv["warmup_epochs"]
        game = (reg, draw_reference, int(adv["k_steps"])) if adversarial else None
        row = {"epoch": epoch, **_train_epoch(net, batches, opt, sched, game)}
        row["val_loss"], row["val_acc"] = evaluate(model, x_val, y_val) if has_val else (None, None)
        row["lr"] = sched.get_last_lr()[0]
        row["seconds"] = time.perf_counter() - t0
        _record_epoch(hist, row, dp, reg)
        bar.set_postfix(
            loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}", val_acc=row["val_acc"]
        )
        if cfg["early_stopping_patience"]:
            best = _track_best(best, row["val_loss"], model)
            if best[2] >= cfg["early_stopping_patience"]:
                log.info("early stop after epoch %d (best val loss %.4f)", epoch, best[0])
                model.load_state_dict(best[1])
                break
    if dp is not None:
        model = _dpsgd_release(dp, hist, len(xt))
    return model, hist


def _adam(model: nn.Module, cfg: dict) -> torch.optim.Adam:
    """The training optimizer of ``model``: Adam at ``lr`` with coupled ``weight_decay`` (L2)."""
    return torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])


def _advreg_setup(cfg, seed, x_ref, y_ref, rng, bs, hist):
    """The advreg inference game: ``(regularizer, draw_reference)``; adds its history keys.

    ``draw_reference()`` gives a random batch of the reference set drawn with ``rng``.
    """
    adv = cfg["advreg"]
    xr = images_to_tensor(x_ref)  # (n_ref, 3, H, W)
    yr = torch.from_numpy(np.asarray(y_ref, dtype=np.int64))  # (n_ref,)
    reg = AdversarialRegularizer(
        int(cfg["n_classes"]), lam=adv["lam"], attack_lr=adv["attack_lr"], seed=seed + 1
    )
    hist.update(n_ref=len(yr), attack_gain=[])

    def draw_reference():  # a random reference batch: (b_ref, 3, H, W), (b_ref,)
        ridx = torch.from_numpy(rng.choice(len(yr), min(bs, len(yr)), replace=False))
        return xr[ridx], yr[ridx]

    return reg, draw_reference


def _dpsgd_setup(model, cfg, xt, yt, seed, hist):
    """Opacus' DP-SGD wrapping of ``model`` (Poisson batches of ``xt (n, 3, H, W)``, ``yt (n,)``).

    Adds ``epsilon`` (a list, per epoch) and ``delta`` to ``hist``.
    """
    # imported here: Opacus takes seconds to import and only DP training needs it
    from models.privacy.dpsgd import default_delta, fix_module, make_private

    _, changed = fix_module(model)
    if changed:  # cannot happen for CifarCNN (no BatchNorm); refuse rather than mis-save
        raise ValueError("the CNN would need ModuleValidator.fix; not supported")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xt, yt),
        batch_size=int(cfg["batch_size"]),
        generator=torch.Generator().manual_seed(seed),
    )
    d = cfg["dpsgd"]
    dp = make_private(
        model,
        _adam(model, cfg),
        loader,
        noise_multiplier=d["noise_multiplier"],
        max_grad_norm=d["max_grad_norm"],
        seed=seed,
    )
    delta = default_delta(len(xt), d["delta"])  # min(d["delta"], 1 / (10 n))
    hist.update(epsilon=[], delta=delta)
    return dp


def _dpsgd_release(dp, hist, n_train):
    """The plain trained CNN out of Opacus' wrapper; adds the final guarantee to ``hist``."""
    from models.privacy.dpsgd import guarantee, release

    model = release(dp.module)
    hist["epsilon_final"] = hist["epsilon"][-1] if hist["epsilon"] else 0.0
    covers = "the CNN's SGD steps, per training image (record-level)"
    hist["dp"] = guarantee(hist["epsilon_final"], hist["delta"], n_train, covers, [])
    return model


def _epoch_batches(dp, rng, xt, yt, bs):
    """One epoch's ``(xb (b, 3, H, W), yb (b,))`` batches: Poisson under DP-SGD, else shuffled."""
    if dp is not None:
        return ((xb, yb) for xb, yb in dp.data_loader if len(yb))  # Poisson batches
    order = torch.from_numpy(rng.permutation(len(xt)))  # (n,)
    return ((xt[i], yt[i]) for i in (order[s : s + bs] for s in range(0, len(xt), bs)))


def _augmented(batches, aug, gen):
    """``batches`` with each image batch drawn through :func:`augment_batch`; same shapes."""
    for xb, yb in batches:
        yield augment_batch(xb, aug["flip"], int(aug["crop"]), gen), yb


def _train_epoch(net, batches, opt, sched, game) -> dict:
    """One pass of optimiser steps over ``batches``; running ``train_loss`` and ``train_acc``.

    ``game`` is ``None`` or ``(regularizer, draw_reference, k_steps)``: the advreg max steps
    before each classifier step, whose loss then carries the membership penalty.
    """
    loss_fn = nn.CrossEntropyLoss()
    tot_loss, tot_ok, seen = 0.0, 0, 0
    for xb, yb in batches:
        logits = net(xb)  # (b, n_classes)
        loss = loss_fn(logits, yb)
        if game is not None:
            reg, draw_reference, k_steps = game
            reg.max_steps(net, xb, yb, draw_reference, k_steps)  # eval-mode views
            loss = loss + reg.penalty(logits, yb)  # min step: CE + lam * mean -log(1 - h)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        tot_loss += float(loss.detach()) * len(yb)
        tot_ok += int((logits.argmax(1) == yb).sum())
        seen += len(yb)
    return {"train_loss": tot_loss / max(seen, 1), "train_acc": tot_ok / max(seen, 1)}


def _record_epoch(hist, row, dp, reg) -> None:
    """Append an epoch's ``row`` to ``hist``, with DP-SGD's epsilon and advreg's gain so far."""
    for k in HISTORY_KEYS:
        hist[k].append(row[k])
    if dp is not None:
        from models.privacy.dpsgd import epsilon

        hist["epsilon"].append(epsilon(dp.engine, hist["delta"]))
    if reg is not None:
        hist["attack_gain"].append(reg.last_gain)


def _track_best(best, val_loss, model):
    """Early stopping's ``(best val loss, its state dict, epochs since improvement)`` updated."""
    if val_loss < best[0]:
        return (val_loss, copy.deepcopy(model.state_dict()), 0)
    return (best[0], best[1], best[2] + 1)


def train_stacked(x, y, cfg, seed, x_val, y_val, progress):
    """ML-Leaks stacking: first-level CNNs on disjoint parts, meta-classifier on the last part."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_cnn(cfg)  # StackedCNN
    n_first = len(model.first)
    if len(x) < n_first + 1:
        raise ValueError(
            f"stacking with {n_first} first-level models needs >= {n_first + 1} records"
        )
    parts = draw_parts(len(x), n_first + 1, rng)  # sorted index sets, as np.array_split's sizes
    sub_cfg = {**cfg, "stacking": None}
    hist: dict = {k: [] for k in HISTORY_KEYS}
    hist["first_level"] = []
    for i, first in enumerate(model.first):
        idx = parts[i]
        net, h = train_single(
            x[idx], y[idx], sub_cfg, seed + 1 + i, None, None, None, None, progress
        )
        first.load_state_dict(net.state_dict())
        hist["first_level"].append(
            {
                "n_train": len(idx),
                "seconds": float(sum(h["seconds"])),
                "train_acc_last_epoch": h["train_acc"][-1],
            }
        )
    model.eval()  # first-level models frozen (no dropout) while the meta-classifier learns
    meta_idx = parts[-1]
    with torch.no_grad():
        feats = model.first_level(images_to_tensor(x[meta_idx]))  # (n_meta, n_first * C)
    ym = torch.from_numpy(np.asarray(y[meta_idx], dtype=np.int64))
    opt = torch.optim.Adam(model.classifier.parameters(), lr=cfg["lr"])
    loss_fn = nn.CrossEntropyLoss()
    bs = int(cfg["batch_size"])
    has_val = x_val is not None and y_val is not None
    for epoch in range(1, int(cfg["stacking"]["meta_epochs"]) + 1):
        t0 = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(ym)))
        tot_loss, tot_ok = 0.0, 0
        for s in range(0, len(ym), bs):
            i = order[s : s + bs]
            logits = model.classifier(feats[i])  # (b, n_classes)
            loss = loss_fn(logits, ym[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(i)
            tot_ok += int((logits.argmax(1) == ym[i]).sum())
        row = {
            "epoch": epoch,
            "train_loss": tot_loss / len(ym),
            "train_acc": tot_ok / len(ym),
            "lr": cfg["lr"],
        }
        last = epoch == int(cfg["stacking"]["meta_epochs"])
        row["val_loss"], row["val_acc"] = (
            evaluate(model, x_val, y_val) if has_val and last else (None, None)
        )
        row["seconds"] = time.perf_counter() - t0
        for k in HISTORY_KEYS:
            hist[k].append(row[k])
    hist["seconds"][0] += sum(f["seconds"] for f in hist["first_level"])
    hist["meta_n_train"] = len(meta_idx)
    return model, hist
