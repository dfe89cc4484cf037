"""Voice path: every user-level attack side by side, against the number of references.

:func:`run_voice_attacks` prepares the corpus and the speaker splits once, then runs the
user-level audit (:func:`auditor.voice.pipeline.run_user_audit`) with k = each of
``config["references"]`` shadow recognizers, sharing the model cache (the first k references of
a larger k are the same models: :func:`auditor.voice.shadow.shadow_splits` draws them in
order), so the sweep costs the largest k once. It writes ``metrics.json`` (one row per k,
condition, attack and K audios per user, with each k's reference training CPU seconds),
``table.md`` and each k's audit under ``k<k>/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from auditor.config import prepare_run_dir, save_metrics
from auditor.metrics import CI_LABEL, fmt
from auditor.voice.pipeline import prepare_audit_corpus, run_user_audit
from auditor.voice.sweep import ATTACKS
from common.config_merge import deep_merge


def run_voice_attacks(
    config: dict, out: str | Path, *, seed: int = 0, root: Path | None = None
) -> dict:
    """Audit with each k of ``config["references"]`` into ``out``; returns ``metrics.json``."""
    from corpora.splits import make_splits

    ks = sorted(config["references"])
    run_dir = prepare_run_dir(out, config, seed)
    started = time.perf_counter()
    manifest = prepare_audit_corpus(run_dir, config["corpus"], seed, root)
    splits_path = run_dir / "splits.json"
    make_splits(manifest, splits_path, seed=seed, **config["splits"])
    audit_cfg = {key: v for key, v in config.items() if key != "references"}
    rows, per_k = [], {}
    for k in ks:
        print(f"[attacks] auditing with k = {k} references", flush=True)
        metrics = run_user_audit(
            deep_merge(audit_cfg, {"shadows": {"k": k}}),
            run_dir / f"k{k}",
            seed=seed,
            manifest=manifest,
            splits_path=splits_path,
            models_dir=run_dir / "models",
            reports=k == ks[-1],
        )
        per_k[k] = {
            "reference_train_cpu_seconds": reference_cpu_seconds(metrics),
            "reference_calibrated": metrics.get("reference_calibrated"),
        }
        rows += [r | {"references": k} for r in metrics["rows"]]
        doc = {
            "seed": seed,
            "references": ks,
            "done": sorted(per_k),
            "n_members": config["splits"]["target_members"],
            "n_nonmembers": config["splits"]["target_nonmembers"],
            "per_k": per_k,
            "rows": rows,
            "wall_seconds": time.perf_counter() - started,
        }
        save_metrics(run_dir, doc)  # after each k: a long sweep keeps what it measured
    table = format_attack_table(doc)
    (run_dir / "table.md").write_text(table + "\n")
    print(table)
    return doc


def reference_cpu_seconds(metrics: dict) -> float:
    """Training seconds of an audit's references (each trains on one thread)."""
    total = 0.0
    for s in metrics["shadows"]:
        report = json.loads((Path(s["path"]) / "train_report.json").read_text())
        total += report["wall_seconds"]
    return total


def format_attack_table(doc: dict) -> str:
    """Markdown: one line per condition, K, attack and k: AUC with its interval and TPRs."""
    lines = [
        f"| condition | K audios | attack | k refs | AUC [{CI_LABEL}] | TPR @ 1% FPR "
        "| TPR @ lowest FPR | ref. CPU s |",
        "|---|---:|---|---:|---|---:|---:|---:|",
    ]
    n = doc["n_members"] + doc["n_nonmembers"]
    order = {a: i for i, a in enumerate(ATTACKS)}
    rows = [r for r in doc["rows"] if r["users"] == n]
    rows.sort(
        key=lambda r: (r["condition"], r["audios_per_user"], order[r["attack"]], r["references"])
    )
    for r in rows:
        ci = (r.get("ci95") or {}).get("auc")
        auc = fmt(r["auc"]) + (f" [{fmt(ci[0], 2)}, {fmt(ci[1], 2)}]" if ci else "")
        low = r["tpr_at_fpr"].get(r["lowest_fpr"])
        cpu = doc["per_k"][r["references"]]["reference_train_cpu_seconds"]
        lines.append(
            f"| {r['condition']} | {r['audios_per_user']} | {r['attack']} | {r['references']} "
            f"| {auc} | {fmt(r['tpr_at_fpr'].get('0.01'), 2)} "
            f"| {fmt(low, 2)} at {r['lowest_fpr']} | {cpu:.0f} |"
        )
    return "\n".join(lines)
