"""Training the reference CNN: it learns, decays its learning rate, is seeded, and round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.vision.train import load_cnn, predict_logits, predict_proba, save_cnn, train_cnn

SMALL = {"conv_channels": [8, 16], "fc_size": 32, "batch_size": 10, "num_threads": 1}


def _random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def test_cnn_memorises_fifty_random_images_and_logs_every_epoch():
    x, y = _random_images(50, 0)
    xv, yv = _random_images(20, 1)
    model, hist = train_cnn(
        x, y, {**SMALL, "epochs": 25}, seed=0, x_val=xv, y_val=yv, progress=False
    )
    assert hist["epoch"] == list(range(1, 26))
    assert len(hist["train_acc"]) == len(hist["val_acc"]) == len(hist["seconds"]) == 25
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["final"]["train_acc"] == 1.0  # random labels: only memorisation gets there
    assert hist["final"]["val_acc"] < 0.5  # and it does not generalise
    assert (predict_proba(model, x).argmax(1) == y).all()
    assert hist["n_train"] == 50 and len(hist["train_fingerprint"]) == 64


def test_learning_rate_follows_keras_time_decay():
    x, y = _random_images(30, 0)
    _, hist = train_cnn(x, y, {**SMALL, "epochs": 2, "lr_decay": 0.01}, seed=0, progress=False)
    steps = np.array([3, 6])  # 30 images / batch 10 = 3 steps per epoch
    np.testing.assert_allclose(hist["lr"], 0.001 / (1 + 0.01 * steps))


def test_same_seed_same_model_other_seed_other_model():
    x, y = _random_images(20, 0)
    cfg = {**SMALL, "epochs": 2, "dropout": 0.3}
    a, _ = train_cnn(x, y, cfg, seed=5, progress=False)
    b, _ = train_cnn(x, y, cfg, seed=5, progress=False)
    c, _ = train_cnn(x, y, cfg, seed=6, progress=False)
    assert np.array_equal(predict_logits(a, x), predict_logits(b, x))
    assert not np.allclose(predict_logits(a, x), predict_logits(c, x))


def test_weight_decay_shrinks_the_weights():
    x, y = _random_images(40, 0)
    norms = []
    for wd in (0.0, 0.05):
        model, _ = train_cnn(
            x, y, {**SMALL, "epochs": 3, "weight_decay": wd}, seed=0, progress=False
        )
        norms.append(sum(float(p.detach().norm() ** 2) for p in model.parameters()))
    assert norms[1] < norms[0]


def test_early_stopping_stops_on_rising_validation_loss():
    x, y = _random_images(40, 0)
    xv, yv = _random_images(40, 1)
    _, hist = train_cnn(
        x,
        y,
        {**SMALL, "epochs": 40, "early_stopping_patience": 2},
        seed=0,
        x_val=xv,
        y_val=yv,
        progress=False,
    )
    assert len(hist["epoch"]) < 40
    with pytest.raises(ValueError, match="needs x_val"):
        train_cnn(x, y, {**SMALL, "epochs": 1, "early_stopping_patience": 2}, seed=0)


def test_bad_inputs_are_refused():
    x, y = _random_images(10, 0)
    with pytest.raises(ValueError, match="unknown CNN config key"):
        train_cnn(x, y, {"epoch": 3}, seed=0)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        train_cnn(x, y[:9], SMALL, seed=0)
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
        predict_proba(train_cnn(x, y, {**SMALL, "epochs": 1}, seed=0, progress=False)[0], x[0])


def test_probabilities_and_checkpoint_round_trip(tmp_path):
    x, y = _random_images(20, 0)
    cfg = {**SMALL, "epochs": 2}
    model, hist = train_cnn(x, y, cfg, seed=0, progress=False)
    p = predict_proba(model, x)
    assert p.shape == (20, 10)
    np.testing.assert_allclose(p.sum(1), 1.0)
    out = save_cnn(model, cfg, tmp_path / "ckpt", meta={"history": hist["final"]})
    assert sorted(f.name for f in out.iterdir()) == ["model.json", "model.safetensors"]
    doc = json.loads((out / "model.json").read_text())
    assert doc["arch"]["conv_channels"] == [8, 16] and doc["meta"]["history"] == hist["final"]
    again = load_cnn(out)
    assert np.array_equal(predict_logits(again, x), predict_logits(model, x))
    # weights that do not fit the described architecture are refused
    doc["arch"]["fc_size"] = 64
    (out / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="weights do not match"):
        load_cnn(out)


def test_float_images_in_unit_range_equal_uint8_images():
    x, y = _random_images(8, 0)
    model, _ = train_cnn(x, y, {**SMALL, "epochs": 1}, seed=0, progress=False)
    torch.testing.assert_close(
        torch.from_numpy(predict_logits(model, x.astype(np.float32) / 255.0)),
        torch.from_numpy(predict_logits(model, x)),
    )
