"""Benchmark of the user-level audit: demo wall time by stage, shadow-training speed-up with
2 local workers against 1, queries per second during the audit, and the attack table.

Runs ``auditor demo`` (``--quick`` for the small configuration) into ``--out/demo``, then trains
the demo's 2 shadows again from scratch with 1 and with 2 local workers (fresh cache folders)
on the demo's manifest and shadow pool. Prints the tables and appends a section to
``BENCHMARKS.md``. Run from the repository root:

    .venv/bin/python benchmarks/bench_audit.py --out /tmp/bench_audit [--quick] [--no-append]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import time
from pathlib import Path

from publish import publish  # benchmarks/publish.py

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> str:
    return next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "unknown",
    )


def shadow_speedup(run_dir: Path, work: Path, seed: int) -> dict[int, float]:
    """Seconds to train the demo's shadows from scratch with 1 and with 2 local workers."""
    import yaml

    from auditor.executor import get_executor
    from auditor.voice.shadow import train_shadows
    from corpora.splits import speakers_of

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    pool = speakers_of(run_dir / "splits.json", "shadow_pool")
    manifest = run_dir / "prepared"
    seconds = {}
    for workers in (1, 2):
        cache = work / f"shadows_w{workers}"
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        train_shadows(
            manifest,
            pool,
            cfg["recognizer"],
            k=cfg["shadows"]["k"],
            seed=seed,
            cache_dir=cache,
            executor=get_executor("local", max_workers=workers),
        )
        seconds[workers] = time.perf_counter() - t0
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-append", action="store_true", help="Do not append to BENCHMARKS.md.")
    args = ap.parse_args()

    import torch

    from auditor.voice.demo import run_demo
    from auditor.voice.reports import format_table

    demo_dir = args.out / "demo"
    metrics = run_demo(demo_dir, quick=args.quick, seed=args.seed)
    stages = metrics["stages"]
    speed = shadow_speedup(demo_dir, args.out, args.seed)

    stage_rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in stages.items())
    tables = "\n\n".join(
        "```\n" + format_table(metrics, cond, attack) + "\n```"
        for cond in metrics["conditions"]
        for attack in ("random_forest", "calibrated_test")
    )
    main_rows = []
    for name, m in metrics["attacks"].items():
        ci = m.get("ci95", {})
        tpr = m["tpr_at_fpr"].get("0.01")
        main_rows.append(
            f"| {name} | {m['n_members']}+{m['n_nonmembers']} | {m['accuracy']:.3f} | "
            f"{m['precision']:.3f} | {m['recall']:.3f} | {m['auc']:.3f} "
            f"[{ci.get('auc', [float('nan')] * 2)[0]:.3f}, {ci.get('auc', [float('nan')] * 2)[1]:.3f}] | "
            f"{'n/a (1/N > 0.01)' if tpr is None else f'{tpr:.3f}'} |"
        )
    q = metrics["queries"]
    cmd = (
        "python benchmarks/bench_audit.py --out "
        + str(args.out)
        + (" --quick" if args.quick else "")
    )
    section = f"""
## User-level audit (`benchmarks/bench_audit.py`), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC

- command: `{cmd}` (runs `auditor demo{" --quick" if args.quick else ""}` into `{demo_dir}`)
- machine: `nproc` = {os.cpu_count()}, CPU {_cpu()}; shared with other processes (other helpers' jobs were running: figures are upper bounds on wall time)
- versions: Python {platform.python_version()}, torch {torch.__version__}

### Demo wall time by stage (s)
| stage | seconds |
|---|---:|
{stage_rows}

### Shadow training ({metrics["shadows"][0]["in"]} IN speakers each, {len(metrics["shadows"])} shadows, from scratch)
| local workers | seconds |
|---:|---:|
| 1 | {speed[1]:.1f} |
| 2 | {speed[2]:.1f} |

Speed-up with 2 workers: {speed[1] / speed[2]:.2f}x.

### Queries
{q["sent"]} device queries over MQTT in {q["seconds"]:.1f} s: {q["queries_per_second"]:.1f} queries/s ({q["reused"]} reused from the record, {q["failed"]} failed).

### Attacks ({metrics["audios_per_user"]} audios per user, all audited users; AUC with bootstrap 95% interval)
| condition/attack | members+non-members | accuracy | precision | recall | AUC [95% CI] | TPR@1%FPR |
|---|---|---:|---:|---:|---:|---:|
{chr(10).join(main_rows)}

Reference paper's table format (rows by number of audited users):

{tables}
"""
    publish(section, append=not args.no_append)
    (args.out / "bench_audit.json").write_text(
        json.dumps({"stages": stages, "shadow_seconds": speed, "queries": q}, indent=1)
    )


if __name__ == "__main__":
    main()
