"""Defenses against membership inference on CIFAR-10: Table 2, the L2 sweep, every defense.

    python recipes/cifar10_defenses/run.py [--quick] [--out DIR] [--key=value ...]

Every setting of ``config.yaml``'s ``defenses`` (a :mod:`models.privacy.registry` spec, or a
``+`` combination of them) is a target CNN trained on ``train_size`` seeded members with that
defense (:func:`auditor.cifar.target.train_target`), attacked by the attacks of
``attack.attacks`` sharing ``n_shadows`` shadow models trained with the same defended recipe
(:func:`auditor.cifar.defenses.attack_suite`; LiRA needs two shadows or more and is refused
before any training otherwise); serving defenses reuse the model they harden and only change
the answers. The tables report every attack's AUC and, labelled as such, their maximum: an
upper bound picked with the evaluation labels, which the goal check uses (conservatively).
Table 2 adds L2-regularized targets at the larger training sizes. Each trained recipe
is one job of :func:`auditor.cifar.defense_grid.evaluate_recipe`, run in parallel through
``executor`` / ``workers`` (:mod:`auditor.executor`). The run folder gets the resolved
``config.yaml``, ``targets/<setting>/`` (checkpoints, splits, histories), ``metrics.json``
(``rows``: one per setting and attack, rewritten after every finished job so a cut run keeps
what finished), ``table.md`` and ``privacy_utility.png``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from auditor.cifar.defense_grid import evaluate_recipe, recipe_key
from auditor.cifar.defenses import check_attacks
from auditor.config import (
    apply_overrides,
    apply_section,
    load_config,
    prepare_run_dir,
    save_metrics,
)
from auditor.executor import get_executor
from auditor.plots import plot_privacy_utility
from auditor.recipe_cli import recipe_command, repo_path
from auditor.reports import fmt
from models.privacy.registry import parse_defenses
from models.vision.data import load_image_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config.yaml")
log = logging.getLogger("cifar10_defenses")
#: Column of the maximum AUC over the attacks of a setting.
MAX_AUC_HEADER = "max AUC over attacks (upper bound: picked with the evaluation labels)"


def resolve_config(overrides: list[str], *, quick: bool) -> dict:
    """``config.yaml`` with the ``quick`` overrides (when asked), then the command line's."""
    config = apply_section(load_config(CONFIG), "quick", use=quick)
    config = apply_overrides(config, overrides, source=str(CONFIG))
    check_attacks(config["attack"]["attacks"], int(config["attack"]["n_shadows"]))
    for spec in [*config["defenses"], config["table2"]["defense"]]:
        recipe_key(spec, config["cnn"])  # unknown names / parameters fail before any training
    if config["defenses"][0] != "none":
        raise ValueError("the first setting of `defenses` must be none (the undefended baseline)")
    return config


