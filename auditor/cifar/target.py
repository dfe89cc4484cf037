"""The audited CIFAR-10 model: trained on a seeded member split, saved, and loaded back.

A target folder holds the checkpoint (``model.safetensors`` + ``model.json``), the member split
(``split.json``: indices into the pooled train+test records of the dataset, see
:meth:`corpora.cifar10.ImageDataset.pooled`) and the per-epoch training history
(``history.json``). The attacks read the split to know which records they may use
(``shadow_pool``) and which they are scored on (``target_members`` vs ``target_nonmembers``);
they reach the model only through :meth:`CifarTarget.predict_proba`.

A target may be trained and served with defenses of :mod:`models.privacy.registry`
(``defense="name:key=value,..."``, several joined by ``+``, see :func:`defense_settings`):
training-stage and model-stage defenses change the CNN config (``weight_decay``, ``dropout``,
``advreg``, ``dpsgd``, ``stacking``, ``augment``); serving-stage defenses (``topk``,
``rounding``, ``label_only``) are recorded in ``model.json`` (``meta.serving``) and applied by
:meth:`CifarTarget.predict_proba` to every answer as the output policy of
:mod:`models.privacy.serving` (:attr:`CifarTarget.policy`). With ``advreg`` the defender's
reference set (non-members the inference model learns from) is drawn from records outside
every split and saved as ``defender_reference`` in ``split.json``; as many records, also outside
every split, are saved as ``shadow_reference``: the attacker's shadow models draw their advreg
reference set from them (:func:`auditor.cifar.audit.shadow_recipe`), so that they, like the
target, train on all their records and learn from an external reference set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from corpora.cifar10 import (
    ImageDataset,
    load_image_dataset,
    load_member_split,
    member_split,
    save_member_split,
)
from corpora.splits import draw_unused
from models.privacy.registry import check_path, get_defense, parse_defenses
from models.privacy.serving import OutputPolicy
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
    serving : dict or None
        The serving defense ``{"name": ..., **params}`` (``meta.serving``), None without one.
    """

    model: nn.Module
    x: np.ndarray
    y: np.ndarray
    split: dict[str, np.ndarray]
    classes: tuple[str, ...]
    info: dict
    serving: dict | None = None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The black-box query: answers ``(n, n_classes)`` of images ``(n, H, W, 3)``.

        The softmax outputs, hardened by the serving defense (:attr:`policy`).
        """
        return self.policy.harden_proba(predict_proba(self.model, x))

    @property
    def policy(self) -> OutputPolicy:
        """The output policy of :attr:`serving` (``full`` without a serving defense)."""
        return OutputPolicy.from_serving(self.serving)

    def raw_proba(self, x: np.ndarray) -> np.ndarray:
        """The unhardened softmax outputs (the vendor's view, for utility figures)."""
        return predict_proba(self.model, x)

    def records(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one named split (e.g. ``"shadow_pool"``)."""
        idx = self.split[name]
        return self.x[idx], self.y[idx]


def defense_settings(
    defense: str | None, cnn_config: dict | None = None
) -> tuple[dict, dict | None]:
    """Apply a defense spec (or a ``+`` combination) to a CNN config: ``(cnn_config, serving)``.

    Parameters
    ----------
    defense : str or None
        ``"name"`` or ``"name:key=value,..."`` of :data:`models.privacy.registry.DEFENSES`, or
        several joined by ``+`` (:func:`models.privacy.registry.parse_defenses`; ``None`` /
        ``"none"``: undefended).
    cnn_config : dict, optional
        The training recipe to change (copied).

    Returns
    -------
    cnn_config : dict
        With ``weight_decay`` (l2), ``dropout`` (dropout, from ``p``), or the ``advreg`` /
        ``dpsgd`` / ``stacking`` / ``augment`` parameter dict set.
    serving : dict or None
        ``{"name": ..., **params}`` of the serving defense, else None.

    Raises
    ------
    ValueError
        Unknown defense or parameter, a combination the registry refuses, or a defense the
        CIFAR path does not implement.
    """
    cfg = dict(cnn_config or {})
    serving = None
    for name, params in parse_defenses(defense or "none"):
        spec = check_path(name, "cifar")
        if spec.stage == "serve":
            serving = {"name": name, **params}
        elif name == "l2":
            cfg["weight_decay"] = params["weight_decay"]
        elif name == "dropout":
            cfg["dropout"] = params["p"]
        elif name in ("advreg", "dpsgd", "stacking", "augment"):
            cfg[name] = params
    return cfg, serving


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
    defense: str | None = None,
) -> dict:
    """Split the pooled records of ``data``, train the target CNN on the members, save to ``out``.

    Parameters
    ----------
    data : path
        Dataset source for :func:`corpora.cifar10.load_image_dataset`.
    out : path
        Target folder to write (checkpoint, ``split.json``, ``history.json``).
    train_size : int
        Number of members (the target's training set).
    seed : int
        Seeds the split and the training.
    cnn_config : dict, optional
        Keys of :data:`models.vision.config.DEFAULT_TRAIN` / ``DEFAULT_ARCH``.
    n_shadow_pool : int, optional
        Records given to the attacker; default ``2 * train_size``: shadow and reference models
        train on halves of it, as many records as the target.
    n_nonmembers : int, optional
        Evaluation non-members (default ``train_size``); they are also the target's test set.
    cache_dir, download, progress
        Passed to the loader / trainer.
    defense : str, optional
        One defense, ``"name[:key=value,...]"`` (:func:`defense_settings`); applied on top of
        ``cnn_config``.

    Returns
    -------
    dict
        ``out`` (str), ``train_size``, ``seed``, ``defense``, ``serving``, ``final`` (train /
        test loss and accuracy of the unhardened model), ``train_test_gap`` (train accuracy -
        test accuracy), ``seconds`` (training wall time), ``epsilon`` / ``delta`` (dpsgd only).
    """
    out = Path(out)
    cfg, serving = defense_settings(defense, cnn_config)  # bad defenses fail before any work
    ds = load_image_dataset(data, cache_dir=cache_dir, download=download, progress=progress)
    x, y = ds.pooled()
    n_non = train_size if n_nonmembers is None else n_nonmembers
    pool = 2 * train_size if n_shadow_pool is None else n_shadow_pool
    split = member_split(len(x), train_size, seed, pool, n_nonmembers=n_non)
    ref = {}
    if cfg.get("advreg") is not None:  # reference non-members of target and shadows
        frac = get_defense("advreg").params(cfg["advreg"])["ref_fraction"]
        n_ref = max(1, int(round(frac * train_size)))
        refs = dict.fromkeys(("defender_reference", "shadow_reference"), n_ref)
        split |= draw_unused(len(x), split, refs, seed + 7, where="advreg")  # outside every split
        ref = {"x_ref": x[split["defender_reference"]], "y_ref": y[split["defender_reference"]]}
    members, nonmembers = split["target_members"], split["target_nonmembers"]
    log.info("training target on %d members (seed %d, defense %s)", len(members), seed, defense)
    model, hist = train_cnn(
        x[members],
        y[members],
        cfg,
        seed=seed,
        x_val=x[nonmembers],
        y_val=y[nonmembers],
        progress=progress,
        **ref,
    )
    final = hist["final"]
    summary = {
        "out": str(out),
        "train_size": int(train_size),
        "seed": int(seed),
        "defense": defense or "none",
        "serving": serving,
        "final": final,
        "train_test_gap": final["train_acc"] - final["val_acc"],
        "seconds": float(hist["train_seconds"]),
    }
    if "epsilon_final" in hist:
        summary.update(epsilon=hist["epsilon_final"], delta=hist["delta"], dp=hist["dp"])
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
    return CifarTarget(
        load_cnn(target_dir), x, y, split, ds.classes, info, serving=info["meta"].get("serving")
    )
