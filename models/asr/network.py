"""The acoustic network of the hybrid recognizer: a PyTorch-Kaldi-style frame MLP.

Input: spliced, normalised fbank frames; output: logits over HMM states. Each hidden layer is
Linear -> normalisation (optional) -> ReLU -> Dropout. The architecture is described by a plain
dict (stored in ``model.json``) so a checkpoint rebuilds it without pickled code.

Normalisation is batch norm by default; DP-SGD cannot use it (a frame's batch statistics mix
other frames into its gradient), so Opacus' ``ModuleValidator.fix`` swaps each ``BatchNorm1d``
for a ``GroupNorm``: :func:`describe_network` reads the architecture back from the modules so
the checkpoint records the network that was really trained.
"""

from __future__ import annotations

import torch
from torch import nn

#: Per hidden layer normalisation kinds (``arch["norm"]``).
NORMS = ("batch", "group", "none")


class FrameMlp(nn.Module):
    """MLP from spliced frames to HMM-state logits.

    Parameters
    ----------
    input_dim : features per frame after splicing.
    n_states : HMM states (output classes).
    hidden : hidden layer widths, e.g. ``[1024] * 4``.
    dropout : dropout probability after each hidden layer.
    batch_norm : whether each hidden layer is normalised (kind given by ``norm``).
    norm : ``"batch"`` (``BatchNorm1d``) or ``"group"`` (``GroupNorm``, as Opacus'
        ``ModuleValidator.fix`` makes it); ignored when ``batch_norm`` is false.
    norm_groups : groups of each hidden layer's ``GroupNorm`` (``min(32, width)`` when ``None``,
        as Opacus makes them).
    """

    def __init__(
        self,
        input_dim: int,
        n_states: int,
        hidden: list[int],
        dropout: float = 0.15,
        batch_norm: bool = True,
        norm: str = "batch",
        norm_groups: list[int] | None = None,
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm {norm!r} unknown (known: {', '.join(NORMS)})")
        norm = norm if batch_norm else "none"
        self.arch = {
            "input_dim": int(input_dim),
            "n_states": int(n_states),
            "hidden": [int(h) for h in hidden],
            "dropout": float(dropout),
            "batch_norm": norm != "none",
        }
        groups = [int(g) for g in norm_groups] if norm_groups else [min(32, h) for h in hidden]
        if len(groups) != len(hidden):
            raise ValueError(f"norm_groups {groups} must give one count per hidden layer {hidden}")
        if norm == "group":  # only then, so batch-norm checkpoints keep their former model.json
            self.arch |= {"norm": "group", "norm_groups": groups}
        layers: list[nn.Module] = []
        width = input_dim
        for h, g in zip(hidden, groups, strict=True):
            layers.append(nn.Linear(width, h))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(h))
            elif norm == "group":
                layers.append(nn.GroupNorm(g, h))
            layers.extend([nn.ReLU(), nn.Dropout(dropout)])
            width = h
        layers.append(nn.Linear(width, n_states))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(frames, input_dim) -> (frames, n_states) logits."""
        return self.layers(x)


def describe_network(network: FrameMlp) -> dict:
    """The ``arch`` dict of ``network`` as its modules are now (e.g. after ``ModuleValidator.fix``).

    Raises ``ValueError`` for a module :class:`FrameMlp` could not rebuild (mixed norms).

    Examples
    --------
    >>> describe_network(FrameMlp(4, 6, [8], norm="group"))["norm_groups"]
    [8]
    """
    arch = {k: v for k, v in network.arch.items() if k not in ("norm", "norm_groups")}
    norms = {type(m) for m in network.layers if isinstance(m, nn.BatchNorm1d | nn.GroupNorm)}
    if not norms:
        return arch | {"batch_norm": False}
    if norms == {nn.BatchNorm1d}:
        return arch | {"batch_norm": True}
    if norms != {nn.GroupNorm}:
        raise ValueError(f"cannot describe a FrameMlp with mixed norms {norms}")
    groups = [m.num_groups for m in network.layers if isinstance(m, nn.GroupNorm)]
    return arch | {"batch_norm": True, "norm": "group", "norm_groups": groups}


def build_network(arch: dict) -> FrameMlp:
    """Rebuild a network from its ``arch`` dict (as stored in ``model.json``)."""
    return FrameMlp(**arch)