def grid_jobs(config: dict, run_dir: Path) -> list[dict]:
    """:func:`~auditor.cifar.defense_grid.evaluate_recipe` jobs: one per trained model.

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
            groups.setdefault((n, recipe_key(config["table2"]["defense"], config["cnn"])),
                              []).append(config["table2"]["defense"])  # fmt: skip
    a, e = config["attack"], config["eval"]
    jobs = [
        {"data": str(repo_path(config["data"], REPO)), "run_dir": str(run_dir),
         "settings": specs, "train_size": n, "seed": int(config["seed"]),
         "cnn_config": dict(config["cnn"]), "n_shadows": int(a["n_shadows"]),
         "attacks": list(a["attacks"]), "n_eval": int(e["n_eval"]),
         "threshold_percentile": float(a["threshold_percentile"]),
         "shokri_max_iter": int(a["shokri_max_iter"]),
         "shokri_features": str(a["shokri_features"]), "n_bootstrap": int(e["n_bootstrap"]),
         "cache_dir": config["cache_dir"], "num_threads": int(config["cnn"]["num_threads"] or 1)}
        for (n, _), specs in groups.items()
    ]  # fmt: skip
    return sorted(jobs, key=lambda j: -j["train_size"] * cost_factor(j["settings"][0], config))


def cost_factor(spec: str, config: dict) -> float:
    """Training cost of a setting relative to undefended training (config ``cost_factors``)."""
    names = [name for name, _ in parse_defenses(spec)]
    return max([float(config["cost_factors"].get(n, 1.0)) for n in names])


def settings_summary(rows: list[dict], size: int) -> list[dict]:
    """One entry per setting at ``size``: target figures, each attack's row and the maxima.

    ``max_auc`` is the row of the attack with the highest AUC and ``tpr1_max`` /
    ``tpr01_max`` the highest TPR at 1% / 0.1% FPR over the attacks: all picked with the
    evaluation labels, upper bounds rather than the figures of one chosen attack.
    """
    out = {}
    for r in rows:
        if r["train_size"] != size:
            continue
        s = out.setdefault(r["setting"], {"setting": r["setting"], "defense": r["defense"],
                                          "target": r["target"], "attacks": {}})  # fmt: skip
        s["attacks"][r["attack"]] = r
    for s in out.values():
        s["max_auc"] = max(s["attacks"].values(), key=lambda r: r["auc"])
        tprs = [r["tpr_at_fpr"].get("0.01") for r in s["attacks"].values()]
        s["tpr1_max"] = max((t for t in tprs if t is not None), default=None)
        tprs = [r["tpr_at_fpr"].get("0.001") for r in s["attacks"].values()]
        s["tpr01_max"] = max((t for t in tprs if t is not None), default=None)
    return list(out.values())


def target_met(summary: list[dict], config: dict) -> list[dict]:
    """Settings whose max AUC over attacks and test-accuracy cost meet ``config["target"]``.

    The max AUC is an upper bound picked with the evaluation labels, so a setting that meets
    the goal on it meets it for every attack run (a conservative check).
    """
    if not summary or summary[0]["setting"] != "none":  # the baseline has not finished yet
        return []
    base = summary[0]["target"]["test_acc"]
    goal = config["target"]
    return [
        {"setting": s["setting"], "max_auc": s["max_auc"]["auc"],
         "max_auc_attack": s["max_auc"]["attack"], "test_acc": s["target"]["test_acc"],
         "acc_drop": base - s["target"]["test_acc"]}
        for s in summary[1:]
        if s["max_auc"]["auc"] <= goal["max_auc"]
        and base - s["target"]["test_acc"] <= goal["max_acc_drop"]
    ]  # fmt: skip


def format_tables(doc: dict, config: dict) -> str:
    """Markdown: Table 2 and the L2 sweep beside the paper's, then the defense grid.

    Every table gives each attack's AUC and, in :data:`MAX_AUC_HEADER`'s column, their maximum.
    """
    size = int(config["train_size"])
    rows = doc["rows"]
    ref = config["reference"]
    attacks = list(config["attack"]["attacks"])
    features = config["attack"]["shokri_features"]
    auc_heads = " | ".join(f"{a} AUC" for a in attacks)
    auc_align = "---:|" * len(attacks)

    def aucs(s: dict) -> str:  # each attack's AUC, then the max over them (attack)
        return (" | ".join(fmt(s["attacks"][a]["auc"]) for a in attacks)
                + f" | {fmt(s['max_auc']['auc'])} ({s['max_auc']['attack']})")  # fmt: skip

    lines = [
        f"Table 2 (Shokri attack on L2-regularized CNNs, {config['table2']['defense']}; Shokri's "
        f"attack features: {features} log-probabilities), ours vs the reference paper",
        "",
        "| train size | target train acc | target test acc | precision (paper) | recall (paper) "
        f"| accuracy (paper) | {auc_heads} | {MAX_AUC_HEADER} |",
        f"|---:|---:|---:|---:|---:|---:|{auc_align}---:|",
    ]
    for n in sorted({int(r["train_size"]) for r in rows}):
        for s in settings_summary(rows, n):
            if s["setting"] != config["table2"]["defense"]:
                continue
            r, p, t = s["attacks"]["shokri"], ref["table2"].get(n, {}), s["target"]
            lines.append(
                f"| {n} | {fmt(t['train_acc'])} | {fmt(t['test_acc'])} "
                f"| {fmt(r['precision'])} ({fmt(p.get('precision'), 2)}) "
                f"| {fmt(r['recall'])} ({fmt(p.get('recall'), 4)}) "
                f"| {fmt(r['accuracy'])} ({fmt(p.get('accuracy'), 2)}) | {aucs(s)} |"
            )
    summary = settings_summary(rows, size)
    lines += [
        "",
        f"L2 sweep (training size {size}), ours vs the reference paper (attack accuracy: Shokri)",
        "",
        f"| L2 factor | train acc (paper) | test acc (paper) | attack acc (paper) | {auc_heads} "
        f"| {MAX_AUC_HEADER} |",
        f"|---:|---:|---:|---:|{auc_align}---:|",
    ]
    for factor in config["l2_sweep"]:
        for s in summary:
            parts = parse_defenses(s["setting"])
            if len(parts) != 1:
                continue
            name, params = parts[0]
            wd = (
                params.get("weight_decay", 0.0) if name == "l2" else 0.0 if name == "none" else None
            )
            if wd is None or abs(wd - float(factor)) > 1e-12:
                continue
            p = {float(k): v for k, v in ref["l2_sweep"].items()}.get(float(factor), {})
            t, r = s["target"], s["attacks"]["shokri"]
            lines.append(
                f"| {factor:g} | {fmt(t['train_acc'])} ({fmt(p.get('train_acc'))}) "
                f"| {fmt(t['test_acc'])} ({fmt(p.get('test_acc'))}) "
                f"| {fmt(r['accuracy'])} ({fmt(p.get('attack_acc'))}) | {aucs(s)} |"
            )
    base = summary[0] if summary and summary[0]["setting"] == "none" else None
    lines += [
        "",
        f"Every defense (training size {size}; AUC per attack, Shokri on {features} "
        "log-probabilities; the max AUC and the TPR at low FPR are the highest over the attacks, "
        "upper bounds picked with the evaluation labels; time ratio: target training time / "
        "undefended, serving defenses reuse the undefended model)",
        "",
        f"| setting | test acc | train acc | eps (delta) | {auc_heads} | {MAX_AUC_HEADER} "
        "| max TPR@1% | max TPR@0.1% | train time ratio |",
        f"|---|---:|---:|---:|{auc_align}---:|---:|---:|---:|",
    ]  # fmt: skip
    for s in summary:
        t = s["target"]
        eps = f"{t['epsilon']:.2f} ({t['delta']:g})" if t.get("epsilon") is not None else "-"
        ratio = (f"{t['train_seconds'] / base['target']['train_seconds']:.2f}" if base
                 else "-") if t["train_seconds"] else "1.00"  # fmt: skip
        lines.append(
            f"| {s['setting']} | {fmt(t['test_acc'])} | {fmt(t['train_acc'])} | {eps} "
            f"| {aucs(s)} | {fmt(s['tpr1_max'])} | {fmt(s['tpr01_max'])} | {ratio} |"
        )
    met = doc.get("target_met", [])
    goal = config["target"]
    lines += ["", f"Goal: AUC <= {goal['max_auc']} at <= {100 * goal['max_acc_drop']:.0f} "
              "points test-accuracy cost, checked on the max AUC over the attacks (an upper "
              "bound picked with the evaluation labels, so a conservative check): "
              + ("; ".join(f"{m['setting']} (max AUC {m['max_auc']:.3f}, by "
                           f"{m['max_auc_attack']}; test acc {m['test_acc']:.3f}, cost "
                           f"{100 * m['acc_drop']:.1f} points)" for m in met)
                 or "no setting met it") + ".",
              "",
              f"Deviations from the paper: {config['cnn']['epochs']} epochs (paper: up to 100); "
              f"{config['attack']['n_shadows']} shadow model(s) per recipe; attacks "
              f"{', '.join(attacks)} (LiRA needs >= 2 shadows); see "
              "recipes/cifar10_defenses/config.yaml."]  # fmt: skip
    return "\n".join(lines)


def run(config: dict, out: Path) -> dict:
    """Run the grid, then Table 2's larger sizes; write the run folder; returns metrics.json."""
    run_dir = prepare_run_dir(out, config, int(config["seed"]))
    torch.set_num_threads(int(config["cnn"].get("num_threads") or 1))
    t0 = time.perf_counter()
    load_image_dataset(repo_path(config["data"], REPO), cache_dir=config["cache_dir"])  # decode once, cached
    doc = {
        "name": config["name"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "torch": torch.__version__,
                    "opacus": importlib.metadata.version("opacus")},
        "rows": [],
    }  # fmt: skip
    size = int(config["train_size"])
    jobs = grid_jobs(config, run_dir)
    executor = get_executor(config["executor"], max_workers=config["workers"],
                            threads_per_worker=int(config["cnn"]["num_threads"] or 1))  # fmt: skip
    log.info("%d trained recipes on %s workers (%s)", len(jobs), config["workers"] or "all",
             config["executor"])  # fmt: skip

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
        log.info("done: %s at %d (%.0f s so far)", " | ".join(jobs[index]["settings"]),
                 jobs[index]["train_size"], time.perf_counter() - t0)  # fmt: skip
        doc["rows"] += rows
        save()

    executor.map(evaluate_recipe, jobs, desc="defended recipes", on_result=finished)
    summary = save()
    points = [{"name": s["setting"], "utility": s["target"]["test_acc"],
               "series": {"max over attacks": {"auc": s["max_auc"]["auc"],
                                               "tpr": s["tpr1_max"]}}}
              for s in summary]  # fmt: skip
    plot_privacy_utility(
        points, run_dir / "privacy_utility.png", utility_label="test accuracy",
        attacks=[("auc", "max AUC over attacks (upper bound)"),
                 ("tpr", "max TPR at 1% FPR over attacks (upper bound)")],
        baseline=config["defenses"][0], title=f"CIFAR-10 defenses, training size {size}",
    )  # fmt: skip
    print(format_tables(doc, config))
    print(f"\nrun folder: {run_dir}  ({doc['seconds']:.0f} s)")
    return doc


main = recipe_command(
    resolve_config, run, repo=REPO, name="cifar10_defenses", summary="Defenses on CIFAR-10",
    quick_help="Smoke configuration (tiny sizes, 1 epoch).",
)


if __name__ == "__main__":
    np.seterr(over="ignore")
    main()
