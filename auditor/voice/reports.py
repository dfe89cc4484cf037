"""Audit reports: a summary HTML page and one JSON + HTML page per user.

Reads what :func:`auditor.voice.audit.audit_users` wrote into a run directory (``metrics.json``,
``users.json``, ``calibration.json``) and writes ``report/summary.html`` (the reference
paper's table, users / accuracy / precision / recall, plus AUC and TPR at 1% FPR with 95%
intervals bootstrapped over the evaluated users, and linear and log-log ROC curves) and
``report/users/<user>.{json,html,png}`` (verdict, scores, p-value, the audios used with their
per-audio evidence, and where the user's score falls among the shadow models' IN and OUT
users). The pages are Jinja2 templates in ``auditor/voice/templates`` (:data:`ENV`: every value
escaped, a variable a template lacks an error); this module only prepares their data, numbers
formatted as strings. Plots are matplotlib PNGs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
from jinja2 import Environment, PackageLoader, StrictUndefined

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from auditor.metrics import CI_LABEL, fmt  # noqa: E402
from auditor.plots import save_roc_plots  # noqa: E402
from auditor.voice.defense_summary import read_defense_summary  # noqa: E402
from auditor.voice.features import UTTERANCE_FEATURES  # noqa: E402
from auditor.voice.sweep import ATTACKS  # noqa: E402

REPORT_DIR_NAME = "report"
REPORT_USERS_DIR = "users"
#: How every 95% interval is labelled: a bootstrap over the evaluated users, not training runs.
#: The per-audio evidence columns of a user's page: the utterance features but their ratio
#: ``frames_per_ref_phone``.
EVIDENCE_COLUMNS = tuple(name for name in UTTERANCE_FEATURES if name != "frames_per_ref_phone")
#: The conditions whose attacks the defenses table shows, in column order.
DEFENSE_CONDITIONS = ("seen", "unseen")

#: The report templates: every value autoescaped, a variable a template uses but is not given
#: raises :class:`jinja2.UndefinedError`.
ENV = Environment(
    loader=PackageLoader("auditor.voice", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.globals["ci_label"] = CI_LABEL


def render(template: str, **context) -> str:
    """The page ``auditor/voice/templates/<template>`` with ``context`` (plain strings and numbers,
    lists and dicts of them); raises ``jinja2.UndefinedError`` naming a missing variable."""
    return ENV.get_template(template).render(**context)


def _with_ci(m: dict, key: str) -> str:
    ci = (m.get("ci95") or {}).get(key)
    return fmt(m.get(key)) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def _tpr1(m: dict, key: str = "0.01") -> str:
    value = m["tpr_at_fpr"].get(key)
    if value is None:
        return "n/a (too few non-members)"
    ci = ((m.get("ci95") or {}).get("tpr_at_fpr") or {}).get(key)
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def _tpr_lowest(m: dict) -> str:
    """TPR at the lowest FPR the non-members can measure (1/N), named with that FPR."""
    key = m.get("lowest_fpr")
    return "n/a" if key is None else f"{_tpr1(m, key)} at FPR {float(key):.3g}"


def paper_table_rows(metrics: dict, condition: str, attack: str, vary: str) -> list[dict]:
    """Rows of one condition and attack, varying ``users`` (at the main K) or ``audios_per_user``
    (at all users); sorted by the varied setting."""
    k = metrics["audios_per_user"]
    all_users = max(
        (
            r["users"]
            for r in metrics["rows"]
            if r["condition"] == condition and r["audios_per_user"] == k
        ),
        default=0,
    )
    rows = [r for r in metrics["rows"] if r["condition"] == condition and r["attack"] == attack]
    if vary == "users":
        rows = [r for r in rows if r["audios_per_user"] == k]
    else:
        rows = [r for r in rows if r["users"] == all_users or r["audios_per_user"] != k]
        best = {}
        for r in rows:  # per K the largest user set
            if r["users"] >= best.get(r["audios_per_user"], {"users": -1})["users"]:
                best[r["audios_per_user"]] = r
        rows = list(best.values())
    return sorted(rows, key=lambda r: r[vary])


def format_table(metrics: dict, condition: str, attack: str = "random_forest") -> str:
    """The reference paper's table (users, accuracy, precision, recall) plus AUC, TPR@1%FPR."""
    lines = [
        f"{condition} audios, {attack}, {metrics['audios_per_user']} audios per user",
        f"{'Users':>6} {'Accuracy':>9} {'Precision':>9} {'Recall':>7} {'AUC':>6}  "
        f"TPR@1%FPR | TPR at FPR 1/N  [{CI_LABEL}]",
    ]
    for r in paper_table_rows(metrics, condition, attack, "users"):
        lines.append(
            f"{r['users']:>6} {r['accuracy']:>9.2f} {r['precision']:>9.2f} "
            f"{r['recall']:>7.2f} {r['auc']:>6.3f}  {_tpr1(r)} | {_tpr_lowest(r)}"
        )
    return "\n".join(lines)


