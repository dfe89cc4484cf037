"""Training settings of the CIFAR-10 CNN: the keys, their defaults and their checks.

A config holds the training keys of :data:`DEFAULT_TRAIN` and the architecture keys of
:data:`models.vision.cnn.DEFAULT_ARCH`; the defenses it may name (``advreg``, ``dpsgd``,
``augment``, ``stacking``) are described in :mod:`models.vision.train`.
"""

from __future__ import annotations

from models.privacy.registry import get_defense
from models.vision.cnn import DEFAULT_ARCH, arch_from_config

#: Training keys and their defaults; a config may also hold the keys of ``DEFAULT_ARCH``.
DEFAULT_TRAIN: dict = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.001,
    "lr_decay": 1e-7,  # Keras-style: lr / (1 + lr_decay * steps)
    "weight_decay": 0.0,  # L2 coefficient (Adam's coupled weight decay)
    "early_stopping_patience": 0,  # epochs without val-loss improvement; 0 = off
    "num_threads": None,  # torch.set_num_threads; None = leave as is
    "advreg": None,  # adversarial regularization parameters (models.vision.train) or None
    "dpsgd": None,  # DP-SGD parameters (models.vision.train) or None
    "augment": None,  # data augmentation parameters (models.vision.train) or None
}


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
