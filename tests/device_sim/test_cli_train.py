"""``device-sim train`` + ``device-sim eval`` end to end on 3 real speakers of speechocean762-dev."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpora.manifest import read_manifest, write_manifest
from corpora.prepare import prepare_corpus
from device_sim.cli import main

SPEAKERS = ("0053", "0070", "0094")


def train(runner: CliRunner, manifest: Path, out: Path, *options: str):
    """``device-sim train --manifest MANIFEST --out OUT`` with ``options``."""
    return runner.invoke(main, ["train", "--manifest", str(manifest), "--out", str(out), *options])


@pytest.fixture(scope="module")
def small_manifest(tmp_path_factory, speechocean_dir) -> Path:
    root = tmp_path_factory.mktemp("so762")
    prepared = prepare_corpus(speechocean_dir, "kaldi", root / "full", progress=False)
    out = root / "three" / "manifest.jsonl"
    write_manifest(out, read_manifest(prepared.manifest, SPEAKERS))
    return out


def test_train_then_eval_prints_per_overall_and_per_speaker(small_manifest, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(
        "network: {hidden: [64, 64]}\n"
        "training: {realign_iterations: 1, epochs_per_realign: 1, batch_size: 512}\n"
    )
    ckpt = tmp_path / "ckpt"
    runner = CliRunner()
    res = train(
        runner,
        small_manifest,
        ckpt,
        *("--config", str(config), "--epochs", "1", "--seed", "4", "--threads", "1"),
    )
    assert res.exit_code == 0, res.output
    assert "targets: transcript" in res.output and "held out 6" in res.output
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "data.json").is_file()
    assert (small_manifest.parent / "features").is_dir()  # cache beside the manifest
    data = json.loads((ckpt / "data.json").read_text())
    assert data["speakers"] == sorted(SPEAKERS) and len(data["train"]) == 51

    res = runner.invoke(
        main,
        [
            "eval",
            "--model",
            str(ckpt),
            "--manifest",
            str(small_manifest),
            "--utterances",
            "heldout",
            "--json",
            str(tmp_path / "eval.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any(line.startswith("OVERALL") for line in lines)
    for spk in SPEAKERS:
        assert any(line.startswith(spk) for line in lines), res.output
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["overall"]["utterances"] == 6
    assert {r["utt_id"] for r in result["utterances"]} == set(data["heldout"])
    assert 0.0 < result["overall"]["per"] < 2.0


def test_cli_errors_are_clear(small_manifest, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--model", str(tmp_path), "--manifest", str(small_manifest)])
    assert res.exit_code != 0 and "not a recognizer checkpoint" in res.output
    res = train(
        runner,
        small_manifest,
        tmp_path / "y",
        *("--splits", str(small_manifest), "--split", "target_members"),
    )
    assert res.exit_code != 0 and "malformed splits file" in res.output
    res = train(runner, small_manifest, tmp_path / "x", "--split", "a")
    assert res.exit_code != 0 and "--splits and --split go together" in res.output