def _paper_rows(metrics: dict, condition: str, attack: str, vary: str) -> list[list]:
    """The cells of :func:`paper_table_rows` for the summary: the varied setting, accuracy,
    precision, recall, F1, AUC, TPR at 1% FPR and TPR at FPR 1/N."""
    return [
        [
            r[vary],
            _with_ci(r, "accuracy"),
            _with_ci(r, "precision"),
            _with_ci(r, "recall"),
            fmt(r["f1"]),
            _with_ci(r, "auc"),
            _tpr1(r),
            _tpr_lowest(r),
        ]
        for r in paper_table_rows(metrics, condition, attack, vary)
    ]


def _condition_section(metrics: dict, cond: str, out: Path) -> dict | None:
    """The summary's section of one condition (its ROC plots written into ``out``), or
    ``None`` when no attack ran under it."""
    curves = {
        a: metrics["attacks"][f"{cond}/{a}"] for a in ATTACKS if f"{cond}/{a}" in metrics["attacks"]
    }
    if not curves:
        return None
    plots = save_roc_plots(curves, out, stem=f"roc_{cond}", title=f"{cond} audios")
    return {
        "condition": cond,
        "attacks": [
            {
                "name": attack,
                "by_users": _paper_rows(metrics, cond, attack, "users"),
                "by_audios_per_user": _paper_rows(metrics, cond, attack, "audios_per_user"),
            }
            for attack in curves
        ],
        "tpr_note": next(iter(curves.values())).get("tpr_at_fpr_note"),
        "plots": [{"scale": scale, "file": p.name} for scale, p in plots.items()],
    }


