"""Voice path: defenses against the user-level audit and their cost in PER.

:func:`run_voice_defenses` prepares the corpus and the speaker splits once, then for each
setting of ``config["defenses"]`` (``NAME[:key=value,...]``, :mod:`models.asr.defenses`) runs the
user-level audit of :func:`auditor.voice.pipeline.run_user_audit` into ``settings/<slug>/``: the
target trained with the defense, the shadows trained with the same recipe, the device serving
it over MQTT (with its ``--output`` hardening for serving defenses, whose target and shadows
are the undefended ones, reused from the model cache), both audit conditions. Then it scores
PER on unseen speakers (every utterance of the audit's non-member speakers) and writes into the
run directory: ``config.yaml`` (resolved, with the seed), ``splits.json``, ``metrics.json`` (a
row per setting, condition and attack, with PER, training time ratio and epsilon; its 95%
intervals are bootstrapped over the evaluated users, not over training runs), ``table.md``,
``privacy_utility.png``, and the undefended audit's HTML summary with the defense table and
plot (``settings/none/report/summary.html``, from its :mod:`auditor.voice.defense_summary`
document). ``recipes/voice_defenses/config.yaml`` documents the config's keys.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from auditor.config import prepare_run_dir, save_metrics
from auditor.metrics import METRIC_KEYS
from auditor.voice.audit import CI95_SCOPE
from auditor.voice.defense_summary import write_defense_summary
from auditor.voice.defense_tables import (
    CONDITIONS,
    closest_to_chance,
    format_defense_table,
    plot_defenses,
)
from auditor.voice.pipeline import prepare_audit_corpus, run_user_audit
from auditor.voice.sweep import ATTACKS

PLOT_NAME = "privacy_utility.png"
#: The attack metrics a setting keeps of each audit.
ATTACK_KEYS = (*METRIC_KEYS, "lowest_fpr", "ci95", "tpr_at_fpr_note")

#: What every table and report says next to the figures.
NOTES = [
    "TPR at 1% FPR cannot be measured with N < 100 non-members; the table gives TPR at the "
    "lowest measurable FPR, 1/N.",
    "DP-SGD's epsilon (at delta min(1e-5, 1/(10 n)), n training windows) is per spliced window "
    "of 11 frames (the privacy unit of the mini-batches), not per speaker: it bounds what one "
    "window reveals, not what a user's thousands of windows do; CMVN statistics, HMM priors and "
    "transitions and the phone bigram are estimated without noise (model.json says so).",
    "Serving defenses reuse the undefended target (PER unchanged, no training cost); the auditor "
    "sees the same hardened view of its shadows. The audit asks for no per-frame top-k "
    "posteriors, so topk:K leaves its view unchanged.",
    "PER on unseen speakers: every utterance of the audit's non-member speakers, 39-phone folding.",
    CI95_SCOPE + ".",
    "Training time ratio: mini-batch seconds of the target and its 2 shadows against the "
    "undefended ones in the same run (feature loading and decoding excluded).",
]


def slug(spec: str) -> str:
    """A folder name for a defense spec: ``l2:weight_decay=0.01`` -> ``l2-weight_decay-0.01``."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", spec).strip("-")


