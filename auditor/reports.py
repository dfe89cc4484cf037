"""Audit reports: a summary HTML page and one JSON + HTML page per user.

Reads what :func:`auditor.voice.audit.audit_users` wrote into a run directory (``metrics.json``,
``users.json``, ``calibration.json``) and writes ``report/summary.html`` (the reference
paper's table, users / accuracy / precision / recall, plus AUC and TPR at 1% FPR with 95%
intervals bootstrapped over the evaluated users, and linear and log-log ROC curves) and
``report/users/<user>.{json,html,png}`` (verdict, scores, p-value, the audios used with their
per-audio evidence, and where the user's score falls among the shadow models' IN and OUT
users). Templates live in ``auditor/templates``; plots are matplotlib PNGs.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from string import Template

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from auditor.plots import save_roc_plots  # noqa: E402
from auditor.voice.defense_summary import read_defense_summary  # noqa: E402

TEMPLATES = Path(__file__).with_name("templates")
REPORT_DIR_NAME = "report"
#: How every 95% interval is labelled: a bootstrap over the evaluated users, not training runs.
CI_LABEL = "95% CI over users"
EVIDENCE_COLUMNS = (
    "per",
    "subs",
    "ins",
    "dels",
    "log_like_per_frame",
    "mean_confidence",
    "min_confidence",
    "frames",
)


def fmt(value, digits: int = 3) -> str:
    """A table cell: ``n/a`` for None, ints as they are, other numbers to ``digits`` decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


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


def _html_table(rows: list[dict], vary: str, label: str) -> str:
    head = (
        f"<tr><th>{label}</th><th>Accuracy</th><th>Precision</th><th>Recall</th>"
        f"<th>F1</th><th>AUC [{CI_LABEL}]</th><th>TPR@1%FPR [{CI_LABEL}]</th>"
        f"<th>TPR at FPR 1/N [{CI_LABEL}]</th></tr>"
    )
    body = "".join(
        f"<tr><td>{r[vary]}</td><td>{_with_ci(r, 'accuracy')}</td>"
        f"<td>{_with_ci(r, 'precision')}</td>"
        f"<td>{_with_ci(r, 'recall')}</td><td>{fmt(r['f1'])}</td><td>{_with_ci(r, 'auc')}</td>"
        f"<td>{html.escape(_tpr1(r))}</td><td>{html.escape(_tpr_lowest(r))}</td></tr>"
        for r in rows
    )
    return f'<table class="paper">{head}{body}</table>'


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


def _user_page(user: dict, img: str) -> str:
    sections = []
    for cond, c in user["conditions"].items():
        rows = "".join(
            f"<tr><td class='text'>{html.escape(a['utt_id'])}</td>"
            f"<td class='text'>{html.escape(a['text'])}</td>"
            + "".join(f"<td>{fmt(a[col])}</td>" for col in EVIDENCE_COLUMNS)
            + "</tr>"
            for a in c["audios"]
        )
        head = "".join(f"<th>{col}</th>" for col in EVIDENCE_COLUMNS)
        sections.append(
            f"<h2>{html.escape(cond)} audios</h2><p>Verdict: <b>{c['verdict']}</b>; forest score "
            f"{fmt(c['forest_score'])}; calibrated test: log likelihood ratio "
            f"{fmt(c['log_likelihood_ratio'])}, p-value {c['p_value']:.3g}; "
            f"{len(c['audios'])} audios used.</p>"
            f"<table><tr><th>audio</th><th>text</th>{head}</tr>{rows}</table>"
        )
    if not sections:
        sections.append("<p>Not audited: too few answered audios (see metrics.json).</p>")
    sections.append(f'<img src="{img}" alt="user score among shadow members and non-members">')
    return Template((TEMPLATES / "user.html").read_text()).substitute(
        speaker=html.escape(user["speaker"]),
        truth="member" if user["member"] else "non-member",
        sections="\n".join(sections),
    )


def _defense_section(run_dir: Path, out: Path) -> str:
    """The privacy-utility plot and table of the run's defenses document
    (:mod:`auditor.voice.defense_summary`), or ``""`` when the run has none."""
    doc = read_defense_summary(run_dir)
    if doc is None:
        return ""
    img = ""
    if doc.get("plot") and (run_dir / doc["plot"]).is_file():
        shutil.copyfile(run_dir / doc["plot"], out / Path(doc["plot"]).name)
        name = html.escape(Path(doc["plot"]).name)
        img = f'<img class="wide" src="{name}" alt="privacy-utility plot">'
    n = doc.get("n_nonmembers")
    head = (
        "<tr><th>setting</th><th>stage</th><th>PER on unseen speakers</th><th>PER change</th>"
        + "".join(
            f"<th>{c} AUC (random forest) [{CI_LABEL}]</th><th>{c} AUC (calibrated)</th>"
            f"<th>{c} TPR at FPR 1/{n}</th>"
            for c in ("seen", "unseen")
        )
        + "<th>training time ratio</th>"
        "<th>epsilon at delta (per spliced window, not per speaker)</th></tr>"
    )

    def cells(attacks: dict, cond: str) -> str:
        rf = attacks.get(f"{cond}/random_forest") or {}
        cal = attacks.get(f"{cond}/calibrated_test") or {}
        tpr = html.escape(_tpr1(rf, rf["lowest_fpr"])) if rf.get("lowest_fpr") else "n/a"
        return (
            f"<td>{_with_ci(rf, 'auc') if rf else 'n/a'}</td><td>{fmt(cal.get('auc'))}</td>"
            f"<td>{tpr}</td>"
        )

    body = "".join(
        f"<tr><td>{html.escape(st['setting'])}</td><td>{st['stage']}</td>"
        f"<td>{fmt(st['per_unseen_speakers'])}</td><td>{st['per_increase']:+.3f}</td>"
        + cells(st["attacks"], "seen")
        + cells(st["attacks"], "unseen")
        + f"<td>{fmt(st['train_time_ratio'], 2)}</td><td>{_epsilon(st)}</td></tr>"
        for st in doc["settings"]
    )
    best = doc.get("best_tradeoff") or {}
    verdict = (
        (
            f"<p>Closest to chance on unseen audios: <b>{html.escape(best['setting'])}</b> "
            f"(|AUC - 0.5| = {best['unseen_auc_distance_to_chance']:.3f}, PER change "
            f"{best['per_increase']:+.3f}).</p>"
        )
        if best
        else ""
    )
    notes = "".join(f"<p class='note'>{html.escape(x)}</p>" for x in doc.get("notes", []))
    return f'<h2>Defenses</h2>{verdict}<table class="defenses">{head}{body}</table>{notes}{img}'


