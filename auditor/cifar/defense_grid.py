"""One job of a defense grid: a defended CIFAR-10 recipe trained, shadowed and attacked.

A *setting* is a defense spec of :mod:`models.privacy.registry`, possibly a ``+`` combination.
Settings whose training part is the same (:func:`models.privacy.registry.split_serving`; e.g.
``none``, ``topk:k=1`` and ``label_only``) share one trained target and one set of shadow
models: :func:`evaluate_recipe` trains them once and runs :func:`~auditor.cifar.defenses.
attack_suite` under each setting's serving defense. It takes and returns plain data, so a grid
can run its recipes in parallel through :mod:`auditor.executor`
(``recipes/cifar10_defenses/run.py``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from auditor.cifar.audit import evaluation_records, shadow_recipe
from auditor.cifar.defenses import AnswerCache, attack_suite, check_attacks, train_shadows
from auditor.cifar.target import defense_settings, load_target, train_target
from models.privacy.registry import describe, split_serving


def slug(spec: str, size: int) -> str:
    """A folder name for one setting, e.g. ``n2500_dpsgd_noise_multiplier-1.0``."""
    return f"n{size}_" + re.sub(r"[^A-Za-z0-9.-]+", "_", spec.replace("=", "-")).strip("_")


def recipe_key(spec: str, cnn_config: dict) -> str:
    """Settings with equal keys train the same model (they differ only in serving)."""
    cfg, _ = defense_settings(split_serving(spec)[0], cnn_config)
    return repr(sorted(cfg.items()))


def evaluate_recipe(
    *, data: str, run_dir: str, settings: list[str], train_size: int, seed: int,
    cnn_config: dict, n_shadows: int, attacks: list[str], n_eval: int,
    threshold_percentile: float = 90.0, shokri_max_iter: int = 200,
    shokri_features: str = "class_order", n_bootstrap: int = 200, cache_dir: str | None = None,
    num_threads: int | None = 1,
) -> list[dict]:  # fmt: skip
    """Train the target of ``settings`` (one shared training part) and attack each setting.

    Parameters
    ----------
    data : str
        CIFAR-10 source (:func:`models.vision.data.load_image_dataset`).
    run_dir : str
        The grid's run folder; the target goes to ``targets/<slug of the training part>/``.
    settings : list of str
        Defense specs with one :func:`recipe_key` (refused otherwise).
    train_size, seed, cnn_config
        The target's members, seed and undefended recipe (:func:`auditor.cifar.target.
        train_target`); the attacker's pool holds ``2 * train_size`` records.
    n_shadows : int
        Shadow models, trained with the same defended recipe, shared by the attacks.
    attacks : list of str
        The attacks to run (:func:`~auditor.cifar.defenses.check_attacks`: LiRA needs
        ``n_shadows >= 2``; refused before any training).
    n_eval : int
        Members (and as many non-members) scored; at most ``train_size``.
    threshold_percentile, shokri_max_iter, shokri_features, n_bootstrap
        Passed to :func:`~auditor.cifar.defenses.attack_suite`.
    cache_dir : str, optional
        Decoded-image cache.
    num_threads : int, optional
        torch threads of this job.

    Returns
    -------
    list of dict
        One row per setting and attack: ``setting``, ``defense`` / ``params`` / ``stage``
        (:func:`models.privacy.registry.describe`), ``train_size``,
        ``attack`` and its metrics (ROC left out), ``max_auc_attack`` (the setting's attack
        with the highest AUC, picked with the evaluation labels), ``target`` (served train /
        test accuracy and their gap, ``train_seconds``, ``epsilon`` / ``delta``) and
        ``shadow_seconds`` (both times 0 for a serving-only setting: it hardens the answers of
        the model trained for ``none``).
    """
    if num_threads:
        torch.set_num_threads(int(num_threads))
    attacks = check_attacks(attacks, int(n_shadows))
    keys = {recipe_key(s, cnn_config) for s in settings}
    if len(keys) != 1:
        raise ValueError(f"settings {settings} do not share one training recipe")
    train_spec = split_serving(settings[0])[0]
    summary = train_target(
        data, Path(run_dir) / "targets" / slug(train_spec, train_size), train_size=train_size,
        seed=seed, cnn_config=dict(cnn_config), n_shadow_pool=2 * train_size,
        cache_dir=cache_dir, progress=False, defense=None if train_spec == "none" else train_spec,
    )  # fmt: skip
    target = load_target(summary["out"], data=data, cache_dir=cache_dir, progress=False)
    n_eval = min(int(n_eval), train_size)
    x_eval, y_eval, membership = evaluation_records(target, n_eval, seed)
    shadows = train_shadows(target, shadow_recipe(target), int(n_shadows), seed=seed,
                            x_eval=x_eval)  # fmt: skip
    answers = AnswerCache(target)
    x_non, y_non = target.records("target_nonmembers")
    x_mem, y_mem = target.records("target_members")
    rows = []
    for spec in settings:
        info = describe(spec)
        served = dataclasses.replace(target, serving=split_serving(spec)[1])
        results = attack_suite(
            served, shadows, attacks=attacks, seed=seed, x_eval=x_eval, y_eval=y_eval,
            membership=membership, threshold_percentile=threshold_percentile,
            shokri_max_iter=shokri_max_iter, shokri_features=shokri_features,
            n_bootstrap=n_bootstrap, cache=answers,
        )  # fmt: skip
        test_acc = float((answers.predict_proba(x_non).argmax(1) == y_non).mean())
        train_acc = float((answers.predict_proba(x_mem).argmax(1) == y_mem).mean())
        reused = train_spec == "none" and spec != "none"  # hardens the undefended model
        common = {
            "setting": spec, "defense": info["name"], "params": info["params"],
            "stage": info["stage"], "train_size": train_size,
            "max_auc_attack": results["max_auc_attack"],
            "target": {
                "train_acc": train_acc, "test_acc": test_acc, "train_test_gap": train_acc - test_acc,
                "train_seconds": 0.0 if reused else summary["seconds"],
                "epsilon": summary.get("epsilon"), "delta": summary.get("delta"),
            },
            "shadow_seconds": 0.0 if reused else shadows.seconds,
        }  # fmt: skip
        for attack in attacks:
            metrics = {k: v for k, v in results[attack].items() if k != "roc"}
            rows.append({**common, "attack": attack, **metrics})
    return rows
