"""The recognizer's ``model_id``: a digest of its weights and ``model.json``, persisted in checkpoints."""

from __future__ import annotations

import numpy as np
import torch

from models.asr.hmm import HmmParams
from models.asr.network import FrameMlp
from models.asr.recognizer import Recognizer


def _fixed_network() -> FrameMlp:
    """A small network whose every tensor has fixed, exactly representable values."""
    net = FrameMlp(3, 6, [4], dropout=0.0, batch_norm=True)
    with torch.no_grad():
        for i, (_, t) in enumerate(sorted(net.state_dict().items())):
            if t.is_floating_point():
                t.copy_((torch.arange(t.numel(), dtype=torch.float32) / 8 - i).reshape(t.shape))
    return net


def test_model_id_keeps_its_value():
    """Pinned (value of the code before ``common.hashing`` computed it): checkpoints saved
    earlier must still load (``load_recognizer`` compares the stored id)."""
    hmm = HmmParams(
        2,
        np.full(6, -0.5),
        np.full(6, -1.0),
        np.full(6, -2.0),
        np.array([-0.25, -1.5]),
        np.full((2, 2), -0.75),
    )
    rec = Recognizer(_fixed_network(), {"features": {"cmvn": "none"}}, hmm, meta={"seed": 0})
    assert rec.model_id == "654e78a732d2"
    net = _fixed_network()
    with torch.no_grad():
        net.layers[-1].bias[0] += 1.0  # any weight change is a new id
    assert Recognizer(net, rec.config, hmm, meta={"seed": 0}).model_id != rec.model_id
