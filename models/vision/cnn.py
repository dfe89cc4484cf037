"""The reference paper's CIFAR-10 target CNN.

Section 4.2.3 of the reference paper: "a standard convolutional neural network (CNN) with two
convolution and max pooling layers plus a fully connected layer of size 128 and a SoftMax
layer", tanh activations. The paper gives neither filter counts nor kernel sizes; our defaults,
32 then 64 filters of 5x5 ("same" padding), 2x2 max-pooling, FC 128, tanh, are a common choice
in public membership-inference code for this network (not checked against the authors' code,
which is not public); ``conv_channels`` and ``kernel_size`` are configurable. The softmax layer is applied by :func:`models.vision.train.predict_proba`
(training uses cross-entropy on the logits, which is the same softmax layer).

The architecture is fully described by a plain dict (:data:`DEFAULT_ARCH`) so that checkpoints
(``model.json``) and parallel workers carry it as JSON.
"""

from __future__ import annotations

import torch
from torch import nn

#: Architecture keys and their defaults (documented in the module docstring).
DEFAULT_ARCH: dict = {
    "n_classes": 10,
    "in_channels": 3,
    "image_size": 32,  # pixels (square images)
    "conv_channels": [32, 64],  # filters of the two conv layers
    "kernel_size": 5,  # pixels
    "fc_size": 128,
    "dropout": 0.0,  # dropout probability before the FC layer and the output layer
}


def arch_from_config(config: dict) -> dict:
    """The architecture dict: :data:`DEFAULT_ARCH` updated with the matching keys of ``config``.

    Unrelated keys (optimiser settings, epochs, ...) are ignored.
    """
    arch = {k: config.get(k, v) for k, v in DEFAULT_ARCH.items()}
    arch["conv_channels"] = [int(c) for c in arch["conv_channels"]]
    if len(arch["conv_channels"]) != 2:
        raise ValueError(f"conv_channels must name 2 layers, got {arch['conv_channels']}")
    if arch["kernel_size"] % 2 != 1:
        raise ValueError(f"kernel_size must be odd ('same' padding), got {arch['kernel_size']}")
    if not 0.0 <= float(arch["dropout"]) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {arch['dropout']}")
    return arch


class CifarCNN(nn.Module):
    """Two conv + max-pool layers, tanh, FC ``fc_size``, linear output (logits).

    Parameters
    ----------
    n_classes, in_channels, image_size, conv_channels, kernel_size, fc_size, dropout
        See :data:`DEFAULT_ARCH`.

    Examples
    --------
    >>> net = CifarCNN()
    >>> net(torch.zeros(4, 3, 32, 32)).shape
    torch.Size([4, 10])
    """

    def __init__(
        self,
        n_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        conv_channels: tuple[int, int] | list[int] = (32, 64),
        kernel_size: int = 5,
        fc_size: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        c1, c2 = conv_channels
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding=pad),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size, padding=pad),
            nn.Tanh(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4  # two 2x2 poolings
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c2 * side * side, fc_size),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(fc_size, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, n_classes)`` from images ``(n, C, H, W)`` scaled to [0, 1]."""
        return self.classifier(self.features(x))


def build_cnn(config: dict) -> CifarCNN:
    """A freshly initialised :class:`CifarCNN` from a config dict (see :func:`arch_from_config`)."""
    return CifarCNN(**arch_from_config(config))
