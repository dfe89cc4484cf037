"""Tests for auditor.voice.reports: files per user, and the summary rendered in headless Chromium."""

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import unquote

import jinja2
import pytest

from auditor.voice.defense_summary import write_defense_summary
from auditor.voice.reports import ENV, format_table, render, write_reports

ROOT = Path(__file__).resolve().parents[3]
#: Markup and an ampersand, as a device id, audio id, text, defense setting, note, problem ...
HOSTILE = "<script>alert(1)</script> & co"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
#: ... and as a speaker, who names files (so no path separator).
HOSTILE_SPEAKER = "<img src=x onerror=alert(1)>&"
ESCAPED_SPEAKER = "&lt;img src=x onerror=alert(1)&gt;&amp;"

CHROMIUM_HINT = "chromium is not installed (Debian: apt-get install chromium; see the Makefile)"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(CHROMIUM_HINT, pytrace=False)


def test_reports_cover_every_user(tiny_audit_run, tiny_roles):
    summary = write_reports(tiny_audit_run)
    assert summary == tiny_audit_run / "report" / "summary.html"
    for spk in tiny_roles["member"] + tiny_roles["nonmember"]:
        for ext in ("json", "html", "png"):
            assert (tiny_audit_run / "report" / "users" / f"{spk}.{ext}").stat().st_size > 0
        page = (tiny_audit_run / "report" / "users" / f"{spk}.html").read_text()
        assert "Verdict" in page and "p-value" in page
    for cond in ("seen", "unseen"):
        for scale in ("linear", "log"):
            assert (tiny_audit_run / "report" / f"roc_{cond}_{scale}.png").is_file()
    metrics = json.loads((tiny_audit_run / "metrics.json").read_text())
    table = format_table(metrics, "unseen")
    assert "Users  Accuracy Precision  Recall" in table
    assert "n/a (too few non-members)" in table
    # the intervals are over the evaluated users, not over training runs, and say so
    assert "[95% CI over users]" in table
    page = summary.read_text()
    assert "AUC [95% CI over users]" in page
    assert "bootstrap over the evaluated users only" in page and "training runs" in page


def chromium_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after load, from headless Chromium with no network chatter."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True).stdout


@pytest.mark.slow  # headless Chromium (also: a broker fixture)
def test_summary_renders_table_and_images_in_chromium(tiny_audit_run, tmp_path):
    summary = write_reports(tiny_audit_run)
    # the DOM after load, with each image's natural width written into the page by a script
    page = summary.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { for (const im of document.images)"
            " { im.setAttribute('data-loaded', im.naturalWidth); } });</script></body>",
        )
    )
    (tmp_path / "users").symlink_to(summary.parent / "users")
    for png in summary.parent.glob("*.png"):
        (tmp_path / png.name).symlink_to(png)
    dom = chromium_dom(probe, tmp_path / "profile")
    assert '<table class="paper">' in dom and "Accuracy" in dom and "Precision" in dom
    loaded = [int(x.split('"')[1]) for x in dom.split("data-loaded=")[1:]]
    assert len(loaded) == 4 and all(w > 100 for w in loaded)  # 2 conditions x linear + log ROC


def _edit_run(tiny_audit_run, run: Path, speaker: str, value: str) -> None:
    """A copy of the audit run in ``run`` whose first user is ``speaker`` and whose device id,
    failures, defenses document and each user's first audios carry ``value``."""
    shutil.copytree(tiny_audit_run, run, ignore=shutil.ignore_patterns("report"))
    metrics = json.loads((run / "metrics.json").read_text())
    users = json.loads((run / "users.json").read_text())
    metrics["device_id"] = value
    metrics["failures"] = [{"model": "target", "utt_id": value, "reason": value}]
    users[0]["speaker"] = speaker
    for user in users:
        assert user["conditions"]
        for cond in user["conditions"].values():
            cond["audios"][0].update(utt_id=value, text=value)
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "users.json").write_text(json.dumps(users))
    setting = {
        "setting": value,
        "stage": "serve",
        "per_unseen_speakers": 0.4,
        "per_increase": 0.0,
        "attacks": {},
        "train_time_ratio": 1.0,
        "epsilon": None,
        "delta": None,
    }
    best = {"setting": value, "unseen_auc_distance_to_chance": 0.1, "per_increase": 0.0}
    write_defense_summary(
        run, settings=[setting], n_nonmembers=1, best_tradeoff=best, notes=[value], plot=None
    )


def test_hostile_values_are_escaped_on_every_page(tiny_audit_run, tmp_path):
    run = tmp_path / "run"
    _edit_run(tiny_audit_run, run, HOSTILE_SPEAKER, HOSTILE)
    summary = write_reports(run)
    pages = [summary, *(summary.parent / "users").glob("*.html")]
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        assert HOSTILE not in text and HOSTILE_SPEAKER not in text and "<script" not in text
        assert ESCAPED in text, page.name
    for page in (summary, summary.parent / "users" / f"{HOSTILE_SPEAKER}.html"):
        assert ESCAPED_SPEAKER in page.read_text()
    # summary: in the device id, problems, defense setting, best trade-off and note
    assert summary.read_text().count(ESCAPED) >= 6
    # the link to the user's page still leads to it
    (href,) = re.findall(r'href="(users/[^"]*%3C[^"]*)"', summary.read_text())
    assert (summary.parent / unquote(href)).is_file()


def test_speaker_with_a_path_separator_is_refused(tiny_audit_run, tmp_path):
    run = tmp_path / "run"
    _edit_run(tiny_audit_run, run, "../<script>alert(1)</script>", "device")
    with pytest.raises(ValueError, match="path separator"):
        write_reports(run)
    assert not list((run / "report").glob("<script*"))  # users/../<script>...


def test_a_missing_template_variable_fails_loudly():
    page = {"speaker": "S1", "plot": "S1.png", "evidence_columns": ["per"], "conditions": []}
    with pytest.raises(jinja2.UndefinedError, match="truth"):
        render("user.html", **page)
    condition = {"name": "seen", "verdict": "member", "audios": []}  # no scores
    with pytest.raises(jinja2.UndefinedError, match="forest_score"):
        render("user.html", **{**page, "truth": "member", "conditions": [condition]})
    assert "User <code>S1</code>" in render("user.html", **page, truth="member")


def test_every_template_compiles_and_ships_with_the_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["auditor"]
    package = ROOT / "auditor"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    templates = {p for p in (package / "voice" / "templates").rglob("*") if p.is_file()}
    assert {"summary.html", "user.html"} <= {p.name for p in templates}
    assert templates <= shipped
    for path in templates:
        ENV.get_template(path.relative_to(package / "voice" / "templates").as_posix())
