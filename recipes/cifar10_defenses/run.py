"""Defenses against membership inference on CIFAR-10: Table 2, the L2 sweep, every defense.

    python recipes/cifar10_defenses/run.py [--quick] [--out DIR] [--key=value ...]

Every setting of ``config.yaml``'s ``defenses`` (a :mod:`models.privacy.registry` spec) is
a target CNN trained on ``train_size`` seeded members with that defense
(:func:`auditor.cifar.target.train_target`), attacked by four attacks sharing ``n_shadows``
shadow models trained with the same defended recipe (:func:`auditor.cifar.defenses.
attack_suite`); serving defenses reuse the undefended target and shadows and only harden the
answers. Table 2 adds L2-regularized targets at the larger training sizes. The run folder gets
the resolved ``config.yaml``, ``targets/<setting>/`` (checkpoints, splits, histories),
``metrics.json`` (``rows``: one per setting and attack, rewritten after every setting so a cut
run keeps what finished), ``table.md`` and ``privacy_utility.png``.
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

import numpy as np
import torch

from auditor.cifar.audit import evaluation_records, shadow_recipe
from auditor.cifar.defenses import ATTACK_NAMES, AnswerCache, attack_suite, train_shadows
from auditor.cifar.target import defense_settings, load_target, train_target
from auditor.config import (
    apply_overrides,
    apply_section,
    load_config,
    prepare_run_dir,
    save_metrics,
)
from auditor.plots import plot_privacy_utility
from auditor.recipe_cli import recipe_command, repo_path
from auditor.reports import fmt
from models.privacy.registry import get_defense, parse_defense
from models.vision.data import load_image_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config.yaml")
log = logging.getLogger("cifar10_defenses")


def resolve_config(overrides: list[str], *, quick: bool) -> dict:
    """``config.yaml`` with the ``quick`` overrides (when asked), then the command line's."""
    config = apply_section(load_config(CONFIG), "quick", use=quick)
    config = apply_overrides(config, overrides, source=str(CONFIG))
    for spec in [*config["defenses"], config["table2"]["defense"]]:
        parse_defense(spec)  # unknown names / parameters fail before any training
    if parse_defense(config["defenses"][0])[0] != "none":
        raise ValueError("the first setting of `defenses` must be none (the undefended baseline)")
    return config


def slug(spec: str, size: int) -> str:
    """A folder name for one setting, e.g. ``n2500_dpsgd_noise_multiplier-1.0``."""
    return f"n{size}_" + re.sub(r"[^A-Za-z0-9.]+", "_", spec.replace("=", "-")).strip("_")


def train_recipe_key(spec: str, config: dict) -> str:
    """Settings with the same key share one trained target and its shadows (serving defenses)."""
    cfg, _ = defense_settings(spec, config["cnn"])
    return repr(sorted(cfg.items()))


