"""``auditor cifar train-target`` and ``auditor cifar attack`` on a tiny generated dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cifar.attacks import ATTACKS
from auditor.cifar.cli import attack_command
from auditor.cifar.target import load_target
from auditor.cli import main

TRAIN_SIZE = 60


def run_train_target(data, out, train_size, *options: str):
    """``auditor cifar train-target`` of ``data`` into ``out`` at seed 0, quiet, with ``options``."""
    args = ["cifar", "train-target", "--data", str(data), "--out", str(out)]
    args += ["--train-size", str(train_size), "--seed", "0", "--quiet", *options]
    return CliRunner().invoke(main, args)


def run_attack(name, target_dir, out, *options: str):
    """``auditor cifar attack --attack NAME`` on ``target_dir`` into ``out`` at seed 0, with
    ``options``."""
    args = ["cifar", "attack", "--attack", name, "--target", str(target_dir), "--out", str(out)]
    return CliRunner().invoke(main, [*args, "--seed", "0", *options])


@pytest.fixture(scope="module")
def tiny_zip(make_tiny_cifar_zip):
    """300 train + 100 test random images (PNG, so pixels survive exactly)."""
    return make_tiny_cifar_zip(300, 100)


@pytest.fixture(scope="module")
def target_dir(tiny_zip, tmp_path_factory):
    """A target that memorised its 60 random members (random labels: nothing else to learn)."""
    out = tmp_path_factory.mktemp("target") / "t"
    cache = tmp_path_factory.mktemp("cache")
    result = run_train_target(
        tiny_zip,
        out,
        TRAIN_SIZE,
        *("--epochs", "15", "--batch-size", "10", "--cache-dir", str(cache)),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["final"]["train_acc"] == 1.0
    assert summary["train_test_gap"] > 0.5
    return out


def test_train_target_writes_checkpoint_split_and_history(target_dir, tiny_zip):
    assert sorted(p.name for p in target_dir.iterdir()) == [
        "history.json",
        "model.json",
        "model.safetensors",
        "split.json",
    ]
    target = load_target(target_dir, progress=False)
    sizes = {k: len(v) for k, v in target.split.items()}
    # the attacker gets 2 x the training size by default: shadows train on halves of it, as
    # many records as the target (not on every record the target leaves unused)
    assert sizes == {"target_members": 60, "target_nonmembers": 60, "shadow_pool": 120}
    assert len(np.unique(np.concatenate(list(target.split.values())))) == 240
    history = json.loads((target_dir / "history.json").read_text())
    assert len(history["train_acc"]) == len(history["val_acc"]) == 15
    x, y = target.records("target_members")
    assert (target.predict_proba(x).argmax(1) == y).all()


def test_threshold_attack_separates_memorised_members(target_dir, tmp_path):
    out = tmp_path / "attack"
    result = run_attack(
        "threshold", target_dir, out, "--n-bootstrap", "50", "--param", "percentile=50"
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["threshold"]
    assert metrics["auc"] > 0.8
    assert metrics["n_members"] == metrics["n_nonmembers"] == TRAIN_SIZE
    assert metrics["params"] == {"percentile": 50}
    assert set(metrics["tpr_at_fpr"]) == {"0.01", "0.001"}
    assert (out / "roc_linear.png").exists() and (out / "roc_log.png").exists()


def test_shadow_attack_trains_shadows_with_the_target_recipe(target_dir, tmp_path):
    out = tmp_path / "attack"
    result = run_attack(
        "mlleaks",
        target_dir,
        out,
        *("--executor", "serial", "--n-eval", "40", "--n-bootstrap", "0"),
        *("--param", f"shadow_size={TRAIN_SIZE}"),
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["mlleaks"]
    assert metrics["n_members"] == metrics["n_nonmembers"] == 40
    assert metrics["auc"] > 0.6  # the shadow memorises its members the way the target did
    assert metrics["n_queries"] == 2 * 80  # scores and decisions over the evaluation records


def test_attack_refuses_parameters_the_attack_does_not_have(target_dir, tmp_path):
    result = run_attack("threshold", target_dir, tmp_path / "a", "--param", "n_shadows=3")
    assert result.exit_code == 1
    assert "threshold has no parameter(s) ['n_shadows']" in result.output
    result = run_attack("threshold", target_dir, tmp_path / "a", "--param", "percentile")
    assert result.exit_code == 2 and "is not NAME=VALUE" in result.output


def test_attack_choices_are_the_attack_registry():
    option = next(p for p in attack_command.params if p.name == "attack")
    assert sorted(option.type.choices) == sorted(ATTACKS)


def test_bad_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "not.zip").write_bytes(b"hello")
    result = run_train_target(tmp_path / "not.zip", tmp_path / "t", 10)
    assert result.exit_code == 1
    assert "not.zip: not a zip file" in result.output
