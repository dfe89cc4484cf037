"""Images in, logits, probabilities and losses out: how the CIFAR-10 CNN is queried."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def images_to_tensor(x: np.ndarray) -> torch.Tensor:
    """float32 ``(n, 3, H, W)`` in [0, 1] from ``(n, H, W, 3)`` images.

    uint8 images are divided by 255; float images are taken as already in [0, 1].
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (n, H, W, 3), got shape {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.float() / 255.0 if x.dtype == np.uint8 else t.float()
    return t.permute(0, 3, 1, 2).contiguous()  # (n, 3, H, W)


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """float32 logits ``(n, n_classes)`` of images ``x (n, H, W, 3)`` (model put in eval mode)."""
    model.eval()
    xt = images_to_tensor(x)
    outs = [model(xt[i : i + batch_size]) for i in range(0, len(xt), batch_size)]
    if not outs:  # CifarCNN and StackedCNN both end in `classifier`
        return np.zeros((0, model.classifier[-1].out_features), dtype=np.float32)
    return torch.cat(outs).numpy()


def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """float64 softmax probabilities ``(n, n_classes)`` of images ``x (n, H, W, 3)``."""
    logits = torch.from_numpy(predict_logits(model, x, batch_size)).double()
    return torch.softmax(logits, dim=1).numpy()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of ``model`` on ``x, y``."""
    logits = torch.from_numpy(predict_logits(model, x))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss = float(nn.functional.cross_entropy(logits, yt))
    return loss, float((logits.argmax(1) == yt).float().mean())
