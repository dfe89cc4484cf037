"""Training end to end on the tone corpus: overfitting, data protocol, checkpoints, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from corpora.audio import read_audio
from corpora.phones import fold_48_to_39
from corpora.splits import split_utterances
from models.asr.recognizer import (
    CheckpointError,
    RecognizerInputError,
    load_recognizer,
    save_recognizer,
)
from models.asr.scoring import per, sum_counts
from models.asr.train import TrainingDataError, speaker_fingerprint, train_recognizer

from .conftest import TONE_CONFIG


def _corpus_per(rec, utts):
    batch = [read_audio(u.path) for u in utts]
    hyps = rec.transcribe_batch(batch)
    return sum_counts(
        per(fold_48_to_39(u.phones), h.phones39) for u, h in zip(utts, hyps, strict=True)
    )


def test_network_overfits_training_utterances(tone_model, tone_corpus):
    rec, report, out = tone_model
    data = json.loads((out / "data.json").read_text())
    trained = [u for u in tone_corpus if u.utt_id in set(data["train"])]
    result = _corpus_per(rec, trained)
    assert result["per"] < 0.05, result
    assert report["epochs"][-1]["train_loss"] < report["epochs"][0]["train_loss"]


def test_data_protocol_is_recorded_and_disjoint(tone_model, tone_corpus):
    _, report, out = tone_model
    data = json.loads((out / "data.json").read_text())
    train, dev, held = set(data["train"]), set(data["dev"]), set(data["heldout"])
    assert not (train & dev) and not (train & held) and not (dev & held)
    assert train | dev | held == {u.utt_id for u in tone_corpus}
    assert len(held) == 3 and len(dev) == 3  # one each per speaker
    assert data["speakers"] == ["spk0", "spk1", "spk2"]
    assert report["data"]["train"] == len(train) == 12
    model = json.loads((out / "model.json").read_text())
    assert model["training"]["speaker_fingerprint"] == data["speaker_fingerprint"]
    assert model["cmvn"]["mode"] == "utterance"


def test_split_is_seeded_and_refuses_small_speakers(tone_corpus):
    a = split_utterances(tone_corpus, 1, 1, seed=5)
    b = split_utterances(tone_corpus, 1, 1, seed=5)
    assert [u.utt_id for u in a.heldout] == [u.utt_id for u in b.heldout]
    cfg = {"training": {"heldout_utterances_per_speaker": 4, "dev_utterances_per_speaker": 2}}
    with pytest.raises(
        TrainingDataError,
        match=r"speaker spk0 has 6 utterances; 4 held out \+ 2 dev \+ 1 training utterance "
        r"needed \(lower training.heldout_utterances_per_speaker or",
    ):
        train_recognizer(tone_corpus, cfg, seed=0, progress=False)


def test_checkpoint_round_trip_is_bit_exact(tone_model, tone_corpus, tmp_path):
    rec, _, out = tone_model
    loaded = load_recognizer(out)
    assert loaded.model_id == rec.model_id
    samples, sr = read_audio(tone_corpus[0].path)
    a = rec.transcribe(samples, sr, top_k=3).to_dict()
    b = loaded.transcribe(samples, sr, top_k=3).to_dict()
    assert a == b
    assert a["frames"] == len(a["top_k"]) and len(a["phones"]) == len(a["segments"])
    # saving again gives the same id and the same files' content
    again = save_recognizer(loaded, tmp_path / "again")
    assert json.loads((again / "model.json").read_text())["model_id"] == rec.model_id


def test_tampered_checkpoint_is_refused(tone_model, tmp_path):
    rec, _, _ = tone_model
    out = save_recognizer(rec, tmp_path / "ck")
    doc = json.loads((out / "model.json").read_text())
    doc["hmm"]["log_priors"][0] += 1.0
    (out / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="model_id mismatch"):
        load_recognizer(out)
    with pytest.raises(CheckpointError, match="model.safetensors missing"):
        load_recognizer(tmp_path)


@pytest.mark.parametrize(
    ("samples", "rate", "code"),
    [
        (np.zeros(0, dtype=np.float32), 16000, "empty_audio"),
        (np.zeros(500, dtype=np.float32), 16000, "too_short"),
        (np.full(16000, np.nan, dtype=np.float32), 16000, "non_finite"),
        (np.r_[np.zeros(8000), np.inf].astype(np.float32), 16000, "non_finite"),
        (np.zeros(16000, dtype=np.float32), 8000, "bad_sample_rate"),
    ],
)
def test_bad_audio_raises_recognizer_input_error(tone_model, samples, rate, code):
    rec, _, _ = tone_model
    with pytest.raises(RecognizerInputError) as e:
        rec.transcribe(samples, rate)
    assert e.value.code == code


def test_bad_item_in_batch_is_named(tone_model):
    rec, _, _ = tone_model
    good = (np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(RecognizerInputError, match="batch item 1") as e:
        rec.transcribe_batch([good, (np.zeros(0, dtype=np.float32), 16000)])
    assert e.value.code == "empty_audio"


def test_unusable_utterances_are_skipped_and_reported(tone_corpus, tmp_path):
    bad_phone = dataclasses.replace(tone_corpus[0], phones=("sil", "xx", "sil"))
    missing = dataclasses.replace(tone_corpus[1], path=str(tmp_path / "gone.wav"))
    utts = [bad_phone, missing, *tone_corpus[2:]]
    cfg = TONE_CONFIG | {
        "training": TONE_CONFIG["training"]
        | {
            "epochs": 1,
            "epochs_per_realign": 1,
            "tune_decoding": False,
            "heldout_utterances_per_speaker": 0,
        }
    }
    _, report = train_recognizer(utts, cfg, seed=0, progress=False)
    reasons = {s["utt_id"]: s["reason"] for s in report["skipped"]}
    assert "'xx' is not in the 48-phone set" in reasons[bad_phone.utt_id]
    assert "gone.wav" in reasons[missing.utt_id] and "No such file" in reasons[missing.utt_id]
    assert report["data"]["skipped"] == 2


def test_no_usable_utterance_is_a_clear_error(tone_corpus):
    bad = [dataclasses.replace(u, phones=("sil", "xx", "sil")) for u in tone_corpus]
    with pytest.raises(TrainingDataError, match="no usable training utterances"):
        train_recognizer(bad, TONE_CONFIG, seed=0, progress=False)


@pytest.mark.parametrize("mode", ["global", "speaker", "none"])
def test_cmvn_modes_train_save_and_evaluate(tone_corpus, tmp_path, mode):
    from models.asr.evaluate import evaluate_recognizer

    cfg = {
        "features": {"cmvn": mode},
        "network": {"hidden": [32]},
        "training": TONE_CONFIG["training"]
        | {"epochs": 1, "epochs_per_realign": 1, "tune_decoding": False},
    }
    rec, _ = train_recognizer(tone_corpus, cfg, seed=1, out_dir=tmp_path, progress=False)
    doc = json.loads((tmp_path / "model.json").read_text())
    assert doc["cmvn"]["mode"] == mode
    assert (doc["cmvn"]["mean"] is not None) == (mode == "global")
    loaded = load_recognizer(tmp_path)
    a = evaluate_recognizer(rec, tone_corpus[:4], progress=False)
    b = evaluate_recognizer(loaded, tone_corpus[:4], progress=False)
    assert a == b and a["overall"]["utterances"] == 4 and a["skipped"] == []


def test_batch_results_equal_one_by_one(tone_model, tone_corpus):
    rec, _, _ = tone_model
    audio = [read_audio(u.path) for u in tone_corpus[:5]]
    together = [h.to_dict() for h in rec.transcribe_batch(audio, top_k=2)]
    alone = [rec.transcribe(*a, top_k=2).to_dict() for a in audio]
    assert together == alone


def test_speaker_fingerprint_keeps_its_value():
    """Pinned: the fingerprint recorded in checkpoints (sorted distinct speakers)."""
    assert speaker_fingerprint(["FCJF0", "MDAB0", "FCJF0"]) == "deb66d7b60aba07a"
    assert speaker_fingerprint(["MDAB0", "FCJF0"]) == "deb66d7b60aba07a"
