"""Smoke run of the Table 1 recipe (``--quick``) on a tiny generated dataset."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import run_recipe

pytestmark = pytest.mark.slow  # runs the recipe in a subprocess

RECIPE = "cifar10_shadow"
ATTACKS = ["shokri", "mlleaks", "threshold", "lira"]


def test_quick_run_writes_config_metrics_table_and_plots(tiny_cifar_zip, tmp_path):
    data = tiny_cifar_zip
    out = tmp_path / "run"
    proc = run_recipe(
        RECIPE,
        "--quick",
        "--out",
        str(out),
        f"--data={data}",
        f"--cache_dir={tmp_path / 'cache'}",
        "--executor.kind=serial",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Table 1 (Shokri shadow-model attack; attack features: class_order" in proc.stdout

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train_sizes"] == [100, 200] and config["cnn"]["epochs"] == 2
    assert config["data"] == str(data) and config["seed"] == 0

    doc = json.loads((out / "metrics.json").read_text())
    rows = doc["rows"]
    assert [(r["train_size"], r["attack"]) for r in rows] == [
        (size, attack) for size in (100, 200) for attack in ATTACKS
    ]
    for r in rows:
        n = r["train_size"]
        assert set(r["tpr_at_fpr"]) == {"0.01", "0.001"}
        assert r["tpr_at_fpr"]["0.001"] is None  # 1/100 non-members cannot measure 0.1% FPR
        assert r["n_members"] == r["n_nonmembers"] == n
        assert r["params"] == config["attacks"][r["attack"]]
        # the target answers each of the 2n evaluation records twice (scores, decisions); the
        # threshold attack also asks about the attacker's 2n own records to place its threshold
        assert r["n_queries"] == 4 * n + (2 * n if r["attack"] == "threshold" else 0)
    for size in (100, 200):  # the quick targets fit their members a little: LiRA sees it
        lira = next(r for r in rows if (r["train_size"], r["attack"]) == (size, "lira"))
        assert lira["target"]["train_test_gap"] > 0 and lira["auc"] > 0.5
        assert r["target"]["train_test_gap"] == pytest.approx(
            r["target"]["train_acc"] - r["target"]["test_acc"]
        )
        assert "roc" not in r
    assert doc["reference"]["2500"] == {"precision": 0.77, "recall": 1.0, "accuracy": 0.84}

    split = json.loads((out / "targets" / "n200" / "split.json").read_text())["splits"]
    assert {k: len(v) for k, v in split.items()} == {
        "target_members": 200,
        "target_nonmembers": 200,
        "shadow_pool": 400,
    }
    for size in (100, 200):
        for scale in ("linear", "log"):
            assert (out / f"roc_n{size}_{scale}.png").stat().st_size > 0
    assert "| 200 | lira |" in (out / "table.md").read_text()


def test_unknown_override_is_refused_with_a_hint(tmp_path):
    proc = run_recipe(RECIPE, "--quick", "--out", str(tmp_path / "run"), "--cnn.epoch=3")
    assert proc.returncode == 1
    assert "unknown key 'cnn.epoch'" in proc.stderr and "cnn.epochs" in proc.stderr
