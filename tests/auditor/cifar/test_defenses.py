"""Defended CIFAR targets: defense specs, hardened serving, shadows shared by six attacks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from auditor.cifar.attacks.shadow import CnnRecipe
from auditor.cifar.attacks.signals import log_proba, scaled_confidence
from auditor.cifar.audit import evaluation_records, shadow_recipe
from auditor.cifar.defenses import (
    ATTACK_NAMES,
    AnswerCache,
    ReplayExecutor,
    attack_suite,
    train_shadows,
)
from auditor.cifar.target import defense_settings, load_target, train_target
from auditor.cli import main
from models.privacy.registry import UnknownDefenseError

torch.set_num_threads(1)
SMALL = {"conv_channels": [4, 8], "fc_size": 16, "epochs": 10, "batch_size": 16,
         "num_threads": 1}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_zip(make_tiny_cifar_zip):
    """300 train + 100 test random images (PNG, so pixels survive exactly)."""
    return make_tiny_cifar_zip(300, 100)


def test_defense_settings_map_specs_to_configs():
    assert defense_settings("l2:weight_decay=0.01", {"epochs": 2}) == (
        {"epochs": 2, "weight_decay": 0.01}, None)  # fmt: skip
    assert defense_settings("dropout:p=0.3")[0] == {"dropout": 0.3}
    assert defense_settings("dpsgd")[0]["dpsgd"]["delta"] == 1e-5
    assert defense_settings("topk:k=2") == ({}, {"name": "topk", "k": 2})
    assert defense_settings("transcript_only")[1] == {"name": "label_only"}
    assert defense_settings(None) == ({}, None)
    assert defense_settings("augment:crop=2")[0] == {"augment": {"flip": True, "crop": 2}}
    cfg, serving = defense_settings("dropout:p=0.5+l2:weight_decay=0.01+topk:k=1", {"epochs": 2})
    assert cfg == {"epochs": 2, "dropout": 0.5, "weight_decay": 0.01}
    assert serving == {"name": "topk", "k": 1}
    with pytest.raises(UnknownDefenseError):
        defense_settings("mixup")
    with pytest.raises(ValueError, match="at most one of"):
        defense_settings("stacking+dpsgd")


@pytest.fixture(scope="module")
def target_dirs(tiny_zip, tmp_path_factory):
    root = tmp_path_factory.mktemp("targets")
    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for name, spec in (("none", None), ("topk", "topk:k=1"), ("advreg", "advreg:lam=1.0")):
        train_target(tiny_zip, root / name, train_size=60, seed=0, cnn_config=SMALL,
                     n_shadow_pool=120, cache_dir=cache, progress=False, defense=spec)  # fmt: skip
        out[name] = root / name
    return out, cache


def test_serving_defense_is_recorded_and_hardens_every_answer(target_dirs):
    dirs, cache = target_dirs
    plain = load_target(dirs["none"], cache_dir=cache, progress=False)
    top1 = load_target(dirs["topk"], cache_dir=cache, progress=False)
    assert plain.serving is None and top1.serving == {"name": "topk", "k": 1}
    x, _ = plain.records("target_nonmembers")
    answers = top1.predict_proba(x)
    assert set(np.unique(answers)) == {0.0, 1.0}  # one-hot: top-1 renormalised
    np.testing.assert_array_equal(answers.argmax(1), top1.raw_proba(x).argmax(1))
    assert len(np.unique(plain.predict_proba(x))) > 100
    assert shadow_recipe(top1).serving == top1.serving  # shadows are hardened alike


def test_advreg_target_draws_its_reference_outside_every_split(target_dirs):
    dirs, cache = target_dirs
    t = load_target(dirs["advreg"], cache_dir=cache, progress=False)  # splits checked disjoint
    assert len(t.split["defender_reference"]) == 12  # ref_fraction 0.2 of 60
    assert t.info["config"]["advreg"]["lam"] == 1.0


def test_attack_suite_shares_shadows_and_reports_every_attack(target_dirs):
    dirs, cache = target_dirs
    target = load_target(dirs["none"], cache_dir=cache, progress=False)
    x_eval, y_eval, membership = evaluation_records(target, None, 0)
    shadows = train_shadows(target, shadow_recipe(target), 2, seed=0, x_eval=x_eval)
    assert len(shadows.answers) == 2
    assert set(shadows.answers[0]) == {"in", "out", "eval", "in_mirror", "out_mirror", "eval_mirror"}
    results = attack_suite(target, shadows, seed=0, x_eval=x_eval, y_eval=y_eval,
                           membership=membership, n_bootstrap=0)  # fmt: skip
    assert set(ATTACK_NAMES) <= set(results)
    assert results["strongest"] == max(ATTACK_NAMES, key=lambda a: results[a]["auc"])
    assert results["loss"]["auc"] > 0.6  # random labels: memorised members leak
    one_hot = attack_suite(dataclasses.replace(target, serving={"name": "label_only"}), shadows,
                           seed=0, x_eval=x_eval, y_eval=y_eval, membership=membership,
                           n_bootstrap=0)  # fmt: skip
    assert one_hot["threshold"]["auc"] == 0.5  # a constant max posterior says nothing
    # the mirror attacks score the mean over the record and its mirror image (an oracle here)
    for answers, res in ((target, results), (dataclasses.replace(
            target, serving={"name": "label_only"}), one_hot)):  # fmt: skip
        phi = np.mean([scaled_confidence(log_proba(answers.predict_proba(x)), y_eval)
                       for x in (x_eval, x_eval[:, :, ::-1])], axis=0)  # fmt: skip
        assert res["loss_mirror"]["auc"] == pytest.approx(roc_auc_score(membership, phi))
    assert results["loss_mirror"]["auc"] != results["loss"]["auc"]


def test_replay_executor_refuses_other_training_data(target_dirs):
    dirs, cache = target_dirs
    target = load_target(dirs["none"], cache_dir=cache, progress=False)
    x_eval, _, _ = evaluation_records(target, 10, 0)
    shadows = train_shadows(target, CnnRecipe(dict(target.info["config"])), 1, seed=0,
                            x_eval=x_eval)  # fmt: skip
    job = {"x_train": x_eval, "y_train": np.zeros(len(x_eval), int), "queries": {"in": x_eval},
           "seed": shadows.seeds[0]}  # fmt: skip
    with pytest.raises(ValueError, match="differ"):
        ReplayExecutor(shadows).map(None, [job])
    with pytest.raises(ValueError, match="seed"):
        ReplayExecutor(shadows).map(None, [{**job, "seed": 99}])


def test_cli_train_target_with_a_defense(tiny_zip, tmp_path):
    args = ["cifar", "train-target", "--data", str(tiny_zip), "--train-size", "60", "--seed",
            "0", "--epochs", "1", "--batch-size", "16", "--cache-dir", str(tmp_path / "c"),
            "--quiet"]  # fmt: skip
    ok = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "t"),
                                   "--defense", "dpsgd:noise_multiplier=2.0"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output[ok.output.index("{") :])
    assert summary["defense"] == "dpsgd:noise_multiplier=2.0" and summary["epsilon"] > 0
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "u"), "--defense", "mixup"])
    assert bad.exit_code != 0 and "unknown defense 'mixup'" in bad.output
    assert not (tmp_path / "u").exists()


def test_answer_cache_computes_once_and_serves_the_current_hardening(target_dirs):
    dirs, cache_dir = target_dirs
    target = load_target(dirs["none"], cache_dir=cache_dir, progress=False)
    x, _ = target.records("target_nonmembers")
    cache = AnswerCache(target)
    np.testing.assert_array_equal(cache.predict_proba(x), target.predict_proba(x))
    np.testing.assert_array_equal(cache.predict_proba(x.copy()), target.predict_proba(x))
    assert len(cache.raw_) == 1
    cache.target = dataclasses.replace(target, serving={"name": "label_only"})
    assert set(np.unique(cache.predict_proba(x))) == {0.0, 1.0} and len(cache.raw_) == 1
