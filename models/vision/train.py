"""Training, prediction and checkpoints for the CIFAR-10 CNN of :mod:`models.vision.cnn`.

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

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from common.hashing import records_digest
from models.privacy.advreg import AdversarialRegularizer
from models.privacy.registry import get_defense
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
    "advreg": None,  # adversarial regularization parameters (module docstring) or None
    "dpsgd": None,  # DP-SGD parameters (module docstring) or None
    "augment": None,  # data augmentation parameters (module docstring) or None
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
    for name in ("advreg", "dpsgd", "augment"):
        if cfg[name] is not None:
            cfg[name] = get_defense(name).params(cfg[name])
    active = [k for k in ("advreg", "dpsgd", "stacking") if cfg[k] is not None]
    if len(active) > 1:
        raise ValueError(f"defenses {active} cannot be combined; choose one")
    if cfg["advreg"] is not None:
        a = cfg["advreg"]
        if a["lam"] < 0 or a["k_steps"] < 1 or not 0.0 < a["ref_fraction"] < 1.0:
            raise ValueError(f"advreg needs lam >= 0, k_steps >= 1, 0 < ref_fraction < 1: {a}")
    if cfg["augment"] is not None and cfg["augment"]["crop"] < 0:
        raise ValueError(f"augment needs crop >= 0 pixels: {cfg['augment']}")
    if cfg["dpsgd"] is not None:
        d = cfg["dpsgd"]
        if d["noise_multiplier"] < 0 or d["max_grad_norm"] <= 0 or not 0 < d["delta"] < 1:
            raise ValueError(
                f"dpsgd needs noise_multiplier >= 0, max_grad_norm > 0, 0 < delta < 1: {d}"
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
        model, hist = _train_stacked(x, y, cfg, seed, x_val, y_val, progress)
    else:
        model, hist = _train_single(x, y, cfg, seed, x_val, y_val, x_ref, y_ref, progress)
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


HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _train_single(x, y, cfg, seed, x_val, y_val, x_ref, y_ref, progress):
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


def _train_stacked(x, y, cfg, seed, x_val, y_val, progress):
    """ML-Leaks stacking: first-level CNNs on disjoint parts, meta-classifier on the last part."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_cnn(cfg)  # StackedCNN
    n_first = len(model.first)
    parts = np.array_split(rng.permutation(len(x)), n_first + 1)
    if min(len(p) for p in parts) < 1:
        raise ValueError(
            f"stacking with {n_first} first-level models needs >= {n_first + 1} records"
        )
    sub_cfg = {**cfg, "stacking": None}
    hist: dict = {k: [] for k in HISTORY_KEYS}
    hist["first_level"] = []
    for i, first in enumerate(model.first):
        idx = np.sort(parts[i])
        net, h = _train_single(
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
    meta_idx = np.sort(parts[-1])
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


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """float32 logits ``(n, n_classes)`` of images ``x (n, H, W, 3)`` (model put in eval mode)."""
    model.eval()
    xt = images_to_tensor(x)
    outs = [model(xt[i : i + batch_size]) for i in range(0, len(xt), batch_size)]
    if not outs:  # CifarCNN and StackedCNN both end in `classifier`
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