def run_setting(config: dict, spec: str, size: int, run_dir: Path, cache: dict) -> list[dict]:
    """Train (or reuse) the target and shadows of ``spec`` at ``size``, attack; rows per attack."""
    seed = int(config["seed"])
    name, params = parse_defense(spec)
    stage = get_defense(name).stage
    key = (size, train_recipe_key(spec, config))
    n_eval = min(int(config["eval"]["n_eval"]), size)
    if key not in cache:
        summary = train_target(
            repo_path(config["data"], REPO), run_dir / "targets" / slug(spec if stage != "serve" else "none",
                                                          size),
            train_size=size, seed=seed, cnn_config=dict(config["cnn"]), n_shadow_pool=2 * size,
            cache_dir=config["cache_dir"], progress=False,
            defense=spec if stage != "serve" else None,
        )  # fmt: skip
        target = load_target(summary["out"], data=repo_path(config["data"], REPO),
                             cache_dir=config["cache_dir"], progress=False)  # fmt: skip
        x_eval, y_eval, membership = evaluation_records(target, n_eval, seed)
        shadows = train_shadows(target, shadow_recipe(target), int(config["attack"]["n_shadows"]),
                                seed=seed, x_eval=x_eval)  # fmt: skip
        cache[key] = (summary, target, shadows, (x_eval, y_eval, membership), AnswerCache(target))
    summary, target, shadows, (x_eval, y_eval, membership), answers = cache[key]
    serving = {"name": name, **params} if stage == "serve" else None
    target = dataclasses.replace(target, serving=serving)
    answers.target = target  # the shared model's answers, hardened by this setting
    results = attack_suite(
        target, shadows, seed=seed, x_eval=x_eval, y_eval=y_eval, membership=membership,
        threshold_percentile=float(config["attack"]["threshold_percentile"]),
        shokri_max_iter=int(config["attack"]["shokri_max_iter"]),
        n_bootstrap=int(config["eval"]["n_bootstrap"]), cache=answers,
    )  # fmt: skip
    x_non, y_non = target.records("target_nonmembers")
    x_mem, y_mem = target.records("target_members")
    served_test_acc = float((answers.predict_proba(x_non).argmax(1) == y_non).mean())
    served_train_acc = float((answers.predict_proba(x_mem).argmax(1) == y_mem).mean())
    common = {
        "setting": spec, "defense": name, "params": params, "stage": stage, "train_size": size,
        "strongest": results["strongest"],
        "target": {
            "train_acc": served_train_acc, "test_acc": served_test_acc,
            "train_test_gap": served_train_acc - served_test_acc,
            "train_seconds": summary["seconds"] if stage != "serve" else 0.0,
            "epsilon": summary.get("epsilon"), "delta": summary.get("delta"),
        },
        "shadow_seconds": shadows.seconds if stage != "serve" else 0.0,
    }  # fmt: skip
    rows = []
    for attack in ATTACK_NAMES:
        m = {k: v for k, v in results[attack].items() if k != "roc"}
        rows.append({**common, "attack": attack, **m})
    return rows


def settings_summary(rows: list[dict], size: int) -> list[dict]:
    """One entry per setting at ``size``: target figures and the strongest attack's metrics."""
    out = {}
    for r in rows:
        if r["train_size"] != size:
            continue
        s = out.setdefault(r["setting"], {"setting": r["setting"], "defense": r["defense"],
                                          "target": r["target"], "attacks": {}})  # fmt: skip
        s["attacks"][r["attack"]] = r
    for s in out.values():
        s["best"] = max(s["attacks"].values(), key=lambda r: r["auc"])
        tprs = [r["tpr_at_fpr"].get("0.01") for r in s["attacks"].values()]
        s["tpr1_max"] = max((t for t in tprs if t is not None), default=None)
        tprs = [r["tpr_at_fpr"].get("0.001") for r in s["attacks"].values()]
        s["tpr01_max"] = max((t for t in tprs if t is not None), default=None)
    return list(out.values())


def target_met(summary: list[dict], config: dict) -> list[dict]:
    """Settings whose strongest AUC and test-accuracy cost meet ``config["target"]``."""
    base = summary[0]["target"]["test_acc"]
    goal = config["target"]
    return [
        {"setting": s["setting"], "auc": s["best"]["auc"], "attack": s["best"]["attack"],
         "test_acc": s["target"]["test_acc"], "acc_drop": base - s["target"]["test_acc"]}
        for s in summary[1:]
        if s["best"]["auc"] <= goal["max_auc"] and base - s["target"]["test_acc"] <= goal["max_acc_drop"]
    ]  # fmt: skip


