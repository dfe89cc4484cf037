"""One defense-grid job: a trained recipe attacked under each of its serving settings."""

from __future__ import annotations

import pytest
import torch

from auditor.cifar.defense_grid import evaluate_recipe, recipe_key, slug

torch.set_num_threads(1)
SMALL = {"conv_channels": [4, 8], "fc_size": 16, "epochs": 3, "batch_size": 16, "num_threads": 1}
ATTACKS = ["shokri", "loss", "threshold", "loss_mirror"]


@pytest.fixture(scope="module")
def tiny_zip(make_tiny_cifar_zip):
    return make_tiny_cifar_zip(300, 100)


def _job(data, run_dir, settings, **extra):
    job = dict(data=str(data), run_dir=str(run_dir), settings=settings, train_size=60, seed=0,
               cnn_config=SMALL, n_shadows=1, attacks=ATTACKS, n_eval=40, shokri_max_iter=5,
               n_bootstrap=5)  # fmt: skip
    return job | extra


def test_settings_sharing_a_model_train_it_once_and_differ_only_in_serving(tiny_zip, tmp_path):
    rows = evaluate_recipe(**_job(tiny_zip, tmp_path, ["dropout:p=0.5", "dropout:p=0.5+topk:k=1"],
                                  cache_dir=str(tmp_path / "cache")))  # fmt: skip
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
