"""Defended CIFAR targets: defense specs, hardened serving, shadows shared by the attacks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from auditor.cifar.attacks.shadow import CnnRecipe
from auditor.cifar.audit import evaluation_records, shadow_recipe
from auditor.cifar.defenses import (
    ATTACK_NAMES,
    AnswerCache,
    ReplayExecutor,
    Shadows,
    attack_suite,
    train_shadows,
)
from auditor.cifar.target import CifarTarget, defense_settings, load_target, train_target
from auditor.cli import main
from models.privacy.registry import UnknownDefenseError
from models.vision.train import train_cnn

torch.set_num_threads(1)
SMALL = {"conv_channels": [4, 8], "fc_size": 16, "epochs": 10, "batch_size": 16, "num_threads": 1}


@pytest.fixture(scope="module")
def tiny_zip(make_tiny_cifar_zip):
    """300 train + 100 test random images (PNG, so pixels survive exactly)."""
    return make_tiny_cifar_zip(300, 100)


def test_defense_settings_map_specs_to_configs():
    assert defense_settings("l2:weight_decay=0.01", {"epochs": 2}) == (
        {"epochs": 2, "weight_decay": 0.01},
        None,
    )
    assert defense_settings("dropout:p=0.3")[0] == {"dropout": 0.3}
    assert defense_settings("dpsgd")[0]["dpsgd"]["delta"] == 1e-5
    assert defense_settings("topk:k=2") == ({}, {"name": "topk", "k": 2})
    assert defense_settings("label_only")[1] == {"name": "label_only"}
    with pytest.raises(UnknownDefenseError, match="write 'label_only'"):
        defense_settings("transcript_only")
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
        train_target(
            tiny_zip,
            root / name,
            train_size=60,
            seed=0,
            cnn_config=SMALL,
            n_shadow_pool=120,
            cache_dir=cache,
            progress=False,
            defense=spec,
        )
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


def test_advreg_shadows_learn_from_a_reference_outside_their_training_data(
    target_dirs, monkeypatch
):
    dirs, cache = target_dirs
    t = load_target(dirs["advreg"], cache_dir=cache, progress=False)
    ref = t.split["shadow_reference"]
    assert len(ref) == len(t.split["defender_reference"]) == 12  # as the target's
    assert not np.isin(
        ref, np.concatenate([v for k, v in t.split.items() if k != "shadow_reference"])
    ).any()
    recipe = shadow_recipe(t)
    np.testing.assert_array_equal(recipe.reference[0], t.x[ref])
    seen = {}

    def spy(x, y, config, **kw):
        model, hist = train_cnn(x, y, config, **kw)
        seen.update(x_ref=kw["x_ref"], n_train=hist["n_train"])
        return model, hist

    monkeypatch.setattr("auditor.cifar.attacks.shadow.train_cnn", spy)
    x_pool, y_pool = t.records("shadow_pool")
    recipe.fit(x_pool[:60], y_pool[:60], seed=1)  # a shadow's "in" half
    np.testing.assert_array_equal(seen["x_ref"], t.x[ref])
    assert seen["n_train"] == 60  # it trains on all of its records, none set aside


def run_suite(target, shadows, attacks, x_eval, y_eval, membership) -> dict:
    """:func:`attack_suite` of ``attacks`` on the evaluation records, seed 0, no bootstrap."""
    return attack_suite(
        target,
        shadows,
        attacks=attacks,
        seed=0,
        x_eval=x_eval,
        y_eval=y_eval,
        membership=membership,
        n_bootstrap=0,
    )


def test_attack_suite_shares_shadows_and_reports_every_attack(target_dirs):
    dirs, cache = target_dirs
    target = load_target(dirs["none"], cache_dir=cache, progress=False)
    x_eval, y_eval, membership = evaluation_records(target, None, 0)
    shadows = train_shadows(target, shadow_recipe(target), 2, seed=0, x_eval=x_eval)
    assert len(shadows.answers) == 2
    assert set(shadows.answers[0]) == {
        "in",
        "out",
        "eval",
        "in_mirror",
        "out_mirror",
        "eval_mirror",
    }
    results = run_suite(target, shadows, ATTACK_NAMES, x_eval, y_eval, membership)
    assert set(results) == {*ATTACK_NAMES, "max_auc_attack"}
    assert results["loss"]["auc"] > 0.6  # random labels: memorised members leak
    label_only = dataclasses.replace(target, serving={"name": "label_only"})
    one_hot = run_suite(label_only, shadows, ["threshold", "loss"], x_eval, y_eval, membership)
    assert set(one_hot) == {"threshold", "loss", "max_auc_attack"}  # only the attacks asked for
    assert one_hot["threshold"]["auc"] == 0.5  # a constant max posterior says nothing
    assert one_hot["max_auc_attack"] == "loss"


class _PixelLogit(nn.Module):
    """Two-class logits ``(0, z)`` with ``z = top-left pixel of channel 0 / 10 - 10``.

    For label 1 the scaled confidence ``log p_1 - log p_0`` is ``z`` itself, and mirroring an
    image swaps in its top-right pixel: every attack score below can be worked out by hand.
    """

    def forward(self, x):  # (n, 3, H, W) in [0, 1] -> (n, 2)
        z = x[:, 0, 0, 0].double() * 25.5 - 10.0  # (n,)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def _log_p(z) -> np.ndarray:
    """Two-class log-probabilities ``(n, 2)`` whose label-1 scaled confidence is ``z (n,)``."""
    z = np.asarray(z, dtype=np.float64)
    return np.stack([-np.logaddexp(0.0, z), z - np.logaddexp(0.0, z)], axis=1)


@pytest.fixture
def hand_world():
    """Two members then two non-members whose confidences are known, a pool of four, two
    shadows: calibration confidences 2.5 (in) / 0.5 (out); reference confidences 0 and 2 on
    every evaluation record (mean 1, global std 1), mirrored: 3.5 and 5.5 on the second member.
    """
    z = [3.0, 0.0, 2.0, 0.5, 0, 0, 0, 0]  # as is: members 3, 0; non-members 2, 0.5; pool
    z_mirror = [3.0, 4.0, 0.0, 1.0, 0, 0, 0, 0]  # the top-right pixels
    x = np.zeros((8, 1, 2, 3), np.uint8)  # (n, H, W, 3)
    x[:, 0, 0, 0] = np.round(np.array(z) * 10 + 100)
    x[:, 0, 1, 0] = np.round(np.array(z_mirror) * 10 + 100)
    split = {
        "target_members": np.array([0, 1]),
        "target_nonmembers": np.array([2, 3]),
        "shadow_pool": np.arange(4, 8),
    }
    target = CifarTarget(_PixelLogit(), x, np.ones(8, int), split, ("a", "b"), {})
    answers = [
        {
            "in": _log_p([2.5, 2.5]),
            "out": _log_p([0.5, 0.5]),
            "eval": _log_p([r] * 4),
            "in_mirror": _log_p([2.5, 2.5]),
            "out_mirror": _log_p([0.5, 0.5]),
            "eval_mirror": _log_p([r, r + 3.5, r, r]),
        }
        for r in (0.0, 2.0)
    ]
    splits = [(np.array([0, 1]), np.array([2, 3]))] * 2
    shadows = Shadows(splits, answers, [1, 2], ["", ""], 0.0)
    return target, shadows, x[:4], np.ones(4, int), np.array([1, 1, 0, 0])


def test_attack_suite_on_a_hand_computed_example(hand_world):
    target, shadows, *evaluation = hand_world
    attacks = ["loss", "lira", "loss_mirror", "lira_mirror"]
    res = run_suite(target, shadows, attacks, *evaluation)
    # loss: scores 3, 0 | 2, 0.5: one member above both non-members, one below: AUC 1/2;
    # threshold 2.5 (separates the shadows' 2.5 from 0.5): calls 1, 0 | 0, 0: 3 of 4 right.
    assert (res["loss"]["auc"], res["loss"]["accuracy"]) == (0.5, 0.75)
    # loss_mirror: the mean of both views, 3, 2 | 1, 0.75: AUC 1; threshold 2.5 again.
    assert (res["loss_mirror"]["auc"], res["loss_mirror"]["accuracy"]) == (1.0, 0.75)
    # lira: -log P[Z >= phi], Z ~ N(1, 1), increasing in phi: AUC as the loss; a member when
    # phi >= 1: calls 1, 0 | 1, 0: 2 of 4 right.
    assert (res["lira"]["auc"], res["lira"]["accuracy"]) == (0.5, 0.5)
    # lira_mirror: the sums of the views' scores -log P[Z >= phi] (the second member's
    # mirrored reference mean is 4.5): 3.78 + 3.78, 0.17 + 0.37 | 1.84 + 0.17, 0.37 + 0.69,
    # so AUC 1/2; a member where the sum >= 2 log 2: calls 1, 0 | 1, 0.
    assert (res["lira_mirror"]["auc"], res["lira_mirror"]["accuracy"]) == (0.5, 0.5)
    assert res["max_auc_attack"] == "loss_mirror"
    assert set(res) == {*attacks, "max_auc_attack"}


def test_attack_suite_refuses_lira_with_one_shadow(hand_world):
    target, shadows, *evaluation = hand_world
    one = Shadows(shadows.splits[:1], shadows.answers[:1], [1], [""], 0.0)
    for attacks in (["loss", "lira"], ["lira_mirror"]):
        with pytest.raises(ValueError, match=r"need >= 2 shadow models as OUT references, got 1"):
            run_suite(target, one, attacks, *evaluation)
    assert run_suite(target, one, ["loss"], *evaluation)["loss"]["auc"] == 0.5
    with pytest.raises(ValueError, match="attacks must be distinct names"):
        run_suite(target, shadows, ["loss", "gap"], *evaluation)


def test_replay_executor_refuses_other_training_data(target_dirs):
    dirs, cache = target_dirs
    target = load_target(dirs["none"], cache_dir=cache, progress=False)
    x_eval, _, _ = evaluation_records(target, 10, 0)
    shadows = train_shadows(
        target, CnnRecipe(dict(target.info["config"])), 1, seed=0, x_eval=x_eval
    )
    job = {
        "x_train": x_eval,
        "y_train": np.zeros(len(x_eval), int),
        "queries": {"in": x_eval},
        "seed": shadows.seeds[0],
    }
    with pytest.raises(ValueError, match="differ"):
        ReplayExecutor(shadows).map(None, [job])
    with pytest.raises(ValueError, match="seed"):
        ReplayExecutor(shadows).map(None, [{**job, "seed": 99}])


def test_cli_train_target_with_a_defense(tiny_zip, tmp_path):
    args = [
        "cifar",
        "train-target",
        "--data",
        str(tiny_zip),
        "--train-size",
        "60",
        "--seed",
        "0",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--cache-dir",
        str(tmp_path / "c"),
        "--quiet",
    ]
    ok = CliRunner().invoke(
        main, [*args, "--out", str(tmp_path / "t"), "--defense", "dpsgd:noise_multiplier=2.0"]
    )
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