def write_reports(run_dir: str | Path) -> Path:
    """Render the summary and per-user reports of an audited run directory; returns the summary.

    When the run directory holds a defenses document (:mod:`auditor.voice.defense_summary`), the
    summary also shows the defenses' table and privacy-utility plot.
    Raises ``FileNotFoundError`` naming the missing file when the run has no audit results.
    """
    run_dir = Path(run_dir)
    docs = {}
    for name in ("metrics.json", "users.json", "calibration.json"):
        path = run_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run an audit into {run_dir} first")
        docs[name] = json.loads(path.read_text())
    metrics, users, calibration = docs["metrics.json"], docs["users.json"], docs["calibration.json"]
    out = run_dir / REPORT_DIR_NAME
    (out / "users").mkdir(parents=True, exist_ok=True)

    sections = []
    for cond in metrics["conditions"]:
        curves = {
            a: metrics["attacks"][f"{cond}/{a}"]
            for a in ("random_forest", "calibrated_test")
            if f"{cond}/{a}" in metrics["attacks"]
        }
        if not curves:
            continue
        plots = save_roc_plots(curves, out, stem=f"roc_{cond}", title=f"{cond} audios")
        tables = "".join(
            f"<h3>{attack}</h3>"
            + _html_table(paper_table_rows(metrics, cond, attack, "users"), "users", "Users")
            + _html_table(
                paper_table_rows(metrics, cond, attack, "audios_per_user"),
                "audios_per_user",
                "Audios per user",
            )
            for attack in curves
        )
        notes = "".join(
            f"<p class='note'>{html.escape(m['tpr_at_fpr_note'])}</p>"
            for m in list(curves.values())[:1]
            if m.get("tpr_at_fpr_note")
        )
        if metrics.get("ci95_scope"):
            notes += f"<p class='note'>{html.escape(metrics['ci95_scope'])}.</p>"
        sections.append(
            f"<h2>{html.escape(cond)} audios</h2>{tables}{notes}"
            + "".join(
                f'<img src="{p.name}" alt="ROC {scale} {cond}">' for scale, p in plots.items()
            )
        )
    conds = metrics["conditions"]
    user_rows = []
    for user in users:
        _user_plot(user, calibration, out / "users" / f"{user['speaker']}.png")
        (out / "users" / f"{user['speaker']}.json").write_text(json.dumps(user, indent=1))
        (out / "users" / f"{user['speaker']}.html").write_text(
            _user_page(user, f"{user['speaker']}.png")
        )
        cells = "".join(
            f"<td>{user['conditions'][c]['verdict']} "
            f"(p={user['conditions'][c]['p_value']:.2g})</td>"
            if c in user["conditions"]
            else "<td>not audited</td>"
            for c in conds
        )
        user_rows.append(
            f"<tr><td><a href='users/{html.escape(user['speaker'])}.html'>"
            f"{html.escape(user['speaker'])}</a></td>"
            f"<td>{'member' if user['member'] else 'non-member'}</td>{cells}</tr>"
        )
    problems = ""
    if metrics["skipped_users"] or metrics["failures"] or metrics["queries"]["stopped"]:
        items = [
            f"{p['condition']}: {p['speaker']}: {p['reason']}" for p in metrics["skipped_users"]
        ]
        items += [f"{f['model']}: {f['utt_id']}: {f['reason']}" for f in metrics["failures"]]
        if metrics["queries"]["stopped"]:
            items.append(f"querying stopped: {metrics['queries']['stopped']}")
        problems = (
            "<h2>Problems</h2><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
        )
    q = metrics["queries"]
    summary = Template((TEMPLATES / "summary.html").read_text()).substitute(
        device_id=html.escape(metrics["device_id"]),
        n_members=metrics["n_members"],
        n_nonmembers=metrics["n_nonmembers"],
        audios_per_user=metrics["audios_per_user"],
        n_shadows=len(metrics["shadows"]),
        queries=f"{q['sent']} sent, {q['reused']} reused from the record, {q['failed']} failed",
        sections="\n".join(sections),
        user_heads="".join(f"<th>{html.escape(c)} verdict</th>" for c in conds),
        user_rows="\n".join(user_rows),
        problems=problems,
        defenses=_defense_section(run_dir, out),
    )
    path = out / "summary.html"
    path.write_text(summary)
    return path


def _epsilon(setting: dict) -> str:
    """``eps at delta`` of a DP-SGD setting, empty for the others."""
    if setting.get("epsilon") is None:
        return ""
    return f"{setting['epsilon']:.3g} at {setting['delta']:.2g}"