def _user_plot(user: dict, calibration: dict, path: Path) -> None:
    conds = [c for c in user["conditions"] if c in calibration]
    fig, axes = plt.subplots(
        1, max(1, len(conds)), figsize=(5 * max(1, len(conds)), 3.2), squeeze=False
    )
    for ax, cond in zip(axes[0], conds, strict=False):
        cal, mine = calibration[cond], user["conditions"][cond]
        bins = 15
        ax.hist(cal["out_scores"], bins=bins, alpha=0.6, label="shadow non-members (OUT)")
        ax.hist(cal["in_scores"], bins=bins, alpha=0.6, label="shadow members (IN)")
        ax.axvline(mine["calibrated_score"], color="k", linewidth=2, label="this user")
        ax.set_title(f"{cond} audios: {cal['score_name']}", fontsize=9)
        ax.set_xlabel("user score (higher = more member-like)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _truth(user: dict) -> str:
    return "member" if user["member"] else "non-member"


def _user_page(user: dict, plot: str) -> dict:
    """The data of a user's page (``user.html``); ``plot`` is the file name of its plot."""
    return {
        "speaker": user["speaker"],
        "truth": _truth(user),
        "plot": plot,
        "evidence_columns": EVIDENCE_COLUMNS,
        "conditions": [
            {
                "name": cond,
                "verdict": c["verdict"],
                "forest_score": fmt(c["forest_score"]),
                "log_likelihood_ratio": fmt(c["log_likelihood_ratio"]),
                "p_value": f"{c['p_value']:.3g}",
                "reference": _reference_verdict(c),
                "audios": [
                    [a["utt_id"], a["text"], *(fmt(a[col]) for col in EVIDENCE_COLUMNS)]
                    for a in c["audios"]
                ],
            }
            for cond, c in user["conditions"].items()
        ],
    }


def _reference_verdict(condition: dict) -> dict | None:
    """The reference-calibrated verdict of a user's condition, or ``None`` without one."""
    if "reference_score" not in condition:
        return None
    return {
        "verdict": condition["reference_verdict"],
        "score": fmt(condition["reference_score"]),
        "p_value": f"{condition['reference_p_value']:.3g}",
    }


def _write_user_files(user: dict, calibration: dict, users_dir: Path) -> None:
    """``<speaker>.{png,json,html}`` of one user; a speaker with a path separator in its name
    raises ``ValueError`` (it would name a file outside ``users_dir``)."""
    speaker = user["speaker"]
    if "/" in speaker or "\\" in speaker:
        raise ValueError(f"speaker {speaker!r}: a path separator cannot be in a report file name")
    _user_plot(user, calibration, users_dir / f"{speaker}.png")
    (users_dir / f"{speaker}.json").write_text(json.dumps(user, indent=1))
    page = render("user.html", **_user_page(user, f"{speaker}.png"))
    (users_dir / f"{speaker}.html").write_text(page)


def _user_row(user: dict, conds: list[str]) -> dict:
    """A user's row of the summary: link, truth and the verdict under each condition."""
    verdicts = [
        f"{user['conditions'][c]['verdict']} (p={user['conditions'][c]['p_value']:.2g})"
        if c in user["conditions"]
        else "not audited"
        for c in conds
    ]
    page = f"{REPORT_USERS_DIR}/{user['speaker']}.html"
    return {"speaker": user["speaker"], "page": page, "truth": _truth(user), "verdicts": verdicts}


def _problems(metrics: dict) -> list[str]:
    """Skipped users, failed queries and why querying stopped, one line each."""
    items = [f"{p['condition']}: {p['speaker']}: {p['reason']}" for p in metrics["skipped_users"]]
    items += [f"{f['model']}: {f['utt_id']}: {f['reason']}" for f in metrics["failures"]]
    if metrics["queries"]["stopped"]:
        items.append(f"querying stopped: {metrics['queries']['stopped']}")
    return items


def _defense_cells(attacks: dict, cond: str) -> list[str]:
    """Forest AUC, calibrated AUC and TPR at FPR 1/N of a defense setting under ``cond``."""
    rf = attacks.get(f"{cond}/random_forest") or {}
    cal = attacks.get(f"{cond}/calibrated_test") or {}
    return [
        _with_ci(rf, "auc") if rf else "n/a",
        fmt(cal.get("auc")),
        _tpr1(rf, rf["lowest_fpr"]) if rf.get("lowest_fpr") else "n/a",
    ]


def _defense_row(setting: dict) -> list[str]:
    cells = [
        setting["setting"],
        setting["stage"],
        fmt(setting["per_unseen_speakers"]),
        f"{setting['per_increase']:+.3f}",
    ]
    for cond in DEFENSE_CONDITIONS:
        cells += _defense_cells(setting["attacks"], cond)
    return cells + [fmt(setting["train_time_ratio"], 2), _epsilon(setting)]


def _defenses(run_dir: Path, out: Path) -> dict | None:
    """The data of the summary's defenses section (``defenses.html``) from the run's defenses
    document (:mod:`auditor.voice.defense_summary`), its plot copied into ``out``; ``None``
    when the run has none."""
    doc = read_defense_summary(run_dir)
    if doc is None:
        return None
    plot = None
    if doc.get("plot") and (run_dir / doc["plot"]).is_file():
        plot = Path(doc["plot"]).name
        shutil.copyfile(run_dir / doc["plot"], out / plot)
    best = doc.get("best_tradeoff")
    if best:
        best = {
            "setting": best["setting"],
            "auc_distance": f"{best['unseen_auc_distance_to_chance']:.3f}",
            "per_increase": f"{best['per_increase']:+.3f}",
        }
    return {
        "n_nonmembers": doc.get("n_nonmembers"),
        "conditions": DEFENSE_CONDITIONS,
        "rows": [_defense_row(st) for st in doc["settings"]],
        "best": best or None,
        "notes": doc.get("notes", []),
        "plot": plot,
    }


def _read_run(run_dir: Path) -> tuple[dict, list, dict]:
    """``metrics.json``, ``users.json`` and ``calibration.json`` of an audited run."""
    docs = []
    for name in ("metrics.json", "users.json", "calibration.json"):
        path = run_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run an audit into {run_dir} first")
        docs.append(json.loads(path.read_text()))
    return tuple(docs)


def write_reports(run_dir: str | Path) -> Path:
    """Render the summary and per-user reports of an audited run directory; returns the summary.

    When the run directory holds a defenses document (:mod:`auditor.voice.defense_summary`), the
    summary also shows the defenses' table and privacy-utility plot.
    Raises ``FileNotFoundError`` naming the missing file when the run has no audit results.
    """
    run_dir = Path(run_dir)
    metrics, users, calibration = _read_run(run_dir)
    out = run_dir / REPORT_DIR_NAME
    (out / REPORT_USERS_DIR).mkdir(parents=True, exist_ok=True)
    sections = [_condition_section(metrics, cond, out) for cond in metrics["conditions"]]
    for user in users:
        _write_user_files(user, calibration, out / REPORT_USERS_DIR)
    q = metrics["queries"]
    page = render(
        "summary.html",
        device_id=metrics["device_id"],
        n_members=metrics["n_members"],
        n_nonmembers=metrics["n_nonmembers"],
        audios_per_user=metrics["audios_per_user"],
        n_shadows=len(metrics["shadows"]),
        queries=f"{q['sent']} sent, {q['reused']} reused from the record, {q['failed']} failed",
        sections=[s for s in sections if s is not None],
        ci95_scope=metrics.get("ci95_scope"),
        defenses=_defenses(run_dir, out),
        conditions=metrics["conditions"],
        users=[_user_row(user, metrics["conditions"]) for user in users],
        problems=_problems(metrics),
    )
    path = out / "summary.html"
    path.write_text(page)
    return path


def _epsilon(setting: dict) -> str:
    """``eps at delta`` of a DP-SGD setting, empty for the others."""
    if setting.get("epsilon") is None:
        return ""
    return f"{setting['epsilon']:.3g} at {setting['delta']:.2g}"
