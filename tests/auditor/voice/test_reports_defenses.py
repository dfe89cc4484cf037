"""The audit summary with defense results: table and privacy-utility plot, rendered in Chromium."""

from __future__ import annotations

import shutil

import pytest

from auditor.plots import plot_privacy_utility
from auditor.voice.defense_summary import DEFENSES_JSON, read_defense_summary, write_defense_summary
from auditor.voice.reports import write_reports

from .test_reports import chromium_dom

pytestmark = pytest.mark.slow  # headless Chromium


def _attack(auc: float) -> dict:
    return {
        "auc": auc,
        "ci95": {"auc": [auc - 0.1, min(1.0, auc + 0.1)]},
        "tpr_at_fpr": {"0.01": None, "0.5": 0.5},
        "lowest_fpr": "0.5",
    }


def _setting(name: str, stage: str, per: float, auc: float, eps=None) -> dict:
    attacks = {
        f"{c}/{a}": _attack(auc)
        for c in ("seen", "unseen")
        for a in ("random_forest", "calibrated_test")
    }
    return {
        "setting": name,
        "stage": stage,
        "per_unseen_speakers": per,
        "per_increase": per - 0.4,
        "attacks": attacks,
        "train_time_ratio": 1.5,
        "epsilon": eps,
        "delta": None if eps is None else 4e-6,
    }


def test_summary_shows_defense_table_and_plot(tiny_audit_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_audit_run, run, ignore=shutil.ignore_patterns("report"))
    settings = [
        _setting("none", "train", 0.4, 0.9),
        _setting("dpsgd:noise_multiplier=1", "train", 0.55, 0.6, eps=3.2),
        _setting("label_only", "serve", 0.4, 0.7),
    ]
    points = [
        {
            "name": s["setting"],
            "utility": s["per_unseen_speakers"],
            "series": {"unseen audios": {"auc": 0.6, "tpr_low": 0.5}},
        }
        for s in settings
    ]
    plot_privacy_utility(
        points, run / "pu.png", utility_label="PER", attacks=[("auc", "AUC"), ("tpr_low", "TPR")]
    )
    best = {
        "setting": "dpsgd:noise_multiplier=1",
        "per_increase": 0.15,
        "unseen_auc_distance_to_chance": 0.1,
    }
    path = write_defense_summary(
        run,
        settings=settings,
        n_nonmembers=2,
        best_tradeoff=best,
        notes=["per frame"],
        plot="pu.png",
    )
    assert path == run / DEFENSES_JSON
    assert read_defense_summary(run)["best_tradeoff"] == best
    summary = write_reports(run)
    page = summary.read_text()
    assert "<h2>Defenses</h2>" in page and page.count("<tr><td>") >= 3
    assert "3.2 at 4e-06" in page and "per spliced window" in page
    assert "Closest to chance on unseen audios: <b>dpsgd" in page
    probe = summary.parent / "probe.html"
    probe.write_text(
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { for (const im of document.images)"
            " { im.setAttribute('data-loaded', im.naturalWidth); } });</script></body>",
        )
    )
    dom = chromium_dom(probe, tmp_path / "profile")
    assert '<table class="defenses">' in dom
    loaded = [int(x.split('"')[1]) for x in dom.split("data-loaded=")[1:]]
    assert len(loaded) == 5 and all(w > 100 for w in loaded)  # 4 ROC plots + privacy-utility


def test_summary_without_defense_results_has_no_defense_section(tiny_audit_run):
    assert read_defense_summary(tiny_audit_run) is None
    assert "<h2>Defenses</h2>" not in write_reports(tiny_audit_run).read_text()
