"""Checkpoints of the CIFAR-10 CNN: a folder with ``model.safetensors`` and ``model.json``.

``model.json`` holds the format and version, the architecture, the resolved config and the
caller's ``meta``; nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from models.vision.cnn import arch_from_config, build_cnn
from models.vision.config import resolve_config

CHECKPOINT_FORMAT = "iot-privacy-auditor/cifar-cnn"
CHECKPOINT_VERSION = 1


def save_cnn(model: nn.Module, config: dict, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write ``path/model.safetensors`` and ``path/model.json`` (resolved config + ``meta``)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch_from_config(cfg),
        "config": cfg,
        "meta": meta or {},
    }
    (out / "model.json").write_text(json.dumps(doc, indent=2))
    return out


def read_cnn_json(path: str | Path) -> dict:
    """The ``model.json`` of a checkpoint folder, checked for format and version."""
    p = Path(path) / "model.json"
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a readable CNN checkpoint description ({e})") from e
    if doc.get("format") != CHECKPOINT_FORMAT or doc.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{p}: format {doc.get('format')!r} v{doc.get('version')} is not "
            f"{CHECKPOINT_FORMAT!r} v{CHECKPOINT_VERSION}"
        )
    return doc


def load_cnn(path: str | Path) -> nn.Module:
    """The model saved by :func:`save_cnn` in ``path``, in eval mode."""
    doc = read_cnn_json(path)
    model = build_cnn(doc["arch"])
    weights = Path(path) / "model.safetensors"
    try:
        model.load_state_dict(load_file(str(weights)))
    except (OSError, RuntimeError) as e:
        raise ValueError(
            f"{weights}: weights do not match {Path(path) / 'model.json'} ({e})"
        ) from e
    return model.eval()
