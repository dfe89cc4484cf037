"""Smoke run of the Table 3 recipe (``--quick``): synthetic corpus, real device over MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "timit_user_audit" / "run.py"


def test_quick_run_writes_config_splits_metrics_reports(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--quick", "--out", str(out), "--seed", "3",
         "--shadows.executor=serial"],
        capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Users  Accuracy Precision  Recall" in proc.stdout
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seed"] == 3 and config["shadows"]["executor"] == "serial"
    assert config["recognizer"]["network"]["hidden"] == [64]
    splits = json.loads((out / "splits.json").read_text())["splits"]
    assert len(splits["target_members"]) == 3 and len(splits["shadow_pool"]) == 6
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["attacks"]) == {f"{c}/{a}" for c in ("seen", "unseen")
                                       for a in ("random_forest", "calibrated_test")}
    assert {r["users"] for r in metrics["rows"]} == {4, 6}
    assert metrics["queries"]["answered"] == metrics["queries"]["sent"] > 0
    assert (out / "report" / "summary.html").is_file() and (out / "table.md").is_file()
    assert "online" in (out / "device.log").read_text()


def test_unknown_override_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--quick", "--out", str(tmp_path), "--audit.nope=1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0 and "unknown key 'audit.nope'" in proc.stderr
