"""Training on the real synthetic eSpeak corpus (H2's ``tiny_synth_corpus``, prepared by H1's code)."""

from __future__ import annotations

import torch

from corpora.manifest import read_manifest
from corpora.prepare import prepare_corpus
from models.asr.evaluate import evaluate_recognizer
from models.asr.train import train_recognizer


def test_trains_with_alignment_targets_on_synthetic_corpus(tiny_synth_corpus, tmp_path):
    torch.set_num_threads(1)  # 2 threads on 2 shared cores starve each other (see BENCHMARKS.md)
    prepared = prepare_corpus(tiny_synth_corpus, "timit", tmp_path / "prep", progress=False)
    utts = read_manifest(prepared.manifest)
    cfg = {
        "network": {"hidden": [64]},
        "training": {
            "heldout_utterances_per_speaker": 1,
            "dev_utterances_per_speaker": 1,
            "epochs": 2,
            "epochs_per_realign": 1,
            "tune_decoding": False,
        },
    }
    rec, report = train_recognizer(
        utts, cfg, seed=0, cache_dir=tmp_path / "prep" / "features", progress=False
    )
    assert report["targets"] == "alignment"
    assert report["skipped"] == [] and report["realign_failed"] == [0]
    assert report["data"]["train"] == len(utts) - 2 * report["data"]["speakers"]
    result = evaluate_recognizer(rec, utts, progress=False)
    assert result["overall"]["utterances"] == len(utts)
    assert 0.0 < result["overall"]["per"] < 1.5
    assert len(result["per_speaker"]) == report["data"]["speakers"]
