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

from models.privacy.registry import get_defense

#: Architecture keys and their defaults (documented in the module docstring).
DEFAULT_ARCH: dict = {
    "n_classes": 10,
    "in_channels": 3,
    "image_size": 32,  # pixels (square images)
    "conv_channels": [32, 64],  # filters of the two conv layers
    "kernel_size": 5,  # pixels
    "fc_size": 128,
    "dropout": 0.0,  # dropout probability before the FC layer and the output layer
    # ML-Leaks model stacking (StackedCNN): None, or {"n_first": first-level CNNs,
    # "meta_epochs": epochs of the meta-classifier} (models.privacy.registry "stacking")
    "stacking": None,
}
#: Hidden units of the stacking meta-classifier.
META_HIDDEN = 64


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
    if arch["stacking"] is not None:
        arch["stacking"] = get_defense("stacking").params(arch["stacking"])
        if arch["stacking"]["n_first"] < 1:
            raise ValueError(f"stacking needs n_first >= 1, got {arch['stacking']['n_first']}")
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


class StackedCNN(nn.Module):
    """ML-Leaks model stacking (Salem et al. 2019, defense 2) as one network.

    ``n_first`` first-level :class:`CifarCNN` s (each trained on its own disjoint part of the
    training set) answer softmax vectors; their concatenation goes through a meta-classifier
    (``Linear(n_first * C, 64)``, tanh, ``Linear(64, C)``) trained on a further disjoint part.
    The output is the meta-classifier's logits, so the stacked model is queried exactly like a
    single CNN. Training: :func:`models.vision.train.train_cnn` with ``stacking`` set.

    Parameters
    ----------
    n_first : int
        First-level CNNs.
    **cnn
        :class:`CifarCNN` parameters shared by the first-level networks.

    Examples
    --------
    >>> net = StackedCNN(2)
    >>> net(torch.zeros(4, 3, 32, 32)).shape
    torch.Size([4, 10])
    """

    def __init__(self, n_first: int = 2, **cnn):
        super().__init__()
        self.first = nn.ModuleList(CifarCNN(**cnn) for _ in range(n_first))
        n_classes = self.first[0].classifier[-1].out_features
        self.classifier = nn.Sequential(  # the meta-classifier
            nn.Linear(n_first * n_classes, META_HIDDEN),
            nn.Tanh(),
            nn.Linear(META_HIDDEN, n_classes),
        )

    def first_level(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated first-level softmax vectors ``(n, n_first * C)`` of images ``(n, C, H, W)``."""
        return torch.cat([torch.softmax(m(x), dim=1) for m in self.first], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Meta-classifier logits ``(n, n_classes)`` of images ``(n, C, H, W)``."""
        return self.classifier(self.first_level(x))


def build_cnn(config: dict) -> CifarCNN | StackedCNN:
    """A freshly initialised network from a config dict (see :func:`arch_from_config`).

    A :class:`StackedCNN` when ``stacking`` is set, else a :class:`CifarCNN`.
    """
    arch = arch_from_config(config)
    stacking = arch.pop("stacking")
    if stacking is None:
        return CifarCNN(**arch)
    return StackedCNN(stacking["n_first"], **arch)
