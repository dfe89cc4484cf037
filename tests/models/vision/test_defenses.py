"""Training-time and model-stage defenses of ``train_cnn`` change training as claimed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.vision.cnn import StackedCNN
from models.vision.train import (
    augment_batch,
    load_cnn,
    predict_proba,
    read_cnn_json,
    save_cnn,
    train_cnn,
)

torch.set_num_threads(1)
SMALL = {"conv_channels": [4, 8], "fc_size": 16, "epochs": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8)
    return x, rng.integers(0, 10, 96)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_dpsgd_reports_a_finite_growing_epsilon_and_changes_training(data):
    x, y = data
    plain, _ = train_cnn(x, y, SMALL, seed=0, progress=False)
    cfg = {**SMALL, "dpsgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}}
    model, hist = train_cnn(x, y, cfg, seed=0, progress=False)
    eps = hist["epsilon"]
    assert len(eps) == 2 and all(math.isfinite(e) and e > 0 for e in eps) and eps[1] > eps[0]
    assert hist["epsilon_final"] == eps[-1] and hist["delta"] == 1e-5
    assert not torch.allclose(_weights(plain), _weights(model))
    assert not hasattr(next(model.parameters()), "grad_sample")  # Opacus hooks released
    again, hist2 = train_cnn(x, y, cfg, seed=0, progress=False)
    torch.testing.assert_close(_weights(model), _weights(again))  # seeded noise and sampling
    assert hist2["epsilon"] == eps


def test_dpsgd_delta_stays_well_below_one_over_n_and_states_its_unit(data):
    x, y = data
    cfg = {**SMALL, "epochs": 1, "dpsgd": {"noise_multiplier": 1.0, "delta": 0.1}}
    _, hist = train_cnn(x, y, cfg, seed=0, progress=False)
    assert hist["delta"] == 1.0 / (10 * len(x))  # the 0.1 asked for promises nothing at this n
    assert hist["dp"]["delta"] == hist["delta"] and hist["dp"]["n_records"] == len(x)
    assert hist["dp"]["epsilon"] == hist["epsilon_final"]
    assert "per training image" in hist["dp"]["epsilon_covers"]


def test_dpsgd_checkpoint_round_trip(data, tmp_path):
    x, y = data
    cfg = {**SMALL, "epochs": 1, "dpsgd": {"noise_multiplier": 0.5}}
    model, _ = train_cnn(x, y, cfg, seed=1, progress=False)
    save_cnn(model, cfg, tmp_path / "ck")
    assert read_cnn_json(tmp_path / "ck")["config"]["dpsgd"]["max_grad_norm"] == 1.0
    np.testing.assert_allclose(
        predict_proba(load_cnn(tmp_path / "ck"), x[:5]), predict_proba(model, x[:5])
    )


def test_advreg_needs_an_outside_reference_plays_the_game_and_lam_matters(data):
    x, y = data
    cfg = {**SMALL, "advreg": {"lam": 0.0}}
    with pytest.raises(ValueError, match="advreg needs x_ref, y_ref"):
        train_cnn(x, y, cfg, seed=0, progress=False)  # nothing is carved out of x
    rng = np.random.default_rng(1)
    ref = {
        "x_ref": rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        "y_ref": rng.integers(0, 10, 10),
    }
    m0, h0 = train_cnn(x, y, cfg, seed=0, progress=False, **ref)
    assert h0["n_ref"] == 10 and h0["n_train"] == 96 and len(h0["attack_gain"]) == 2
    cfg["advreg"]["lam"] = 5.0
    m5, _ = train_cnn(x, y, cfg, seed=0, progress=False, **ref)
    assert not torch.allclose(_weights(m0), _weights(m5))  # the penalty moved the classifier


def test_stacking_is_one_model_with_disjoint_parts_and_round_trips(data, tmp_path):
    x, y = data
    cfg = {**SMALL, "stacking": {"n_first": 2, "meta_epochs": 3}}
    model, hist = train_cnn(x, y, cfg, seed=0, x_val=x[:8], y_val=y[:8], progress=False)
    assert isinstance(model, StackedCNN) and len(model.first) == 2
    assert [f["n_train"] for f in hist["first_level"]] == [32, 32] and hist["meta_n_train"] == 32
    proba = predict_proba(model, x[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    save_cnn(model, cfg, tmp_path / "stacked")
    assert read_cnn_json(tmp_path / "stacked")["arch"]["stacking"]["n_first"] == 2
    np.testing.assert_allclose(predict_proba(load_cnn(tmp_path / "stacked"), x[:5]), proba)
    a, b = (_weights(m) for m in model.first)
    assert not torch.allclose(a, b)  # different parts, different seeds


@pytest.mark.parametrize(
    "change, message",
    [
        ({"advreg": {"lam": 1.0}, "dpsgd": {}}, "cannot be combined"),
        ({"dpsgd": {"noise": 1.0}}, "no parameter"),
        ({"advreg": {"lam": -1.0}}, "lam"),
        ({"dpsgd": {"max_grad_norm": 0.0}}, "max_grad_norm"),
        ({"stacking": {"n_first": 0}}, "n_first"),
        ({"augment": {"crop": -1}}, "crop >= 0"),
        ({"augment": {"rotate": 10}}, "no parameter"),
    ],
)
def test_bad_defense_configs_are_refused(data, change, message):
    x, y = data
    with pytest.raises(ValueError, match=message):
        train_cnn(x, y, {**SMALL, **change}, seed=0, progress=False)


def test_augment_batch_mirrors_and_shifts_each_image_within_the_padding():
    xb = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) + 1  # no zeros
    gen = torch.Generator().manual_seed(0)
    flipped = [augment_batch(xb, True, 0, gen) for _ in range(20)]
    for out in flipped:  # each image is itself or its mirror, never anything else
        for i in range(2):
            assert torch.equal(out[i], xb[i]) or torch.equal(out[i], xb[i].flip(2))
    assert any(not torch.equal(out, xb) for out in flipped)
    cropped = augment_batch(xb, False, 2, torch.Generator().manual_seed(1))
    assert cropped.shape == xb.shape
    for i in range(2):  # a shifted window of the zero-padded image: find the offset
        padded = torch.nn.functional.pad(xb[i], (2, 2, 2, 2))
        assert any(
            torch.equal(cropped[i], padded[:, dy : dy + 4, dx : dx + 5])
            for dy in range(5)
            for dx in range(5)
        )
    again = augment_batch(xb, True, 2, torch.Generator().manual_seed(1))
    assert torch.equal(again, augment_batch(xb, True, 2, torch.Generator().manual_seed(1)))


def test_augment_changes_training_and_is_seeded(data):
    x, y = data
    plain, _ = train_cnn(x, y, SMALL, seed=0, progress=False)
    cfg = {**SMALL, "augment": {"flip": True, "crop": 4}}
    model, hist = train_cnn(x, y, cfg, seed=0, progress=False)
    assert hist["config"]["augment"] == {"flip": True, "crop": 4}
    assert not torch.allclose(_weights(plain), _weights(model))
    again, _ = train_cnn(x, y, cfg, seed=0, progress=False)
    torch.testing.assert_close(_weights(model), _weights(again))
