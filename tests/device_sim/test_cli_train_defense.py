"""``device-sim train --defense``: named training defenses, clear errors for the rest."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from corpora.manifest import write_manifest
from device_sim.cli import main


@pytest.fixture(scope="module")
def tiny_manifest_and_config(tiny_utterances, tiny_recipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("defense_cli")
    manifest = write_manifest(root / "manifest.jsonl", tiny_utterances)
    config = root / "tiny.yaml"
    config.write_text(json.dumps(tiny_recipe))  # JSON is YAML
    return manifest, config


def _train(manifest, config, out, defense):
    args = [
        "train",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--config",
        str(config),
        "--threads",
        "1",
        "--defense",
        defense,
    ]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("defense", "message"),
    [
        ("shuffle", "unknown defense 'shuffle'"),
        ("stacking", "not available on the voice path"),
        (
            "topk:k=2",
            "has a serving defense: train without it and serve with "
            "`device-sim serve --output topk:k=2`",
        ),
        ("dpsgd:sigma=1", "no parameter"),
        ("advreg+dpsgd", "inference model is trained on the training records without privacy"),
        (
            "l2+label_only",
            "l2+label_only has a serving defense: train without it and serve "
            "with `device-sim serve --output label_only`",
        ),
    ],
)
def test_bad_defense_is_refused_before_training(
    tiny_manifest_and_config, tmp_path, defense, message
):
    res = _train(*tiny_manifest_and_config, tmp_path / "ck", defense)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "ck").exists()


def test_dpsgd_defense_trains_and_reports_epsilon_delta_and_coverage(
    tiny_manifest_and_config, tmp_path
):
    res = _train(*tiny_manifest_and_config, tmp_path / "ck", "dpsgd:noise_multiplier=1.5")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "ck" / "model.json").read_text())
    assert doc["architecture"]["norm"] == "group"
    dp = doc["training"]["defenses"]["dpsgd"]
    assert dp["noise_multiplier"] == 1.5
    line = next(x for x in res.output.splitlines() if x.startswith("DP-SGD: epsilon"))
    assert line.startswith(f"DP-SGD: epsilon {dp['epsilon']:.3g} at delta {dp['delta']:.3g} ")
    assert f"n = {dp['n_records']} records" in line
    assert "per spliced training window of 11 frames (record-level)" in line
    assert "not per frame" in line and "not per speaker" in line
    assert "not covered" in line and "HMM state priors" in line and "phone bigram LM" in line
