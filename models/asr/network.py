"""The acoustic network of the hybrid recognizer: a PyTorch-Kaldi-style frame MLP.

Input: spliced, normalised fbank frames; output: logits over HMM states. Each hidden layer is
Linear -> BatchNorm (optional) -> ReLU -> Dropout. The architecture is described by a plain
dict (stored in ``model.json``) so a checkpoint rebuilds it without pickled code.
"""

from __future__ import annotations

import torch
from torch import nn


class FrameMlp(nn.Module):
    """MLP from spliced frames to HMM-state logits.

    Parameters
    ----------
    input_dim : features per frame after splicing.
    n_states : HMM states (output classes).
    hidden : hidden layer widths, e.g. ``[1024] * 4``.
    dropout : dropout probability after each hidden layer.
    batch_norm : whether each hidden layer has batch normalisation.
    """

    def __init__(
        self,
        input_dim: int,
        n_states: int,
        hidden: list[int],
        dropout: float = 0.15,
        batch_norm: bool = True,
    ):
        super().__init__()
        self.arch = {
            "input_dim": int(input_dim),
            "n_states": int(n_states),
            "hidden": [int(h) for h in hidden],
            "dropout": float(dropout),
            "batch_norm": bool(batch_norm),
        }
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.extend([nn.ReLU(), nn.Dropout(dropout)])
            width = h
        layers.append(nn.Linear(width, n_states))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(frames, input_dim) -> (frames, n_states) logits."""
        return self.layers(x)


def build_network(arch: dict) -> FrameMlp:
    """Rebuild a network from its ``arch`` dict (as stored in ``model.json``)."""
    return FrameMlp(**arch)
