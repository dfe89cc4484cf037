"""Tests for auditor.reports: files per user, and the summary rendered in headless Chromium."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.reports import format_table, write_reports

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
