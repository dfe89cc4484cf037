"""A defense grid on CIFAR-10: defended recipes trained, shadowed and attacked, in parallel.

A *setting* is a defense spec of :mod:`models.privacy.registry`, possibly a ``+`` combination.
Settings whose training part is the same (:func:`models.privacy.registry.split_serving`; e.g.
``none``, ``topk:k=1`` and ``label_only``) share one trained target and one set of shadow
models: :func:`evaluate_recipe` (one job) trains them once and runs
:func:`~auditor.cifar.defenses.attack_suite` under each setting's serving defense. It takes and
returns plain data, so :func:`run_defense_grid` runs the jobs of :func:`grid_jobs` in parallel
through :mod:`auditor.executor` (``recipes/cifar10_defenses``; its ``config.yaml`` documents
the config's keys) and writes the results (:mod:`auditor.cifar.defense_tables`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

from auditor.cifar.audit import evaluation_records, shadow_recipe
from auditor.cifar.defense_tables import format_tables, settings_summary, target_met
from auditor.cifar.defenses import AnswerCache, attack_suite, check_attacks, train_shadows
from auditor.cifar.target import defense_settings, load_target, train_target
from auditor.config import prepare_run_dir, save_metrics
from auditor.executor import get_executor
from auditor.plots import plot_privacy_utility
from auditor.recipe_cli import repo_path
from corpora.cifar10 import load_image_dataset
from models.privacy.registry import describe, parse_defenses, split_serving

log = logging.getLogger(__name__)


def slug(spec: str, size: int) -> str:
    """A folder name for one setting, e.g. ``n2500_dpsgd_noise_multiplier-1.0``."""
    return f"n{size}_" + re.sub(r"[^A-Za-z0-9.-]+", "_", spec.replace("=", "-")).strip("_")


def recipe_key(spec: str, cnn_config: dict) -> str:
    """Settings with equal keys train the same model (they differ only in serving)."""
    cfg, _ = defense_settings(split_serving(spec)[0], cnn_config)
    return repr(sorted(cfg.items()))


def evaluate_recipe(
    *,
    data: str,
    run_dir: str,
    settings: list[str],
    train_size: int,
    seed: int,
    cnn_config: dict,
    n_shadows: int,
    attacks: list[str],
    n_eval: int,
    threshold_percentile: float = 90.0,
    shokri_max_iter: int = 200,
    shokri_features: str = "class_order",
    n_bootstrap: int = 200,
    cache_dir: str | None = None,
    num_threads: int | None = 1,
) -> list[dict]:
    """Train the target of ``settings`` (one shared training part) and attack each setting.

    Parameters
    ----------
    data : str
        CIFAR-10 source (:func:`corpora.cifar10.load_image_dataset`).
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
        data,
        Path(run_dir) / "targets" / slug(train_spec, train_size),
        train_size=train_size,
        seed=seed,
        cnn_config=dict(cnn_config),
        n_shadow_pool=2 * train_size,
        cache_dir=cache_dir,
        progress=False,
        defense=None if train_spec == "none" else train_spec,
    )
    target = load_target(summary["out"], data=data, cache_dir=cache_dir, progress=False)
    n_eval = min(int(n_eval), train_size)
    x_eval, y_eval, membership = evaluation_records(target, n_eval, seed)
    shadows = train_shadows(target, shadow_recipe(target), int(n_shadows), seed=seed, x_eval=x_eval)
    answers = AnswerCache(target)
    x_non, y_non = target.records("target_nonmembers")
    x_mem, y_mem = target.records("target_members")
    rows = []
    for spec in settings:
        info = describe(spec)
        served = dataclasses.replace(target, serving=split_serving(spec)[1])
        results = attack_suite(
            served,
            shadows,
            attacks=attacks,
            seed=seed,
            x_eval=x_eval,
            y_eval=y_eval,
            membership=membership,
            threshold_percentile=threshold_percentile,
            shokri_max_iter=shokri_max_iter,
            shokri_features=shokri_features,
            n_bootstrap=n_bootstrap,
            cache=answers,
        )
        test_acc = float((answers.predict_proba(x_non).argmax(1) == y_non).mean())
        train_acc = float((answers.predict_proba(x_mem).argmax(1) == y_mem).mean())
        reused = train_spec == "none" and spec != "none"  # hardens the undefended model
        common = {
            "setting": spec,
            "defense": info["name"],
            "params": info["params"],
            "stage": info["stage"],
            "train_size": train_size,
            "max_auc_attack": results["max_auc_attack"],
            "target": {
                "train_acc": train_acc,
                "test_acc": test_acc,
                "train_test_gap": train_acc - test_acc,
                "train_seconds": 0.0 if reused else summary["seconds"],
                "epsilon": summary.get("epsilon"),
                "delta": summary.get("delta"),
            },
            "shadow_seconds": 0.0 if reused else shadows.seconds,
        }
        for attack in attacks:
            metrics = {k: v for k, v in results[attack].items() if k != "roc"}
            rows.append({**common, "attack": attack, **metrics})
    return rows


def check_grid_config(config: dict) -> dict:
    """Refuse bad attacks, defense specs or a grid not led by ``none`` before any training."""
    check_attacks(config["attack"]["attacks"], int(config["attack"]["n_shadows"]))
    for spec in [*config["defenses"], config["table2"]["defense"]]:
        recipe_key(spec, config["cnn"])  # unknown names / parameters fail before any training
    if config["defenses"][0] != "none":
        raise ValueError("the first setting of `defenses` must be none (the undefended baseline)")
    return config


