"""A defense grid: its jobs, one job (a trained recipe attacked under each of its serving
settings), the goal check."""

from __future__ import annotations

import pytest
import torch

from auditor.cifar.defense_grid import (
    check_grid_config,
    evaluate_recipe,
    grid_jobs,
    recipe_key,
    slug,
)
from auditor.cifar.defense_tables import target_met

torch.set_num_threads(1)
SMALL = {"conv_channels": [4, 8], "fc_size": 16, "epochs": 3, "batch_size": 16, "num_threads": 1}
ATTACKS = ["shokri", "loss", "threshold", "loss_mirror"]


@pytest.fixture(scope="module")
def tiny_zip(make_tiny_cifar_zip):
    return make_tiny_cifar_zip(300, 100)


def _job(data, run_dir, settings, **extra):
    job = dict(
        data=str(data),
        run_dir=str(run_dir),
        settings=settings,
        train_size=60,
        seed=0,
        cnn_config=SMALL,
        n_shadows=1,
        attacks=ATTACKS,
        n_eval=40,
        shokri_max_iter=5,
        n_bootstrap=5,
    )
    return job | extra


def test_settings_sharing_a_model_train_it_once_and_differ_only_in_serving(tiny_zip, tmp_path):
    rows = evaluate_recipe(
        **_job(
            tiny_zip,
            tmp_path,
            ["dropout:p=0.5", "dropout:p=0.5+topk:k=1"],
            cache_dir=str(tmp_path / "cache"),
        )
    )
    assert [p.name for p in (tmp_path / "targets").iterdir()] == ["n60_dropout_p-0.5"]
    by = {(r["setting"], r["attack"]): r for r in rows}
    assert [r["attack"] for r in rows] == ATTACKS * 2  # two settings x the attacks asked for
    plain, top1 = by[("dropout:p=0.5", "loss")], by[("dropout:p=0.5+topk:k=1", "loss")]
    assert plain["defense"] == "dropout" and plain["stage"] == "train"
    assert top1["defense"] == "dropout+topk" and top1["stage"] == "train+serve"
    assert top1["params"] == {"dropout": {"p": 0.5}, "topk": {"k": 1}}
    # the same model: same training time and accuracy, different answers to the attacks
    assert plain["target"]["train_seconds"] == top1["target"]["train_seconds"] > 0
    assert plain["target"]["test_acc"] == top1["target"]["test_acc"]
    assert by[("dropout:p=0.5+topk:k=1", "threshold")]["auc"] == 0.5  # top-1 answers: constant


def test_settings_of_different_models_are_refused():
    with pytest.raises(ValueError, match="do not share one training recipe"):
        evaluate_recipe(**_job("unused.zip", "unused", ["none", "l2"]))


def test_lira_with_one_shadow_is_refused_before_any_training():
    with pytest.raises(ValueError, match=r"\['lira'\] need >= 2 shadow models"):
        evaluate_recipe(**_job("unused.zip", "unused", ["none"], attacks=["loss", "lira"]))


def test_recipe_key_and_slug():
    assert recipe_key("none", SMALL) == recipe_key("label_only", SMALL)
    assert recipe_key("augment", SMALL) != recipe_key("none", SMALL)
    assert slug("dropout:p=0.5+augment", 2500) == "n2500_dropout_p-0.5_augment"


def _grid(defenses: list[str]) -> dict:
    return {
        "train_size": 100,
        "seed": 0,
        "data": "cifar.zip",
        "cache_dir": None,
        "cnn": SMALL,
        "defenses": defenses,
        "cost_factors": {"dpsgd": 4.5},
        "table2": {"train_sizes": [100, 200], "defense": "l2:weight_decay=0.01"},
        "attack": {
            "n_shadows": 1,
            "attacks": ATTACKS,
            "threshold_percentile": 90.0,
            "shokri_max_iter": 5,
            "shokri_features": "class_order",
        },
        "eval": {"n_eval": 40, "n_bootstrap": 5},
    }


def test_grid_jobs_share_trained_models_and_start_with_the_costliest(tmp_path):
    config = check_grid_config(
        _grid(["none", "topk:k=1", "dpsgd:noise_multiplier=1.0", "l2:weight_decay=0.01"])
    )
    jobs = grid_jobs(config, tmp_path / "run", root=tmp_path)
    assert [(j["train_size"], j["settings"]) for j in jobs] == [
        (100, ["dpsgd:noise_multiplier=1.0"]),  # 100 images x 4.5
        (200, ["l2:weight_decay=0.01"]),  # Table 2's larger size
        (100, ["none", "topk:k=1"]),  # the serving defense hardens the undefended model
        (100, ["l2:weight_decay=0.01"]),
    ]
    assert {j["data"] for j in jobs} == {str(tmp_path / "cifar.zip")}
    with pytest.raises(ValueError, match="must be none"):
        check_grid_config(_grid(["topk:k=1", "none"]))


def test_the_goal_is_checked_on_the_max_auc_over_the_attacks():
    def setting(name: str, test_acc: float, auc: float) -> dict:
        return {
            "setting": name,
            "target": {"test_acc": test_acc},
            "max_auc": {"auc": auc, "attack": "loss"},
        }

    summary = [
        setting("none", 0.50, 0.70),
        setting("a", 0.48, 0.55),
        setting("b", 0.46, 0.52),
        setting("c", 0.50, 0.56),
    ]
    goal = {"target": {"max_auc": 0.55, "max_acc_drop": 0.03}}
    assert [m["setting"] for m in target_met(summary, goal)] == ["a"]
    assert target_met(summary[1:], goal) == []  # the baseline has not finished yet
