"""Voice-path training defenses on the tone corpus: each changes training as it claims.

- L2 / dropout: reachable as named defenses (config overrides), refused when unknown;
- adversarial regularization: lambda > 0 changes the trained weights against lambda = 0 with
  the same seed, the inference model's loss is logged per epoch, other voices as reference;
- DP-SGD: batch norm becomes group norm (recorded, the checkpoint loads back bit-exact), a
  finite epsilon at delta = min(delta, 1/(10 n)) in ``model.json`` and the history with what
  it covers, per-window clipping active; refused together with advreg.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from corpora.audio import read_audio
from models.asr.config import ConfigError, resolve_config
from models.asr.data import TrainingDataError, load_training_data
from models.asr.defenses import reference_utterances, voice_defense
from models.asr.recognizer import load_recognizer
from models.asr.train import train_recognizer
from models.asr.trainer import FrameTrainer
from models.privacy.registry import UnknownDefenseError

from .conftest import TONE_CONFIG

#: Shorter than the shared tone config: the tests compare trainings, not accuracy.
FAST = copy.deepcopy(TONE_CONFIG)
FAST["training"] |= {"epochs": 2, "realign_iterations": 0, "tune_decoding": False, "patience": 9}


def _with(defense: str) -> dict:
    from models.asr.config import merge_config

    return merge_config(resolve_config(FAST), voice_defense(defense).config)


def test_named_defenses_map_to_recognizer_settings():
    assert voice_defense("none").config == {} and voice_defense("none").output == "full"
    assert _with("l2:weight_decay=0.005")["training"]["weight_decay"] == 0.005
    assert _with("dropout:p=0.3")["network"]["dropout"] == 0.3
    adv = _with("advreg:lam=2")["training"]["advreg"]
    assert adv["lam"] == 2.0 and adv["k_steps"] == 1
    dp = _with("dpsgd:noise_multiplier=0.7")["training"]["dpsgd"]
    assert dp["enabled"] and dp["noise_multiplier"] == 0.7 and dp["delta"] == 1e-5
    assert voice_defense("topk:k=2").output == "topk:k=2"  # the device's --output, same spelling
    assert voice_defense("rounding").output == "rounding:decimals=1"  # defaults spelled out
    assert voice_defense("label_only").output == "label_only"


def test_combinations_merge_training_overrides_and_take_the_serving_output():
    d = voice_defense("dpsgd:noise_multiplier=0.5+dropout:p=0.2+label_only")
    assert d.name == "dpsgd+dropout+label_only" and d.stage == "train+serve"
    assert d.config["training"]["dpsgd"]["noise_multiplier"] == 0.5
    assert d.config["network"] == {"dropout": 0.2} and d.output == "label_only"
    assert d.params["dropout"] == {"p": 0.2}
    assert voice_defense("l2+dropout").output == "full"


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("gradient_masking", UnknownDefenseError, "unknown defense 'gradient_masking'"),
        (
            "l2+transcript_only",
            UnknownDefenseError,
            "'transcript_only' is an old name: write 'label_only'",
        ),
        ("stacking", ValueError, "not available on the voice path"),
        ("augment+l2", ValueError, "'augment' is not available on the voice path"),
        ("topk+rounding", ValueError, "at most one serving defense"),
        ("l2:lam=1", ValueError, "no parameter"),
        ("advreg:ref_fraction=0.5", ValueError, "does not apply to the voice path"),
        ("dropout:p=1.5", ValueError, r"\[0, 1\)"),
        ("advreg+dpsgd", ValueError, "inference model is trained on the training records without"),
    ],
)
def test_unknown_or_unsupported_defenses_are_refused(spec, error, match):
    with pytest.raises(error, match=match):
        voice_defense(spec)


def _train(corpus, config, tmp_path, name, **kw):
    torch.set_num_threads(1)
    out = tmp_path / name
    rec, report = train_recognizer(corpus, config, seed=5, out_dir=out, progress=False, **kw)
    return rec, report, out


def _weights(out) -> dict:
    return load_file(str(out / "model.safetensors"))


def test_advreg_changes_training_and_logs_the_inference_loss(tone_corpus, tmp_path):
    base = _with("none")
    base["training"]["advreg"]["warmup_epochs"] = 0
    _, rep0, out0 = _train(tone_corpus, base, tmp_path, "lam0")
    again = _train(tone_corpus, base, tmp_path, "lam0_again")[2]
    adv = copy.deepcopy(base)
    adv["training"]["advreg"]["lam"] = 3.0
    _, rep1, out1 = _train(tone_corpus, adv, tmp_path, "lam3")
    w0, w0b, w1 = _weights(out0), _weights(again), _weights(out1)
    assert all(torch.equal(w0[k], w0b[k]) for k in w0)  # training is deterministic
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)  # ... and the game changes it
    assert "advreg_attack_loss" not in rep0["epochs"][0]
    losses = [e["advreg_attack_loss"] for e in rep1["epochs"]]
    assert all(np.isfinite(losses)) and all(0.0 < v < 2.0 for v in losses)
    assert all(e["advreg_penalty"] > 0 for e in rep1["epochs"])  # lam * mean -log(1 - h) > 0
    meta = json.loads((out1 / "model.json").read_text())["training"]["defenses"]["advreg"]
    assert meta["lam"] == 3.0 and meta["reference"] == "dev" and meta["reference_utterances"] == 3
    data = json.loads((out1 / "data.json").read_text())
    assert sorted(data["advreg_reference"]) == sorted(data["dev"])


def test_advreg_reference_speakers(tone_corpus, tmp_path):
    members = [u for u in tone_corpus if u.speaker != "spk2"]
    others = [u for u in tone_corpus if u.speaker == "spk2"]
    cfg = _with("advreg:lam=1,warmup_epochs=0")
    cfg["training"]["advreg"] |= {"reference": "speakers", "reference_speakers": ["spk2"]}
    cfg["training"]["epochs"] = 1
    with pytest.raises(TrainingDataError, match="no reference utterances were given"):
        train_recognizer(members, cfg, seed=0, progress=False)
    with pytest.raises(TrainingDataError, match="reference speakers are training speakers"):
        train_recognizer(members, cfg, seed=0, progress=False, reference=tone_corpus)
    _, _, out = _train(members, cfg, tmp_path, "ref_spk", reference=others)
    meta = json.loads((out / "model.json").read_text())["training"]["defenses"]["advreg"]
    assert meta["reference_speakers"] == ["spk2"] and meta["reference_utterances"] == 6


def test_reference_utterances_from_the_manifest(tone_corpus, tmp_path):
    from corpora.manifest import write_manifest

    manifest = write_manifest(tmp_path / "m.jsonl", tone_corpus)
    cfg = {"training": {"advreg": {"lam": 1.0, "reference": "speakers"}}}
    with pytest.raises(ValueError, match="reference_speakers is empty"):
        reference_utterances(manifest, cfg)
    cfg["training"]["advreg"]["reference_speakers"] = ["spk1"]
    assert {u.speaker for u in reference_utterances(manifest, cfg)} == {"spk1"}
    assert reference_utterances(manifest, {}) is None  # advreg off


def test_advreg_with_dpsgd_is_refused_in_a_config_too():
    with pytest.raises(ConfigError, match="inference model is trained on the training records"):
        resolve_config({"training": {"advreg": {"lam": 1.0}, "dpsgd": {"enabled": True}}})
    with pytest.raises(ConfigError, match=r"training.dpsgd.delta: must be in \(0, 1\)"):
        resolve_config({"training": {"dpsgd": {"enabled": True, "delta": 1.0}}})


@pytest.mark.parametrize("delta_max", [1e-5, 0.01, 1e-9])
def test_dpsgd_delta_is_well_below_one_over_the_training_windows(tone_corpus, delta_max):
    torch.set_num_threads(1)
    cfg = _with(f"dpsgd:delta={delta_max}")
    trainer = FrameTrainer(load_training_data(tone_corpus, cfg, 0), cfg, 0)
    n = len(trainer.frames)  # one record per training frame: its spliced window
    assert n == sum(f.shape[0] for f in trainer.train.feats)
    assert trainer.delta == min(delta_max, 1 / (10 * n)) and trainer.delta <= 0.1 / n


def test_dpsgd_epsilon_group_norm_and_round_trip(tone_corpus, tmp_path):
    cfg = _with("dpsgd:noise_multiplier=1.0,max_grad_norm=1.0")
    rec, report, out = _train(tone_corpus, cfg, tmp_path, "dp")
    doc = json.loads((out / "model.json").read_text())
    arch = doc["architecture"]
    assert arch["norm"] == "group" and arch["norm_groups"] == [32, 32]  # BatchNorm was fixed
    dp = doc["training"]["defenses"]["dpsgd"]
    assert 0.0 < dp["epsilon"] < float("inf") and dp["module_fixed"] and dp["steps"] > 0
    n = doc["training"]["train_frames"]
    assert dp["n_records"] == n and dp["delta"] == min(1e-5, 1 / (10 * n))
    assert dp["delta_max"] == 1e-5 and dp["accountant"] == "rdp"
    context = doc["config"]["features"]["context"]
    assert dp["frames_per_window"] == 2 * context + 1 == 11
    covers = dp["epsilon_covers"]
    assert "per spliced training window of 11 frames (record-level)" in covers
    assert "not per frame (a 10 ms frame is in up to 11 windows)" in covers
    assert "not per speaker" in covers
    not_covered = " | ".join(dp["not_covered"])
    for item in (
        "CMVN statistics",
        "HMM state priors",
        "HMM transition probabilities",
        "phone bigram LM",
    ):
        assert item in not_covered
    eps = [e["epsilon"] for e in report["epochs"]]
    assert eps == sorted(eps) and eps[-1] == pytest.approx(dp["epsilon"])  # grows per epoch
    assert not any("_module" in k for k in _weights(out))  # the bare network is saved
    loaded = load_recognizer(out)  # rebuilt with GroupNorm from model.json, no pickle
    assert isinstance(loaded.network.layers[1], torch.nn.GroupNorm)
    samples, sr = read_audio(tone_corpus[0].path)
    assert loaded.transcribe(samples, sr).to_dict() == rec.transcribe(samples, sr).to_dict()


def test_dpsgd_clips_each_frame_gradient(tone_corpus):
    """After clipping, the summed gradient of B frames has norm <= B * C; unclipped it is larger."""
    torch.set_num_threads(1)
    cfg = _with("dpsgd:noise_multiplier=0,max_grad_norm=0.01")
    cfg["training"]["dpsgd"]["grad_sample_mode"] = "hooks"  # per-frame gradients kept
    trainer = FrameTrainer(load_training_data(tone_corpus, cfg, 0), cfg, 0)
    idx = torch.arange(64)
    x, y = trainer.frames.gather(idx), trainer.targets[idx]
    loss = trainer.loss_fn(trainer.model(x), y)
    loss.backward()
    params = [p for p in trainer.network.parameters() if p.requires_grad]
    assert all(p.grad_sample.shape[0] == 64 for p in params)  # per-frame gradients exist
    per_frame = (
        torch.stack([p.grad_sample.reshape(64, -1).norm(dim=1) ** 2 for p in params]).sum(0).sqrt()
    )  # (64,) each frame's gradient norm (x batch size: mean reduction)
    assert (per_frame > 0.01).all()
    trainer.optimizer.clip_and_accumulate()
    summed = torch.cat([p.summed_grad.flatten() for p in params]).norm()
    assert summed <= 64 * 0.01 + 1e-6
    unclipped = torch.cat([p.grad_sample.sum(0).flatten() for p in params]).norm()
    assert unclipped > 64 * 0.01


def test_ghost_clipping_gives_the_hooks_clipped_gradient(tone_corpus):
    """Fast gradient clipping (the default) sums the same clipped per-frame gradients."""
    torch.set_num_threads(1)
    grads = {}
    for mode in ("hooks", "ghost"):
        cfg = _with("dpsgd:noise_multiplier=0,max_grad_norm=0.05")
        cfg["training"]["dpsgd"]["grad_sample_mode"] = mode
        torch.manual_seed(0)
        trainer = FrameTrainer(load_training_data(tone_corpus, cfg, 0), cfg, 0)
        assert (trainer.dp.criterion is not None) == (mode == "ghost")
        idx = torch.arange(64)
        before = [p.detach().clone() for p in trainer.network.parameters()]
        trainer.optimizer.original_optimizer.param_groups[0]["lr"] = 0.0  # look, do not move
        trainer.step(idx)
        assert all(
            torch.equal(a, b) for a, b in zip(before, trainer.network.parameters(), strict=True)
        )
        grads[mode] = torch.cat([p.grad.flatten() for p in trainer.network.parameters()])
    assert torch.allclose(grads["hooks"], grads["ghost"], rtol=1e-3, atol=1e-6)


def test_advreg_keeps_a_model_trained_with_the_game(tone_corpus, tmp_path):
    """Early stopping must not fall back to an undefended warm-up epoch."""
    cfg = _with("advreg:lam=3,warmup_epochs=1")
    cfg["training"]["epochs"] = 3
    _, report, _ = _train(tone_corpus, cfg, tmp_path, "warm")
    assert report["kept_epoch"] >= 2
    assert np.isnan(report["epochs"][0]["advreg_attack_loss"])  # warm-up: no game