def run_voice_defenses(
    config: dict, out: str | Path, *, seed: int = 0, root: Path | None = None
) -> dict:
    """Run every defense setting of ``config`` into ``out``; returns ``metrics.json``'s document.

    ``root`` resolves a relative ``corpus.path`` (the recipe passes the repository root).
    """
    from corpora.splits import make_splits, read_splits
    from models.asr.defenses import voice_defense

    defenses = [voice_defense(spec) for spec in config["defenses"]]  # refuse bad specs first
    specs = list(config["defenses"])
    if "none" not in specs:
        raise ValueError("defenses must include 'none' (the undefended baseline)")
    run_dir = prepare_run_dir(out, config, seed)
    started = time.perf_counter()
    manifest = prepare_audit_corpus(run_dir, config["corpus"], seed, root)
    splits_path = run_dir / "splits.json"
    make_splits(manifest, splits_path, seed=seed, **config["splits"])
    splits = read_splits(splits_path)
    reference = _reference_speakers(manifest, splits, config, run_dir)
    shared = {
        "seed": seed,
        "manifest": manifest,
        "splits_path": splits_path,
        "models_dir": run_dir / "models",
    }
    settings = [
        _evaluate_setting(config, spec, defense, reference, run_dir, splits, shared)
        for spec, defense in zip(specs, defenses, strict=True)
    ]
    _compare_with_undefended(settings)
    doc = {
        "seed": seed,
        "n_members": len(splits["target_members"]),
        "n_nonmembers": len(splits["target_nonmembers"]),
        "unseen_speakers_for_per": len(splits["target_nonmembers"]),
        "advreg_reference": {"mode": config["advreg_reference"], "speakers": reference},
        "rows": _metric_rows(settings),
        "settings": settings,
        "best_tradeoff": closest_to_chance(settings),
        "ci95_scope": CI95_SCOPE,
        "notes": NOTES,
        "wall_seconds": time.perf_counter() - started,
    }
    _write_results(run_dir, doc)
    return doc


def _reference_speakers(manifest: Path, splits: dict, config: dict, run_dir: Path) -> list[str]:
    """The corpus speakers in no split (advreg's reference voices), recorded in the run."""
    from corpora.manifest import read_manifest

    in_splits = {s for v in splits.values() for s in v}
    reference = sorted({u.speaker for u in read_manifest(manifest)} - in_splits)
    (run_dir / "advreg_reference.json").write_text(
        json.dumps({"mode": config["advreg_reference"], "speakers": reference}, indent=1)
    )
    return reference


def _setting_config(config: dict, defense, reference_speakers: list[str]) -> dict:
    """The audit config of one setting: the recipe plus the defense (and advreg's reference)."""
    from common.config_merge import deep_merge
    from models.asr.config import resolve_config

    rec = deep_merge(config["recognizer"], defense.config)
    if "advreg" in defense.config.get("training", {}):
        ref = {"reference": config["advreg_reference"]}
        if config["advreg_reference"] == "speakers":
            if not reference_speakers:
                raise ValueError(
                    "advreg_reference is 'speakers' but every corpus speaker is "
                    "in a split: add corpus speakers"
                )
            ref["reference_speakers"] = reference_speakers
        rec = deep_merge(rec, {"training": {"advreg": ref}})
    resolve_config(rec)  # refuses unknown keys now, not in a training job
    device = dict(config["device"], output=defense.output)
    return {k: v for k, v in config.items() if k not in ("defenses", "advreg_reference")} | {
        "recognizer": rec,
        "device": device,
    }


def _evaluate_setting(
    config: dict,
    spec: str,
    defense,
    reference: list[str],
    run_dir: Path,
    splits: dict,
    shared: dict,
) -> dict:
    """Audit one setting into ``settings/<slug>/``; its entry of ``metrics.json``'s settings.

    ``shared`` holds :func:`~auditor.voice.pipeline.run_user_audit`'s ``seed``, ``manifest``,
    ``splits_path`` and ``models_dir``.
    """
    print(f"\n[defenses] === {spec} ({defense.stage}) ===", flush=True)
    t = time.perf_counter()
    metrics = run_user_audit(
        _setting_config(config, defense, reference),
        run_dir / "settings" / slug(spec),
        reports=False,
        **shared,
    )
    target = Path(metrics["target_dir"])
    report = json.loads((target / "train_report.json").read_text())
    # training cost: the mini-batch seconds of the target and the shadows (same recipe),
    # summed so that one model's share of a busy machine weighs less
    trained = [target] + [Path(s["path"]) for s in metrics["shadows"]]
    reports = [json.loads((m / "train_report.json").read_text()) for m in trained]
    dpsgd = report["defenses"].get("dpsgd") or {}
    setting = {
        "setting": spec,
        "slug": slug(spec),
        "defense": defense.name,
        "stage": defense.stage,
        "params": defense.params,
        "output": defense.output,
        "model_id": report["model_id"],
        "per_unseen_speakers": _unseen_speaker_per(
            target, shared["manifest"], splits["target_nonmembers"]
        ),
        "train_seconds": sum(r["train_seconds"] for r in reports),
        "train_wall_seconds": sum(r["wall_seconds"] for r in reports),
        "epsilon": dpsgd.get("epsilon"),
        "delta": dpsgd.get("delta"),
        "advreg_final_gain": (report["defenses"].get("advreg") or {}).get("final_gain"),
        "attacks": {
            f"{c}/{a}": _attack_row(metrics, c, a)
            for c in CONDITIONS
            for a in ATTACKS
            if a != "reference_calibrated" or f"{c}/{a}" in metrics["attacks"]
        },
        "setting_seconds": time.perf_counter() - t,
    }
    print(
        f"[defenses] {spec}: PER unseen speakers {setting['per_unseen_speakers']:.3f}, "
        + ", ".join(
            f"{k} AUC {v.get('auc', float('nan')):.3f}" for k, v in setting["attacks"].items()
        ),
        flush=True,
    )
    return setting


