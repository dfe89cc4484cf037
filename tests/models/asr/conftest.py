"""A tiny tone corpus for recognizer tests: each phone is a fixed chord, so it is learnable fast.

Utterances are ``sil``, 4-7 random phones, ``sil``; every phone lasts 60-120 ms and is a sum
of two sinusoids of its own (slightly shifted per speaker) plus a little noise. Audio is
written as SPHERE files and the utterances carry exact alignments (TIMIT-like).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpora.audio import write_sphere
from corpora.manifest import Utterance

SR = 16000
TONE_PHONES = {
    "aa": (300.0, 900.0),
    "iy": (500.0, 2300.0),
    "s": (4200.0, 6100.0),
    "m": (200.0, 1300.0),
    "sh": (2500.0, 3500.0),
    "uw": (350.0, 700.0),
}


def make_tone_corpus(
    root: Path, speakers: int, utts_per_speaker: int, seed: int
) -> list[Utterance]:
    """Write a tone corpus under ``root`` and return its utterances (with alignments)."""
    rng = np.random.default_rng(seed)
    names = sorted(TONE_PHONES)
    out = []
    for s in range(speakers):
        shift = 1.0 + 0.03 * s
        for u in range(utts_per_speaker):
            inner = [names[i] for i in rng.choice(len(names), size=int(rng.integers(4, 8)))]
            phones = ["sil", *inner, "sil"]
            chunks, align, pos = [], [], 0
            for p in phones:
                n = int(rng.integers(60, 121)) * SR // 1000
                t = np.arange(n) / SR
                if p == "sil":
                    x = np.zeros(n)
                else:
                    f1, f2 = TONE_PHONES[p]
                    x = 0.3 * np.sin(2 * np.pi * f1 * shift * t) + 0.2 * np.sin(
                        2 * np.pi * f2 * shift * t
                    )
                chunks.append(x + 0.003 * rng.standard_normal(n))
                align.append((pos, pos + n, p))
                pos += n
            path = root / f"spk{s}" / f"u{u}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_sphere(path, np.concatenate(chunks), SR)
            out.append(
                Utterance(
                    utt_id=f"spk{s}_u{u}",
                    speaker=f"spk{s}",
                    path=str(path),
                    duration=pos / SR,
                    text=" ".join(inner),
                    phones=tuple(phones),
                    alignment=tuple(align),
                )
            )
    return out


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> list[Utterance]:
    """3 speakers x 6 tone utterances with alignments."""
    return make_tone_corpus(
        tmp_path_factory.mktemp("tones"), speakers=3, utts_per_speaker=6, seed=0
    )


#: Small, fast training config for the tone corpus.
TONE_CONFIG = {
    "network": {"hidden": [128, 128], "dropout": 0.0},
    "training": {
        "heldout_utterances_per_speaker": 1,
        "dev_utterances_per_speaker": 1,
        "epochs": 12,
        "epochs_per_realign": 4,
        "realign_iterations": 1,
        "batch_size": 64,
        "learning_rate": 0.003,
        "patience": 3,
    },
}


@pytest.fixture(scope="session")
def tone_model(tone_corpus, tmp_path_factory):
    """A recognizer trained on the tone corpus, saved; returns (recognizer, report, ckpt dir)."""
    import torch

    from models.asr.train import train_recognizer

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tone_ckpt")
    rec, report = train_recognizer(tone_corpus, TONE_CONFIG, seed=3, out_dir=out, progress=False)
    return rec, report, out
