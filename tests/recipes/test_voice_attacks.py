"""recipes/voice_attacks: the attacks side by side for each k, on its quick configuration."""

from __future__ import annotations

import json

import pytest

from .conftest import run_recipe

pytestmark = pytest.mark.slow  # trains recognizers and serves a device in subprocesses


def test_quick_run_compares_every_attack_for_each_k(tmp_path):
    out = tmp_path / "run"
    proc = run_recipe("voice_attacks", "--quick", "--out", str(out), "--seed", "1", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["references"] == metrics["done"] == [2, 4]
    settings = {
        (r["references"], r["condition"], r["attack"], r["audios_per_user"])
        for r in metrics["rows"]
    }
    two = {"random_forest", "calibrated_test"}
    assert settings == {
        (k, c, a, n)
        for k in (2, 4)
        for c in ("seen", "unseen")
        for a in (two if k == 2 else {*two, "reference_calibrated"})
        for n in (1, 2)
    }
    # k = 4 reuses k = 2's two references and trains two more: more CPU, never less
    cpu = {k: metrics["per_k"][str(k)]["reference_train_cpu_seconds"] for k in (2, 4)}
    assert 0 < cpu[2] < cpu[4]
    assert "skipped" in metrics["per_k"]["2"]["reference_calibrated"]
    choice = metrics["per_k"]["4"]["reference_calibrated"]["unseen"]
    assert 0.0 <= choice["realised_on_audited_users"]["fpr"] <= 1.0
    table = (out / "table.md").read_text()
    assert table.count("| reference_calibrated | 4 |") == 4  # 2 conditions x 2 values of K
    assert (out / "k4" / "report" / "summary.html").is_file()
    assert not (out / "k2" / "report").exists()  # reports only for the largest k
