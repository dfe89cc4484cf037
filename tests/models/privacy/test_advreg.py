"""Nasr et al.'s adversarial regularization: the inference model, its game, and one definition
of what it sees (eval-mode classifier outputs) shared by the CIFAR-10 and voice trainers."""

import numpy as np
import torch
from torch import nn

from models.privacy.advreg import AdversarialRegularizer, InferenceModel, inference_input

torch.set_num_threads(1)


def test_inference_model_shapes():
    h = InferenceModel(5)
    assert h(torch.rand(7, 5), torch.eye(5)[torch.arange(7) % 5]).shape == (7,)


def test_attack_step_learns_separable_members():
    torch.manual_seed(0)
    n, c = 128, 4
    labels = torch.randint(0, c, (n,))
    member_logits = 8.0 * nn.functional.one_hot(labels, c).float()  # confident on members
    ref_logits = torch.randn(n, c) * 0.1  # unsure on non-members
    reg = AdversarialRegularizer(c, lam=1.0, attack_lr=0.01, seed=0)
    first = reg.inference_loss(member_logits, labels, ref_logits, labels).item()
    for _ in range(200):
        reg.attack_step(member_logits, labels, ref_logits, labels)
    last = reg.inference_loss(member_logits, labels, ref_logits, labels).item()
    assert last < 0.2 < first
    assert reg.last_gain is not None and reg.last_gain > -0.2


def _classifier_grads(lam, steps=50):
    torch.manual_seed(1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    net = nn.Linear(6, 3)
    xr, yr = torch.randn(32, 6), torch.randint(0, 3, (32,))
    reg = AdversarialRegularizer(3, lam=lam, attack_lr=0.01, seed=0)
    for _ in range(steps):
        reg.attack_step(net(x), y, net(xr), yr)
    net.zero_grad()
    logits = net(x)
    (nn.functional.cross_entropy(logits, y) + reg.penalty(logits, y)).backward()
    return net.weight.grad.clone()


def test_penalty_changes_classifier_gradient_and_lam_zero_is_plain_ce():
    torch.manual_seed(1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    net = nn.Linear(6, 3)
    nn.functional.cross_entropy(net(x), y).backward()
    plain = net.weight.grad.clone()
    torch.testing.assert_close(_classifier_grads(0.0), plain)
    assert not torch.allclose(_classifier_grads(5.0), plain)


def test_seeded_and_does_not_touch_global_rng():
    torch.manual_seed(3)
    a = AdversarialRegularizer(4, seed=7)
    after_a = torch.rand(1)
    torch.manual_seed(3)
    b = AdversarialRegularizer(4, seed=7)
    after_b = torch.rand(1)
    torch.manual_seed(3)
    expected = torch.rand(1)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert after_a == after_b == expected


def test_inference_input_is_the_deterministic_eval_mode_answer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5), nn.Linear(32, 3)).train()
    x = torch.randn(16, 6)
    first, second = inference_input(net, x), inference_input(net, x)
    assert net.training  # the caller's mode is restored
    assert torch.equal(first, second) and not first.requires_grad
    torch.testing.assert_close(first, net.eval()(x).detach())
    assert not torch.equal(net.train()(x), net(x))  # training-mode answers are random


def _spy_on_the_game(monkeypatch) -> dict:
    """Count ``max_steps`` calls and keep every classifier output ``attack_step`` receives."""
    seen = {"max_steps": 0, "inputs": []}
    max_steps, attack_step = AdversarialRegularizer.max_steps, AdversarialRegularizer.attack_step

    def count(self, *args, **kwargs):
        seen["max_steps"] += 1
        return max_steps(self, *args, **kwargs)

    def keep(self, member_logits, member_labels, ref_logits, ref_labels):
        seen["inputs"] += [member_logits, ref_logits]
        return attack_step(self, member_logits, member_labels, ref_logits, ref_labels)

    monkeypatch.setattr(AdversarialRegularizer, "max_steps", count)
    monkeypatch.setattr(AdversarialRegularizer, "attack_step", keep)
    return seen


def _record_forwards(network: nn.Module, forwards: list) -> None:
    """Append ``(training, output)`` of every forward pass of ``network`` to ``forwards``."""
    network.register_forward_hook(lambda module, _, out: forwards.append((module.training, out)))


def _assert_eval_mode_inputs(seen: dict, forwards: list) -> None:
    assert seen["max_steps"] > 0 and seen["inputs"]
    for given in seen["inputs"]:  # each came out of one forward pass, made in eval mode
        assert [training for training, out in forwards if out is given] == [False]


def test_cifar_trainer_feeds_the_inference_model_eval_mode_outputs(monkeypatch):
    """With dropout on, the inference model still sees the deterministic served answers."""
    from models.vision import trainer
    from models.vision.train import train_cnn

    forwards: list = []
    seen = _spy_on_the_game(monkeypatch)
    build = trainer.build_cnn

    def build_recorded(cfg):
        model = build(cfg)
        _record_forwards(model, forwards)
        return model

    monkeypatch.setattr(trainer, "build_cnn", build_recorded)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    cfg = {
        "conv_channels": [4, 8],
        "fc_size": 16,
        "epochs": 1,
        "batch_size": 16,
        "dropout": 0.5,
        "advreg": {"lam": 1.0, "k_steps": 2},
    }
    train_cnn(
        x[:30],
        rng.integers(0, 10, 30),
        cfg,
        seed=0,
        x_ref=x[30:],
        y_ref=rng.integers(0, 10, 10),
        progress=False,
    )
    assert seen["max_steps"] == 2  # one per batch of 16 (30 records)
    assert len(seen["inputs"]) == 2 * 2 * 2  # 2 batches x 2 steps x (members, references)
    _assert_eval_mode_inputs(seen, forwards)


def test_voice_trainer_feeds_the_inference_model_eval_mode_outputs(monkeypatch, tmp_path):
    """The recognizer's frame classifier goes through the same function, dropout on."""
    from models.asr.config import merge_config, resolve_config
    from models.asr.data import load_training_data
    from models.asr.defenses import voice_defense
    from models.asr.trainer import FrameTrainer

    from ..asr.conftest import TONE_CONFIG, make_tone_corpus

    torch.manual_seed(0)
    corpus = make_tone_corpus(tmp_path, speakers=2, utts_per_speaker=4, seed=0)
    cfg = merge_config(
        resolve_config(TONE_CONFIG),
        voice_defense("advreg:lam=1,warmup_epochs=0+dropout:p=0.5").config,
    )
    trainer = FrameTrainer(load_training_data(corpus, cfg, 0), cfg, 0)
    forwards: list = []
    seen = _spy_on_the_game(monkeypatch)
    _record_forwards(trainer.network, forwards)
    trainer.network.train()
    trainer.step(torch.arange(64))
    assert seen["max_steps"] == 1
    _assert_eval_mode_inputs(seen, forwards)
