"""Smoke run of the voice defenses recipe (``--quick``): synthetic corpus, real device over MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from auditor.voice.defenses import closest_to_chance

from .test_timit_user_audit import assert_attacks_match_users

pytestmark = pytest.mark.slow  # runs the recipe in a subprocess

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "voice_defenses" / "run.py"


def _setting(name: str, per_increase: float, rf: float | None, cal: float | None) -> dict:
    """A voice defense setting with the given unseen-audio AUCs (seen ones at 0.9)."""
    aucs = {
        "seen/random_forest": 0.9,
        "seen/calibrated_test": 0.9,
        "unseen/random_forest": rf,
        "unseen/calibrated_test": cal,
    }
    return {
        "setting": name,
        "per_increase": per_increase,
        "attacks": {k: {} if v is None else {"auc": v} for k, v in aucs.items()},
    }


def test_closest_to_chance_takes_the_stronger_attack_then_the_smaller_per_cost():
    settings = [
        _setting("none", 0.0, 0.5, 0.5),  # the baseline never counts, even at chance
        _setting("l2", 0.01, 0.52, 0.80),  # the calibrated test still sees it: 0.30 away
        _setting("dropout", 0.20, 0.45, 0.53),  # 0.05 away (the forest), but costly
        _setting("dpsgd", 0.05, 0.55, 0.46),  # 0.05 away too, cheaper: the answer
        _setting("advreg", 0.0, None, None),  # unseen audios not audited: left out
    ]
    best = closest_to_chance(settings)
    assert best == {
        "setting": "dpsgd",
        "unseen_auc_distance_to_chance": pytest.approx(0.05),
        "per_increase": 0.05,
        "attack": "random_forest",
    }
    assert closest_to_chance(settings[:2])["attack"] == "calibrated_test"
    assert closest_to_chance([settings[0], settings[-1]]) == {}


def test_quick_run_writes_table_plot_metrics_and_report(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--quick", "--out", str(out), "--seed", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seed"] == 2 and config["recognizer"]["network"]["hidden"] == [32]
    assert (out / "splits.json").is_file() and (out / "privacy_utility.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    settings = {s["setting"]: s for s in metrics["settings"]}
    assert list(settings) == config["defenses"]
    none, dp, label = (settings[k] for k in ("none", "dpsgd:noise_multiplier=1.0", "label_only"))
    assert none["train_time_ratio"] == 1.0 and none["epsilon"] is None
    assert 0 < dp["epsilon"] < float("inf") and dp["train_time_ratio"] > 0
    # the hardened device serves the undefended model: same PER, no training
    assert label["model_id"] == none["model_id"] and label["per_increase"] == 0.0
    for row in metrics["rows"]:  # every audit row's metrics keys, the varied setting named
        assert {
            "setting",
            "condition",
            "attack",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "auc",
            "tpr_at_fpr",
            "n_members",
            "n_nonmembers",
        } <= set(row)
    assert {(r["condition"], r["attack"]) for r in metrics["rows"]} == {
        (c, a) for c in ("seen", "unseen") for a in ("random_forest", "calibrated_test")
    }
    splits = json.loads((out / "splits.json").read_text())["splits"]
    assert (metrics["n_members"], metrics["n_nonmembers"]) == (3, 3)
    for s in metrics["settings"]:
        users = json.loads((out / "settings" / s["slug"] / "users.json").read_text())
        assert_attacks_match_users(s["attacks"], users, splits)
    audited = json.loads((out / "settings" / "label_only" / "metrics.json").read_text())
    assert audited["device_output"] == "label_only"
    label_users = json.loads((out / "settings" / "label_only" / "users.json").read_text())
    assert all(
        a["log_like_per_frame"] == a["mean_confidence"] == 0.0
        for u in label_users
        for c in u["conditions"].values()
        for a in c["audios"]
    )
    table = (out / "table.md").read_text()
    assert "| label_only |" in table and "lowest FPR 3 non-members can measure" in table
    assert "95% CI over users" in table
    assert metrics["ci95_scope"] in table and metrics["ci95_scope"] + "." in metrics["notes"]
    summary = (out / "settings" / "none" / "report" / "summary.html").read_text()
    assert "<h2>Defenses</h2>" in summary and "privacy_utility.png" in summary
    assert "Closest to chance" in proc.stdout


def test_unknown_defense_is_refused_before_any_work(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPE),
            "--quick",
            "--out",
            str(tmp_path / "r"),
            "--defenses=[none, magic:x=1]",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "unknown defense 'magic'" in proc.stderr
    assert not (tmp_path / "r").exists()