def grid_jobs(config: dict, run_dir: Path, *, root: Path) -> list[dict]:
    """:func:`evaluate_recipe` jobs: one per trained model (``config["data"]`` from ``root``).

    The grid's settings at ``train_size`` are grouped by training recipe (serving defenses
    join the model they harden), then Table 2's defense at each larger size; the jobs are
    ordered by an estimated cost (images x cost factor of the defense), largest first, so
    that parallel workers finish together.
    """
    size = int(config["train_size"])
    groups: dict = {}
    for spec in config["defenses"]:
        groups.setdefault((size, recipe_key(spec, config["cnn"])), []).append(spec)
    for n in map(int, config["table2"]["train_sizes"]):
        if n != size or config["table2"]["defense"] not in config["defenses"]:
            groups.setdefault(
                (n, recipe_key(config["table2"]["defense"], config["cnn"])), []
            ).append(config["table2"]["defense"])
    a, e = config["attack"], config["eval"]
    jobs = [
        {
            "data": str(repo_path(config["data"], root)),
            "run_dir": str(run_dir),
            "settings": specs,
            "train_size": n,
            "seed": int(config["seed"]),
            "cnn_config": dict(config["cnn"]),
            "n_shadows": int(a["n_shadows"]),
            "attacks": list(a["attacks"]),
            "n_eval": int(e["n_eval"]),
            "threshold_percentile": float(a["threshold_percentile"]),
            "shokri_max_iter": int(a["shokri_max_iter"]),
            "shokri_features": str(a["shokri_features"]),
            "n_bootstrap": int(e["n_bootstrap"]),
            "cache_dir": config["cache_dir"],
            "num_threads": int(config["cnn"]["num_threads"] or 1),
        }
        for (n, _), specs in groups.items()
    ]
    return sorted(jobs, key=lambda j: -j["train_size"] * cost_factor(j["settings"][0], config))


def cost_factor(spec: str, config: dict) -> float:
    """Training cost of a setting relative to undefended training (config ``cost_factors``)."""
    names = [name for name, _ in parse_defenses(spec)]
    return max([float(config["cost_factors"].get(n, 1.0)) for n in names])


def run_defense_grid(config: dict, out: Path, *, root: Path) -> dict:
    """Run the grid, then Table 2's larger sizes; write the run folder; returns metrics.json.

    The run folder gets the resolved ``config.yaml``, ``targets/<setting>/``, ``metrics.json``
    (``rows``: one per setting and attack, rewritten after every finished job so a cut run
    keeps what finished), ``table.md`` and ``privacy_utility.png``. A relative
    ``config["data"]`` is taken from ``root``.
    """
    run_dir = prepare_run_dir(out, config, int(config["seed"]))
    torch.set_num_threads(int(config["cnn"].get("num_threads") or 1))
    t0 = time.perf_counter()
    data = repo_path(config["data"], root)
    load_image_dataset(data, cache_dir=config["cache_dir"])  # decode once, cached
    doc = {
        "name": config["name"],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "opacus": importlib.metadata.version("opacus"),
        },
        "rows": [],
    }
    size = int(config["train_size"])
    jobs = grid_jobs(config, run_dir, root=root)
    executor = get_executor(
        config["executor"],
        max_workers=config["workers"],
        threads_per_worker=int(config["cnn"]["num_threads"] or 1),
    )
    log.info(
        "%d trained recipes on %s workers (%s)",
        len(jobs),
        config["workers"] or "all",
        config["executor"],
    )

    order = {spec: i for i, spec in enumerate(config["defenses"])}  # rows in the config's order

    def save() -> list[dict]:
        doc["rows"].sort(key=lambda r: (r["train_size"], order.get(r["setting"], len(order))))
        doc["seconds"] = time.perf_counter() - t0
        summary = settings_summary(doc["rows"], size)
        doc["target_met"] = target_met(summary, config)
        save_metrics(run_dir, doc)
        (run_dir / "table.md").write_text(format_tables(doc, config) + "\n")
        return summary

    def finished(index: int, rows: list[dict]) -> None:  # a cut run keeps what finished
        log.info(
            "done: %s at %d (%.0f s so far)",
            " | ".join(jobs[index]["settings"]),
            jobs[index]["train_size"],
            time.perf_counter() - t0,
        )
        doc["rows"] += rows
        save()

    executor.map(evaluate_recipe, jobs, desc="defended recipes", on_result=finished)
    _plot_grid(save(), config, run_dir)
    print(format_tables(doc, config))
    print(f"\nrun folder: {run_dir}  ({doc['seconds']:.0f} s)")
    return doc


def _plot_grid(summary: list[dict], config: dict, run_dir: Path) -> None:
    """``privacy_utility.png``: test accuracy against the max AUC and TPR over the attacks."""
    points = [
        {
            "name": s["setting"],
            "utility": s["target"]["test_acc"],
            "series": {"max over attacks": {"auc": s["max_auc"]["auc"], "tpr": s["tpr1_max"]}},
        }
        for s in summary
    ]
    plot_privacy_utility(
        points,
        run_dir / "privacy_utility.png",
        utility_label="test accuracy",
        attacks=[
            ("auc", "max AUC over attacks (upper bound)"),
            ("tpr", "max TPR at 1% FPR over attacks (upper bound)"),
        ],
        baseline=config["defenses"][0],
        title=f"CIFAR-10 defenses, training size {int(config['train_size'])}",
    )