def format_tables(doc: dict, config: dict) -> str:
    """Markdown: Table 2 and the L2 sweep beside the paper's, then the defense grid."""
    size = int(config["train_size"])
    rows = doc["rows"]
    ref = config["reference"]
    lines = [
        "Table 2 (Shokri attack on L2-regularized CNNs, "
        f"{config['table2']['defense']}), ours vs the reference paper",
        "",
        "| train size | target train acc | target test acc | precision (paper) | recall (paper) "
        "| accuracy (paper) | Shokri AUC | strongest AUC (attack) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
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
                f"| {fmt(r['accuracy'])} ({fmt(p.get('accuracy'), 2)}) | {fmt(r['auc'])} "
                f"| {fmt(s['best']['auc'])} ({s['best']['attack']}) |"
            )
    summary = settings_summary(rows, size)
    lines += [
        "",
        f"L2 sweep (training size {size}), ours vs the reference paper (attack accuracy: Shokri)",
        "",
        "| L2 factor | train acc (paper) | test acc (paper) | attack acc (paper) "
        "| strongest AUC (attack) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for factor in config["l2_sweep"]:
        for s in summary:
            name, params = parse_defense(s["setting"])
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
                f"| {fmt(r['accuracy'])} ({fmt(p.get('attack_acc'))}) "
                f"| {fmt(s['best']['auc'])} ({s['best']['attack']}) |"
            )
    base = summary[0] if summary else None
    lines += [
        "",
        f"Every defense (training size {size}; AUC per attack; strongest = highest AUC; TPR at "
        "low FPR: the highest over the four attacks; time ratio: target training time / "
        "undefended, serving defenses reuse the undefended model)",
        "",
        "| setting | test acc | train acc | eps (delta) | " + " | ".join(ATTACK_NAMES)
        + " | strongest AUC | TPR@1% | TPR@0.1% | train time ratio |",
        "|---|---:|---:|---:|" + "---:|" * len(ATTACK_NAMES) + "---:|---:|---:|---:|",
    ]  # fmt: skip
    for s in summary:
        t = s["target"]
        eps = f"{t['epsilon']:.2f} ({t['delta']:g})" if t.get("epsilon") is not None else "-"
        ratio = t["train_seconds"] / base["target"]["train_seconds"] if t["train_seconds"] else 1.0
        aucs = " | ".join(fmt(s["attacks"][a]["auc"]) for a in ATTACK_NAMES)
        lines.append(
            f"| {s['setting']} | {fmt(t['test_acc'])} | {fmt(t['train_acc'])} | {eps} | {aucs} "
            f"| {fmt(s['best']['auc'])} ({s['best']['attack']}) | {fmt(s['tpr1_max'])} "
            f"| {fmt(s['tpr01_max'])} | {ratio:.2f} |"
        )
    met = doc.get("target_met", [])
    goal = config["target"]
    lines += ["", f"Goal: strongest-attack AUC <= {goal['max_auc']} at <= "
              f"{100 * goal['max_acc_drop']:.0f} points test-accuracy cost: "
              + ("; ".join(f"{m['setting']} (AUC {m['auc']:.3f} by {m['attack']}, test acc "
                           f"{m['test_acc']:.3f}, cost {100 * m['acc_drop']:.1f} points)"
                           for m in met) or "no setting met it") + ".",
              "",
              f"Deviations from the paper: {config['cnn']['epochs']} epochs (paper: up to 100); "
              f"{config['attack']['n_shadows']} shadow model(s) per recipe; see "
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
    jobs = [(spec, size) for spec in config["defenses"]]
    jobs += [(config["table2"]["defense"], int(n)) for n in config["table2"]["train_sizes"]
             if int(n) != size or config["table2"]["defense"] not in config["defenses"]]  # fmt: skip
    cache: dict = {}
    for spec, n in jobs:
        log.info("setting %s at %d (%.0f s so far)", spec, n, time.perf_counter() - t0)
        doc["rows"] += run_setting(config, spec, n, run_dir, cache)
        if n != size:
            cache.clear()  # large targets are not reused
        doc["seconds"] = time.perf_counter() - t0
        summary = settings_summary(doc["rows"], size)
        doc["target_met"] = target_met(summary, config) if summary else []
        save_metrics(run_dir, doc)  # after every setting: a cut run keeps what finished
        table = format_tables(doc, config)
        (run_dir / "table.md").write_text(table + "\n")
    summary = settings_summary(doc["rows"], size)
    points = [{"name": s["setting"], "utility": s["target"]["test_acc"],
               "series": {"strongest attack": {"auc": s["best"]["auc"], "tpr": s["tpr1_max"]}}}
              for s in summary]  # fmt: skip
    plot_privacy_utility(
        points, run_dir / "privacy_utility.png", utility_label="test accuracy",
        attacks=[("auc", "strongest attack AUC"), ("tpr", "TPR at 1% FPR (best attack)")],
        baseline=config["defenses"][0], title=f"CIFAR-10 defenses, training size {size}",
    )  # fmt: skip
    print(table)
    print(f"\nrun folder: {run_dir}  ({doc['seconds']:.0f} s)")
    return doc


main = recipe_command(
    resolve_config, run, repo=REPO, name="cifar10_defenses", summary="Defenses on CIFAR-10",
    quick_help="Smoke configuration (tiny sizes, 1 epoch).",
)


if __name__ == "__main__":
    np.seterr(over="ignore")
    main()
