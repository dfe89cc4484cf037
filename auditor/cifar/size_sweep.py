"""Membership attacks on CIFAR-10 CNNs by training size (Table 1 of the reference paper).

For each training size a target CNN is trained on a seeded member split
(:func:`auditor.cifar.target.train_target`; smallest sizes first, as many targets at a time as
the executor has workers), then every configured attack is fitted on the attacker's records and
scored on the target's members against as many non-members
(:func:`auditor.cifar.audit.attack_target`). ``recipes/cifar10_shadow/config.yaml`` documents
the config's keys.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch

from auditor.cifar.attacks import ShokriAttack
from auditor.cifar.audit import attack_target
from auditor.cifar.target import load_target, train_target
from auditor.config import prepare_run_dir, save_metrics
from auditor.executor import get_executor
from auditor.metrics import fmt
from auditor.plots import save_roc_plots
from auditor.recipe_cli import repo_path
from corpora.cifar10 import load_image_dataset

log = logging.getLogger(__name__)


def train_targets(
    config: dict, sizes: list[int], run_dir: Path, executor, *, root: Path
) -> dict[int, dict]:
    """Train one target per training size in ``sizes``, in parallel through the executor."""
    jobs = [
        {
            "data": str(repo_path(config["data"], root)),
            "out": str(run_dir / "targets" / f"n{size}"),
            "train_size": int(size),
            "seed": int(config["seed"]),
            "cnn_config": dict(config["cnn"]),
            "n_shadow_pool": 2
            * int(size),  # shadows / references train on N of them, like the target
            "cache_dir": config["cache_dir"],
            "progress": False,
        }
        for size in sizes
    ]
    summaries = executor.map(train_target, jobs, desc="targets")
    return {int(s["train_size"]): s for s in summaries}


def attack_rows(
    config: dict, size: int, summary: dict, executor, run_dir: Path, *, root: Path
) -> list[dict]:
    """Run every configured attack on the target of one size; one metrics row per attack."""
    target = load_target(
        summary["out"],
        data=repo_path(config["data"], root),
        cache_dir=config["cache_dir"],
        progress=False,
    )
    rows, curves = [], {}
    for attack, params in config["attacks"].items():
        log.info("size %d: %s", size, attack)
        metrics = attack_target(
            target,
            attack,
            seed=int(config["seed"]),
            params=dict(params or {}),
            executor=executor,
            n_eval=config["eval"]["n_eval"],
            n_bootstrap=int(config["eval"]["n_bootstrap"]),
        )
        curves[attack] = metrics
        row = {k: v for k, v in metrics.items() if k != "roc"}
        row["train_size"] = size
        row["target"] = {
            "train_acc": summary["final"]["train_acc"],
            "test_acc": summary["final"]["val_acc"],
            "train_test_gap": summary["train_test_gap"],
            "train_seconds": summary["seconds"],
        }
        rows.append(row)
    save_roc_plots(curves, run_dir, stem=f"roc_n{size}", title=f"CIFAR-10, training size {size}")
    return rows


def format_tables(rows: list[dict], reference: dict, config: dict) -> str:
    """Markdown: Table 1 (Shokri) beside the paper's, then every attack's AUC and TPR at low FPR."""
    return "\n".join(
        _table1(rows, reference, config)
        + _all_attacks(rows)
        + [
            "",
            f"Deviations from the paper: {config['cnn']['epochs']} epochs (paper: up to 100); "
            f"attacks {dict(config['attacks'])}; see recipes/cifar10_shadow/config.yaml.",
        ]
    )


def _table1(rows: list[dict], reference: dict, config: dict) -> list[str]:
    ref = {int(k): v for k, v in reference.items()}
    shokri = config["attacks"].get("shokri") or {}
    features = shokri.get("features", ShokriAttack().features)
    lines = [
        f"Table 1 (Shokri shadow-model attack; attack features: {features} log-probabilities), "
        "ours vs the reference paper",
        "",
        "| train size | target train acc | target test acc | gap | precision (paper) "
        "| recall (paper) | accuracy (paper) | AUC |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["attack"] != "shokri":
            continue
        p = ref.get(r["train_size"], {})
        t = r["target"]
        lines.append(
            f"| {r['train_size']} | {fmt(t['train_acc'])} | {fmt(t['test_acc'])} "
            f"| {fmt(t['train_test_gap'])} | {fmt(r['precision'])} ({fmt(p.get('precision'), 2)}) "
            f"| {fmt(r['recall'])} ({fmt(p.get('recall'), 2)}) "
            f"| {fmt(r['accuracy'])} ({fmt(p.get('accuracy'), 2)}) | {fmt(r['auc'])} |"
        )
    return lines


def _all_attacks(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "All attacks (balanced members / non-members; TPR at FPR is exact, n/a when 1/n_nonmembers "
        "exceeds the FPR)",
        "",
        "| train size | attack | accuracy | precision | recall | AUC [95% CI] | TPR@1% FPR "
        "| TPR@0.1% FPR | n members | seconds |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ci = r.get("ci95", {}).get("auc")
        auc = fmt(r["auc"]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        tpr = r["tpr_at_fpr"]
        lines.append(
            f"| {r['train_size']} | {r['attack']} | {fmt(r['accuracy'])} | {fmt(r['precision'])} "
            f"| {fmt(r['recall'])} | {auc} | {fmt(tpr.get('0.01'))} | {fmt(tpr.get('0.001'))} "
            f"| {r['n_members']} | {r['seconds']:.0f} |"
        )
    return lines


def run_size_sweep(config: dict, out: Path, *, root: Path) -> dict:
    """Train the targets, run the attacks, write the run folder; returns the metrics document.

    The run folder gets the resolved ``config.yaml``, ``targets/n<size>/`` (checkpoints,
    splits, histories), ``metrics.json`` (one row per size and attack; rewritten after every
    size, so a cut run keeps what finished), ``table.md`` and ROC plots
    ``roc_n<size>_{linear,log}.png``. A relative ``config["data"]`` is taken from ``root``.
    """
    run_dir = prepare_run_dir(out, config, int(config["seed"]))
    t0 = time.perf_counter()
    data = repo_path(config["data"], root)
    load_image_dataset(data, cache_dir=config["cache_dir"])  # decode once, cached
    ex = config["executor"]
    executor = get_executor(ex["kind"], max_workers=ex["workers"], address=ex["address"])
    doc = {
        "name": config["name"],
        "reference": {str(k): v for k, v in config["reference"].items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "rows": [],
    }
    sizes = sorted(int(s) for s in config["train_sizes"])
    group = max(1, int(ex["workers"] or 1))
    for start in range(0, len(sizes), group):  # smallest sizes first, `workers` targets at a time
        summaries = train_targets(
            config, sizes[start : start + group], run_dir, executor, root=root
        )
        for size in sorted(summaries):
            doc["rows"] += attack_rows(config, size, summaries[size], executor, run_dir, root=root)
            doc["seconds"] = time.perf_counter() - t0
            save_metrics(run_dir, doc)  # after every size: a cut run keeps what finished
            table = format_tables(doc["rows"], config["reference"], config)
            (run_dir / "table.md").write_text(table + "\n")
    print(table)
    print(f"\nrun folder: {run_dir}  ({doc['seconds']:.0f} s)")
    return doc
