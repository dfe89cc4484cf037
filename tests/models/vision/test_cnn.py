"""The reference CNN: shapes, configurable layers, refused configurations."""

from __future__ import annotations

import pytest
import torch

from models.vision.cnn import DEFAULT_ARCH, CifarCNN, arch_from_config, build_cnn


def test_default_network_maps_cifar_images_to_ten_logits():
    net = build_cnn({})
    assert net(torch.rand(5, 3, 32, 32)).shape == (5, 10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (64, (5, 5))]
    fcs = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [f.out_features for f in fcs] == [128, 10]
    assert fcs[0].in_features == 64 * 8 * 8  # two 2x2 poolings of 32x32
    assert sum(isinstance(m, torch.nn.Tanh) for m in net.modules()) == 3
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2


def test_layers_follow_the_config_and_unrelated_keys_are_ignored():
    net = build_cnn(
        {
            "conv_channels": [8, 16],
            "fc_size": 32,
            "n_classes": 4,
            "image_size": 16,
            "kernel_size": 3,
            "dropout": 0.5,
            "epochs": 7,
        }
    )
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 4)
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    assert isinstance(net, CifarCNN)


def test_dropout_is_only_active_in_training_mode():
    net = build_cnn({"dropout": 0.5}).eval()
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conv_channels": [8]}, "2 layers"),
        ({"kernel_size": 4}, "odd"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_architecture_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        arch_from_config({**DEFAULT_ARCH, **change})
