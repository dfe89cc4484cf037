"""Smoke run of the voice defenses recipe (``--quick``): synthetic corpus, real device over MQTT."""

from __future__ import annotations

import json

import pytest
import yaml

from auditor.metrics import METRIC_KEYS

from .conftest import run_recipe
from .test_timit_user_audit import assert_attacks_match_users

pytestmark = pytest.mark.slow  # runs the recipe in a subprocess


def test_quick_run_writes_table_plot_metrics_and_report(tmp_path):
    out = tmp_path / "run"
    proc = run_recipe("voice_defenses", "--quick", "--out", str(out), "--seed", "2", timeout=300)
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
        assert {"setting", "condition", "attack", *METRIC_KEYS} <= set(row)
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
    args = ["--quick", "--out", str(tmp_path / "r"), "--defenses=[none, magic:x=1]"]
    proc = run_recipe("voice_defenses", *args, timeout=60)
    assert proc.returncode != 0 and "unknown defense 'magic'" in proc.stderr
    assert not (tmp_path / "r").exists()
