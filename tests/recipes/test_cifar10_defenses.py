"""Smoke run of the defenses recipe (``--quick``) on a tiny generated dataset."""

from __future__ import annotations

import json

import pytest
import yaml

from auditor.cifar.defense_grid import check_grid_config
from auditor.config import load_config

from .conftest import RECIPES, run_recipe

pytestmark = pytest.mark.slow  # runs the recipe in a subprocess

RECIPE = "cifar10_defenses"
ATTACKS = ["shokri", "loss", "threshold", "loss_mirror"]  # the config's: one shadow, no LiRA
MAX_AUC = "max AUC over attacks (upper bound: picked with the evaluation labels)"


def test_quick_run_covers_every_defense_and_writes_tables_metrics_plot(
    tiny_cifar_zip, defense_names, tmp_path
):
    data = tiny_cifar_zip
    out = tmp_path / "run"
    proc = run_recipe(
        RECIPE, "--quick", "--out", str(out), f"--data={data}", f"--cache_dir={tmp_path / 'cache'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "Table 2 (Shokri attack on L2-regularized CNNs, l2:weight_decay=0.01; Shokri's "
        "attack features: class_order log-probabilities)" in proc.stdout
    )
    assert "L2 sweep" in proc.stdout
    assert (
        "Goal: AUC <= 0.55 at <= 3 points test-accuracy cost, checked on the max AUC over "
        "the attacks (an upper bound picked with the evaluation labels" in proc.stdout
    )

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train_size"] == 150 and config["cnn"]["epochs"] == 1
    assert config["attack"]["attacks"] == ATTACKS
    doc = json.loads((out / "metrics.json").read_text())
    rows = doc["rows"]
    settings = list(dict.fromkeys(r["setting"] for r in rows if r["train_size"] == 150))
    assert settings == config["defenses"]
    assert {r["defense"] for r in rows} == {*defense_names, "augment+label_only"}
    assert sorted({r["train_size"] for r in rows}) == [150, 200]  # Table 2's larger size
    by_setting: dict = {}
    for r in rows:
        by_setting.setdefault((r["train_size"], r["setting"]), {})[r["attack"]] = r
        assert set(r["tpr_at_fpr"]) == {"0.01", "0.001"} and "roc" not in r
        assert r["n_members"] == r["n_nonmembers"] == 100  # eval.n_eval
    for key, attacks in by_setting.items():
        assert list(attacks) == ATTACKS, key  # every attack asked for, no LiRA, in order
        top = attacks[ATTACKS[0]]["max_auc_attack"]
        assert all(r["auc"] <= attacks[top]["auc"] for r in attacks.values()), key
    # top-1 and label-only serve the same one-hot answers of the same model: same AUCs
    assert [r["auc"] for r in by_setting[150, "topk:k=1"].values()] == [
        r["auc"] for r in by_setting[150, "label_only"].values()
    ]
    table = (out / "table.md").read_text()
    header = " | ".join(f"{a} AUC" for a in ATTACKS) + f" | {MAX_AUC} |"
    assert table.count(header) == 3  # Table 2, the L2 sweep, every defense: each attack's AUC
    assert "lira" not in table
    for spec in config["defenses"]:  # one row per setting, an AUC per attack then the max
        row = next(line for line in table.splitlines() if line.startswith(f"| {spec} |"))
        assert row.count("|") == 4 + len(ATTACKS) + 1 + 4, row
    dp = [r for r in rows if r["defense"] == "dpsgd"]
    assert dp and all(r["target"]["epsilon"] > 0 and r["target"]["delta"] == 1e-5 for r in dp)
    serving = [r for r in rows if r["stage"] == "serve"]
    assert serving and all(r["target"]["train_seconds"] == 0.0 for r in serving)  # reused model
    label_only = [r for r in rows if r["defense"] == "label_only" and r["attack"] == "threshold"]
    assert label_only[0]["auc"] == 0.5
    assert isinstance(doc["target_met"], list) and doc["machine"]["opacus"]
    assert (out / "privacy_utility.png").stat().st_size > 0
    assert "| label_only |" in (out / "table.md").read_text()
    assert not (out / "targets" / "n150_topk_k-1").exists()  # serving settings train nothing
    assert (out / "targets" / "n150_augment").is_dir()
    assert not (out / "targets" / "n150_augment_label_only").exists()  # hardens augment's model
    combo = [r for r in rows if r["setting"] == "augment+label_only"]
    augment = [r for r in rows if r["setting"] == "augment"]
    assert combo[0]["stage"] == "train+serve"
    assert combo[0]["target"]["train_seconds"] == augment[0]["target"]["train_seconds"] > 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("--defenses=[none, mixup]", "unknown defense 'mixup'"),
        ("--defenses=[none, 'topk:depth=2']", "no parameter"),
        ("--defenses=[l2, none]", "must be none"),
        ("--table2.defense=l3", "unknown defense 'l3'"),
        ("--attack.attacks=[shokri, lira]", r"\['lira'\] need >= 2 shadow models .* got 1"),
        ("--attack.attacks=[shokri, lira_mirror]", "train more shadows or leave LiRA out"),
        ("--attack.attacks=[shokri, gap]", "attacks must be distinct names"),
    ],
)
def test_bad_settings_are_refused_before_training(override, message):
    config = load_config(RECIPES / RECIPE / "config.yaml", [override], sections={"quick": True})
    with pytest.raises(ValueError, match=message):
        check_grid_config(config)
