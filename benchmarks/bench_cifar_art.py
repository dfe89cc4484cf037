"""Peer comparison on CIFAR-10: our LiRA against IBM ART's ``MembershipInferenceBlackBox``.

One run, one target, one evaluation set for every attack:

1. Train the reference paper's CNN on ``--train-size`` members drawn from
   ``../shared/data/cifar10/cifar10-jpeg.zip`` (as many non-members; ``--train-size`` more
   records go to the auditor as its own data).
2. Split the members and the non-members in halves. ART's attack needs records *known* to be
   members and non-members to train its attack model (a stronger threat model than ours): it
   gets the first halves. Every attack is scored on the second halves.
3. Our attacks on the same evaluation records: LiRA online (``--n-reference`` reference models,
   global variance, mirror-flip queries, trained in parallel through the local executor) and
   the training-free max-posterior threshold as a floor.
4. ART 1.x ``MembershipInferenceBlackBox`` with its default neural-network attack model and with
   its random forest, on the target's probabilities through ``BlackBoxClassifier``.

Prints a table (AUC with bootstrap 95% interval, TPR at 1% and 0.1% FPR, accuracy, wall time,
queries) and appends a section to ``BENCHMARKS.md``; writes ``metrics.json`` and ROC plots
into ``--out``. Run from the repository root, e.g.
``nice -n 10 .venv/bin/python benchmarks/bench_cifar_art.py``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from publish import publish  # benchmarks/publish.py

from auditor.cifar.attacks import LiRA, ThresholdAttack
from auditor.cifar.audit import shadow_recipe
from auditor.cifar.target import load_target, train_target
from auditor.config import save_metrics
from auditor.executor import get_executor
from auditor.metrics import membership_metrics
from auditor.plots import save_roc_plots

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.zip"
FPRS = (0.01, 0.001)


def halves(idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random split of index array ``idx`` into two halves (sorted)."""
    order = rng.permutation(idx)
    return np.sort(order[: len(idx) // 2]), np.sort(order[len(idx) // 2 :])


def run_art(target, x_fit_in, y_fit_in, x_fit_out, y_fit_out, x_eval, y_eval, model_type, seed):
    """Fit ART's black-box attack on known members / non-members; member scores on x_eval.

    ART needs float inputs: images go in as float32 in [0, 1], which the target's
    ``predict_proba`` reads exactly like the uint8 images divided by 255.
    """
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    torch.manual_seed(seed)
    np.random.seed(seed)  # ART's attack models draw from numpy's global generator
    n_classes = len(target.classes)
    classifier = BlackBoxClassifier(
        target.predict_proba, x_eval.shape[1:], n_classes, clip_values=(0.0, 1.0)
    )
    attack = MembershipInferenceBlackBox(
        classifier, input_type="prediction", attack_model_type=model_type
    )
    attack.fit(_unit(x_fit_in), y_fit_in, _unit(x_fit_out), y_fit_out)
    scores = attack.infer(_unit(x_eval), y_eval, probabilities=True)
    return np.asarray(scores, dtype=np.float64).reshape(len(x_eval), -1)[:, -1]


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0  # (n, H, W, 3) in [0, 1]


def row(name: str, metrics: dict) -> str:
    low, high = metrics["ci95"]["auc"]
    tprs = [metrics["tpr_at_fpr"][k] for k in ("0.01", "0.001")]
    tpr_text = [f"{t:.3f}" if t is not None else "n/a" for t in tprs]
    return (
        f"| {name} | {metrics['auc']:.3f} [{low:.3f}, {high:.3f}] | {tpr_text[0]} | "
        f"{tpr_text[1]} | {metrics['accuracy']:.3f} | {metrics['seconds']:.0f} | "
        f"{metrics['n_queries']} |"
    )


def parse_args() -> argparse.Namespace:
    """The command line (``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="CIFAR-10 source (zip / tree / batches)")
    parser.add_argument("--train-size", type=int, default=2500, help="target members")
    parser.add_argument("--epochs", type=int, default=10, help="target and reference epochs")
    parser.add_argument("--n-reference", type=int, default=8, help="LiRA reference models")
    parser.add_argument("--workers", type=int, default=2, help="parallel reference trainings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "runs" / "bench_cifar_art"))
    parser.add_argument("--no-append", action="store_true", help="do not touch BENCHMARKS.md")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.workers)
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    summary = train_target(
        args.data,
        out / "target",
        train_size=args.train_size,
        seed=args.seed,
        cnn_config={"epochs": args.epochs},
        n_shadow_pool=args.train_size,
    )
    target_seconds = time.perf_counter() - t0
    target = load_target(out / "target")
    members_fit, members_eval = halves(target.split["target_members"], rng)
    nonmembers_fit, nonmembers_eval = halves(target.split["target_nonmembers"], rng)
    eval_idx = np.concatenate([members_eval, nonmembers_eval])
    x_eval, y_eval = target.x[eval_idx], target.y[eval_idx]
    membership = np.r_[np.ones(len(members_eval), int), np.zeros(len(nonmembers_eval), int)]
    x_aux, y_aux = target.records("shadow_pool")

    results = {}
    t0 = time.perf_counter()
    lira = LiRA(
        target.predict_proba,
        shadow_recipe(target),
        n_reference=args.n_reference,
        mode="online",
        global_variance=True,
        augment=True,
        executor=get_executor("local", max_workers=args.workers),
        seed=args.seed,
    )
    lira.fit(x_aux, y_aux, x_candidates=x_eval, y_candidates=y_eval)
    scores = lira.score_samples(x_eval, y_eval)
    # Decision: a likelihood ratio above 1 (log ratio > 0) calls a member.
    results["LiRA online (ours)"] = (
        scores,
        time.perf_counter() - t0,
        lira.blackbox_.n_queries,
        0.0,
    )

    t0 = time.perf_counter()
    threshold = ThresholdAttack(target.predict_proba, percentile=90).fit(x_aux)
    scores = threshold.score_samples(x_eval)
    results["max-posterior threshold (ours)"] = (
        scores,
        time.perf_counter() - t0,
        threshold.blackbox_.n_queries,
        threshold.threshold_,
    )

    for model_type, label in (("nn", "ART black-box, nn"), ("rf", "ART black-box, rf")):
        t0 = time.perf_counter()
        scores = run_art(
            target,
            target.x[members_fit],
            target.y[members_fit],
            target.x[nonmembers_fit],
            target.y[nonmembers_fit],
            x_eval,
            y_eval,
            model_type,
            args.seed,
        )
        n_queries = len(members_fit) + len(nonmembers_fit) + len(x_eval)
        results[label] = (scores, time.perf_counter() - t0, n_queries, 0.5)

    metrics = {}
    for name, (scores, seconds, n_queries, cut) in results.items():
        m = membership_metrics(membership, scores, threshold=cut, fprs=FPRS, seed=args.seed)
        m.update(seconds=seconds, n_queries=int(n_queries))
        metrics[name] = m
    save_metrics(out, {"target": summary, "attacks": metrics})
    save_roc_plots(metrics, out, stem="roc_art_vs_lira", title="CIFAR-10: LiRA vs ART")

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    import art

    final = summary["final"]
    lines = [
        f"## CIFAR-10: LiRA against IBM ART MembershipInferenceBlackBox ({datetime.date.today()})",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), shared with other work; Python "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"adversarial-robustness-toolbox {art.__version__}.",
        f"Command: `nice -n 10 .venv/bin/python {' '.join(['benchmarks/bench_cifar_art.py', *sys.argv[1:]])}`",
        "",
        f"Target: reference CNN, {args.train_size} members, {args.epochs} epochs, train accuracy "
        f"{final['train_acc']:.3f}, test accuracy {final['val_acc']:.3f} (gap "
        f"{summary['train_test_gap']:.3f}), trained in {target_seconds:.0f} s. Every attack is "
        f"scored on the same {len(members_eval)} members + {len(nonmembers_eval)} non-members; "
        f"ART's attack model is trained on the other {len(members_fit)} members + "
        f"{len(nonmembers_fit)} non-members (known membership, which our attacks never get). "
        f"LiRA: online, {args.n_reference} reference models trained like the target on random "
        f"halves of the candidates + {len(x_aux)} auditor records ({args.workers} local "
        f"workers), global variance, mirror-flip queries.",
        "",
        "| attack | AUC [95% CI] | TPR @ 1% FPR | TPR @ 0.1% FPR | accuracy | wall s | queries |",
        "|---|---|---|---|---|---|---|",
        *[row(name, m) for name, m in metrics.items()],
        "",
    ]
    publish("\n".join(lines), append=not args.no_append)


if __name__ == "__main__":
    main()