def _unseen_speaker_per(target_dir: Path, manifest: Path, speakers: list[str]) -> float:
    from corpora.manifest import read_manifest
    from models.asr.evaluate import evaluate_recognizer
    from models.asr.recognizer import load_recognizer

    rec = load_recognizer(target_dir)
    return float(
        evaluate_recognizer(rec, read_manifest(manifest, speakers), progress=False)["overall"][
            "per"
        ]
    )


def _attack_row(metrics: dict, cond: str, attack: str) -> dict:
    m = metrics["attacks"].get(f"{cond}/{attack}")
    if m is None:
        return {}
    return {k: m[k] for k in ATTACK_KEYS if k in m}


def _compare_with_undefended(settings: list[dict]) -> None:
    """Add each setting's PER increase and training time ratios against ``none``'s."""
    base = next(s for s in settings if s["setting"] == "none")
    for s in settings:
        served = s["stage"] == "serve"
        s["per_increase"] = s["per_unseen_speakers"] - base["per_unseen_speakers"]
        s["train_time_ratio"] = 1.0 if served else s["train_seconds"] / base["train_seconds"]
        s["train_wall_ratio"] = (
            1.0 if served else s["train_wall_seconds"] / base["train_wall_seconds"]
        )


def _metric_rows(settings: list[dict]) -> list[dict]:
    """One row per setting, condition and attack that was audited."""
    rows = []
    for s in settings:
        for key, m in s["attacks"].items():
            if not m:
                continue
            cond, attack = key.split("/")
            rows.append(
                {
                    "setting": s["setting"],
                    "defense": s["defense"],
                    "condition": cond,
                    "attack": attack,
                }
                | m
                | {
                    k: s[k]
                    for k in ("per_unseen_speakers", "per_increase", "train_time_ratio", "epsilon")
                }
            )
    return rows


def _write_results(run_dir: Path, doc: dict) -> None:
    """``metrics.json``, ``table.md``, the plot and the undefended audit's summary page."""
    save_metrics(run_dir, doc)
    table = format_defense_table(doc)
    (run_dir / "table.md").write_text(table + "\n", encoding="utf-8")
    plot = plot_defenses(doc, run_dir / PLOT_NAME)
    summary = _summary_with_defenses(run_dir, doc, plot)
    print("\n" + table)
    print(
        f"\n[defenses] metrics: {run_dir / 'metrics.json'}\n[defenses] plot: {plot}\n"
        f"[defenses] report: {summary}\n[defenses] wall {doc['wall_seconds']:.0f} s"
    )


def _summary_with_defenses(run_dir: Path, doc: dict, plot: Path) -> Path:
    """The undefended audit's HTML summary with the defense table and plot."""
    from auditor.voice.reports import write_reports

    base = run_dir / "settings" / "none"
    shutil.copyfile(plot, base / PLOT_NAME)
    write_defense_summary(
        base,
        settings=doc["settings"],
        n_nonmembers=doc["n_nonmembers"],
        best_tradeoff=doc["best_tradeoff"],
        notes=doc["notes"],
        plot=PLOT_NAME,
    )
    return write_reports(base)
