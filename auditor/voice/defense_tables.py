"""Voice path: the tables, plot and pick that present a defense evaluation.

:func:`closest_to_chance` picks the setting whose unseen-audio audit is closest to chance,
:func:`format_defense_table` writes the markdown table and :func:`plot_defenses` the
privacy-utility plot of the document that :func:`auditor.voice.defenses.run_voice_defenses`
builds (one entry per setting under ``settings``).
"""

from __future__ import annotations

from pathlib import Path

from auditor.metrics import CI_LABEL
from auditor.voice.audit import CI95_SCOPE
from auditor.voice.sweep import ATTACKS

CONDITIONS = ("seen", "unseen")


def tpr_at_lowest_fpr(m: dict) -> float | None:
    key = m.get("lowest_fpr")
    return None if key is None else m["tpr_at_fpr"].get(key)


def closest_to_chance(settings: list[dict]) -> dict:
    """The setting whose unseen-audio audit AUC is closest to 0.5, ties broken by PER increase.

    Distance to chance is ``|AUC - 0.5|`` of the stronger of the two attacks (an attacker
    picks the better one; ``attack`` names it), compared at 3 decimals. The undefended setting
    and settings whose unseen audios could not be audited are left out; ``{}`` if none is left.
    """

    def strongest(s: dict) -> tuple[float, str] | None:
        aucs = [(a, s["attacks"].get(f"unseen/{a}", {}).get("auc")) for a in ATTACKS]
        return max(((abs(auc - 0.5), a) for a, auc in aucs if auc is not None), default=None)

    scored = [(strongest(s), s) for s in settings if s["setting"] != "none"]
    scored = [(d, s) for d, s in scored if d is not None]
    if not scored:
        return {}
    (distance, attack), best = min(scored, key=lambda x: (round(x[0][0], 3), x[1]["per_increase"]))
    return {
        "setting": best["setting"],
        "unseen_auc_distance_to_chance": distance,
        "per_increase": best["per_increase"],
        "attack": attack,
    }


def auc_cell(m: dict, ci: bool = False) -> str:
    if not m or m.get("auc") is None:
        return "n/a"
    c = (m.get("ci95") or {}).get("auc")
    return f"{m['auc']:.3f}" + (f" [{c[0]:.2f}, {c[1]:.2f}]" if ci and c else "")


def tpr_cell(m: dict) -> str:
    v = tpr_at_lowest_fpr(m) if m else None
    return "n/a" if v is None else f"{v:.2f}"


def format_defense_table(doc: dict) -> str:
    """Markdown table: one line per setting."""
    n = doc["n_nonmembers"]
    head = (
        "| setting | PER unseen spk | dPER | seen AUC RF | seen AUC cal | seen TPR@1/N RF "
        f"| unseen AUC RF [{CI_LABEL}] | unseen AUC cal | unseen TPR@1/N RF | train time x "
        "| eps at delta (per window) |"
    )
    lines = [head, "|" + "---|" * 11]
    for s in doc["settings"]:
        a = s["attacks"]
        eps = "" if s["epsilon"] is None else f"{s['epsilon']:.3g} at {s['delta']:.2g}"
        lines.append(
            f"| {s['setting']} | {s['per_unseen_speakers']:.3f} | {s['per_increase']:+.3f} "
            f"| {auc_cell(a['seen/random_forest'])} | {auc_cell(a['seen/calibrated_test'])} "
            f"| {tpr_cell(a['seen/random_forest'])} "
            f"| {auc_cell(a['unseen/random_forest'], True)} "
            f"| {auc_cell(a['unseen/calibrated_test'])} | {tpr_cell(a['unseen/random_forest'])} "
            f"| {s['train_time_ratio']:.2f} | {eps} |"
        )
    lines.append("")
    lines.append(
        f"{doc['n_members']} member and {n} non-member users; TPR@1/N is the TPR at FPR "
        f"1/{n} = {1 / n:.3f}, the lowest FPR {n} non-members can measure (1% is not "
        "measurable). RF = random forest, cal = calibrated likelihood-ratio test. "
        + CI95_SCOPE
        + "."
    )
    b = doc.get("best_tradeoff") or {}
    if b:
        lines.append(
            f"Closest to chance on unseen audios: {b['setting']} (|AUC - 0.5| = "
            f"{b['unseen_auc_distance_to_chance']:.3f}, PER {b['per_increase']:+.3f})."
        )
    return "\n".join(lines)


def short_label(spec: str) -> str:
    """A plot label: the name and its first parameter's value (``dpsgd:noise_multiplier=0.5,...``
    -> ``dpsgd 0.5``)."""
    name, _, rest = spec.partition(":")
    first = rest.split(",")[0].partition("=")[2]
    return f"{name} {first}" if first else name


def plot_defenses(doc: dict, path: Path) -> Path:
    """PER on unseen speakers against the audit's AUC and TPR at FPR 1/N (random forest)."""
    from auditor.plots import plot_privacy_utility

    points = []
    for s in doc["settings"]:
        series = {}
        for cond in CONDITIONS:
            m = s["attacks"][f"{cond}/random_forest"]
            if m:
                series[f"{cond} audios"] = {"auc": m.get("auc"), "tpr_low": tpr_at_lowest_fpr(m)}
        points.append(
            {
                "name": short_label(s["setting"]),
                "utility": s["per_unseen_speakers"],
                "series": series,
            }
        )
    n = doc["n_nonmembers"]
    return plot_privacy_utility(
        points,
        path,
        utility_label="PER on unseen speakers (lower is better)",
        attacks=[
            ("auc", "user-level audit AUC (random forest)"),
            ("tpr_low", f"TPR at FPR 1/{n} (lowest measurable; random forest)"),
        ],
        title="Voice path: privacy-utility of defenses\n(label: defense and its strength: "
        "l2 weight decay, dropout p, advreg lambda, dpsgd sigma, topk k, rounding decimals)",
    )
