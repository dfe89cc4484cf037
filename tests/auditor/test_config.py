"""Tests for auditor.config: YAML loading, checked and typed overrides, run directory files."""

import json

import numpy as np
import pytest
import yaml

from auditor.config import apply_overrides, load_config, prepare_run_dir, save_metrics
from auditor.voice.pipeline import AUDIT_CONFIG, audit_config

CONFIG = """\
name: cifar10_shadow
seed: 0
train:
  epochs: 10
  lr: 0.001
  augment: false
  sizes: [2500, 5000]
attack:
  kind: shokri
  n_shadows: 4
  threshold: null
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_overrides_are_typed_by_existing_values(config_file):
    config = load_config(
        config_file,
        [
            "--train.epochs=3",
            "--train.lr=1",
            "train.augment=true",
            "--attack.kind=lira",
            "--train.sizes=[100]",
            "--attack.threshold=0.7",
            "--name=123",
        ],
    )
    assert config["train"] == {"epochs": 3, "lr": 1.0, "augment": True, "sizes": [100]}
    assert isinstance(config["train"]["lr"], float)
    assert config["attack"]["kind"] == "lira" and config["attack"]["threshold"] == 0.7
    assert config["name"] == "123"  # a string stays a string


def test_overrides_do_not_touch_the_input():
    base = {"a": {"b": 1}}
    assert apply_overrides(base, ["--a.b=2"]) == {"a": {"b": 2}}
    assert base == {"a": {"b": 1}}


def test_unknown_key_lists_close_matches(config_file):
    with pytest.raises(ValueError, match=r"unknown key 'train\.epoch'.*train\.epochs"):
        load_config(config_file, ["--train.epoch=3"])
    with pytest.raises(ValueError, match="unknown key 'zzz'"):
        load_config(config_file, ["--zzz=3"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("--train.epochs=three", "expected a int"),
        ("--train.epochs=2.5", "expected a int"),
        ("--train.augment=1", "expected a bool"),
        ("--train=3", "is a section"),
        ("--train.epochs", "--key=value"),
        ("--train.sizes=5", "expected a list"),
    ],
)
def test_bad_overrides_are_refused(config_file, override, message):
    with pytest.raises(ValueError, match=message):
        load_config(config_file, [override])


def test_sections_apply_in_order_then_the_overrides(config_file):
    config_file.write_text(
        CONFIG + "big:\n  train.epochs: 50\nquick:\n  train.epochs: 1\n  train.sizes: [10]\n"
    )
    plain = load_config(config_file, sections={"big": False, "quick": False})
    assert plain["train"]["epochs"] == 10 and "quick" not in plain and "big" not in plain
    quick = load_config(config_file, ["--train.sizes=[20]"], sections={"big": True, "quick": True})
    assert quick["train"]["epochs"] == 1 and quick["train"]["sizes"] == [20]
    with pytest.raises(ValueError, match="unknown key 'train.epoch' in override 'train.epoch=2'"):
        config_file.write_text(CONFIG + "quick:\n  train.epoch: 2\n")
        load_config(config_file, sections={"quick": True})


def test_the_audit_config_and_its_sections(config_file, tmp_path):
    full, quick = audit_config(), audit_config(quick=True)
    assert "quick" not in full and "timit" not in full and full["splits"]["target_members"] == 25
    assert quick["splits"] == {"target_members": 10, "target_nonmembers": 10, "shadow_pool": 20}
    assert quick["recognizer"]["network"] == {"hidden": [128, 128], "dropout": 0.0}
    assert audit_config(AUDIT_CONFIG, ["--shadows.k=4"])["shadows"]["k"] == 4
    timit = audit_config(corpus=tmp_path)
    assert timit["corpus"]["format"] == "timit" and timit["corpus"]["path"] == str(tmp_path)
    with pytest.raises(ValueError, match="no timit section"):
        audit_config(config_file, corpus=tmp_path)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="broken.yaml: expected a YAML mapping"):
        load_config(path)
    path.write_text("a: [1\n")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        load_config(path)


def test_run_dir_holds_resolved_config_and_metrics(config_file, tmp_path):
    config = load_config(config_file, ["--train.epochs=2"])
    run_dir = prepare_run_dir(tmp_path / "runs" / "x", config, seed=7)
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["seed"] == 7 and written["train"]["epochs"] == 2
    path = save_metrics(
        run_dir,
        {
            "shokri": {
                "auc": np.float32(0.75),
                "roc": np.array([0, 1]),
                "ci": float("nan"),
                "n": np.int64(3),
            }
        },
    )
    loaded = json.loads(path.read_text())
    assert loaded == {"shokri": {"auc": 0.75, "roc": [0, 1], "ci": None, "n": 3}}
