"""Builders of tiny corpora on disk: TIMIT-layout trees and Kaldi data dirs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from corpora.audio import write_sphere

N_SAMPLES = 16000  # 1 s at 16 kHz

#: A .PHN body over N_SAMPLES: h#, a stop with its closure, a glottal stop (q), vowels, h#.
PHN_LINES = [
    (0, 2000, "h#"),
    (2000, 3000, "bcl"),
    (3000, 3500, "b"),
    (3500, 5000, "iy"),
    (5000, 5600, "q"),
    (5600, 8000, "ix"),
    (8000, 10000, "dx"),
    (10000, 13000, "ax-h"),
    (13000, N_SAMPLES, "h#"),
]
#: PHN_LINES folded to the 48 set (q dropped).
PHONES48 = ["sil", "vcl", "b", "iy", "ix", "dx", "ax", "sil"]

SPEAKERS = (("TRAIN", "DR1", "FCJF0"), ("TEST", "DR2", "MDAB0"), ("TEST", "DR3", "FAKS0"))
SENTENCES = ("SA1", "SA2", "SI1027", "SX127")


def write_timit_utterance(
    speaker_dir: Path, sentence: str, *, lower: bool = False, seed: int = 0
) -> None:
    """Write one sentence's .WAV (SPHERE), .PHN, .WRD and .TXT."""
    speaker_dir.mkdir(parents=True, exist_ok=True)

    def name(ext: str) -> Path:
        stem = f"{sentence}{ext}"
        return speaker_dir / (stem.lower() if lower else stem)

    rng = np.random.default_rng(seed)
    write_sphere(name(".WAV"), (rng.standard_normal(N_SAMPLES) * 1000).astype(np.int16))
    name(".PHN").write_text("".join(f"{b} {e} {p}\n" for b, e, p in PHN_LINES))
    name(".WRD").write_text("2000 5000 bee\n5600 13000 city\n")
    name(".TXT").write_text(f"0 {N_SAMPLES} Bee city.\n")


def make_timit_tree(
    root: Path, *, lower: bool = False, speakers=SPEAKERS, sentences=SENTENCES
) -> Path:
    """A TIMIT tree with ``speakers`` x ``sentences`` utterances, upper- or lower-case names."""
    for i, (split, dialect, speaker) in enumerate(speakers):
        parts = (split, dialect, speaker)
        speaker_dir = root.joinpath(*(p.lower() for p in parts) if lower else parts)
        for j, sentence in enumerate(sentences):
            write_timit_utterance(speaker_dir, sentence, lower=lower, seed=10 * i + j)
    return root


@pytest.fixture
def timit_tree(tmp_path: Path) -> Path:
    """An upper-case TIMIT tree: 3 speakers x 4 sentences (2 of them SA)."""
    return make_timit_tree(tmp_path / "timit")


def make_kaldi_dir(
    root: Path,
    *,
    utterances: dict[str, tuple[str, str]] | None = None,
    text_phone: bool = True,
    lexicon: str | None = "BEE\tB IY1\nCITY\tS IH1 T IY0\nCITY\tS IH1 T IH0\n",
    audio_format: str = "FLAC",
) -> Path:
    """A Kaldi data dir. ``utterances``: ``{utt_id: (speaker, transcript)}``."""
    utterances = utterances or {
        "s1_a": ("s1", "BEE CITY"),
        "s1_b": ("s1", "CITY"),
        "s2_a": ("s2", "BEE BEE CITY"),
    }
    arpabet = {"BEE": "B_B IY1_E", "CITY": "S_B IH1_I T_I IY0_E"}
    (root / "wav").mkdir(parents=True, exist_ok=True)
    scp, text, utt2spk, utt2dur, phone_lines = [], [], [], [], []
    rng = np.random.default_rng(0)
    for k, (utt, (spk, words)) in enumerate(sorted(utterances.items())):
        n = 8000 + 1600 * k  # 0.5 s, 0.6 s, ...
        rel = f"wav/{utt}.{audio_format.lower()}"
        sf.write(
            root / rel,
            (rng.standard_normal(n) * 0.05).astype(np.float32),
            16000,
            format=audio_format,
            subtype="PCM_16",
        )
        scp.append(f"{utt} {rel}")
        text.append(f"{utt} {words}")
        utt2spk.append(f"{utt} {spk}")
        utt2dur.append(f"{utt} {n / 16000:.4f}")
        if text_phone:
            phone_lines += [f"{utt}.{i}\t{arpabet[w]}" for i, w in enumerate(words.split())]
    for name, lines in (
        ("wav.scp", scp),
        ("text", text),
        ("utt2spk", utt2spk),
        ("utt2dur", utt2dur),
    ):
        (root / name).write_text("\n".join(lines) + "\n")
    speakers = sorted({spk for spk, _ in utterances.values()})
    (root / "spk2gender").write_text(
        "".join(f"{s} {'fm'[i % 2]}\n" for i, s in enumerate(speakers))
    )
    (root / "spk2age").write_text("".join(f"{s} {20 + i}\n" for i, s in enumerate(speakers)))
    if text_phone:
        (root / "text-phone").write_text("\n".join(phone_lines) + "\n")
    if lexicon is not None:
        (root / "lexicon.txt").write_text(lexicon)
    return root


@pytest.fixture
def kaldi_dir(tmp_path: Path) -> Path:
    """A Kaldi data dir: 3 utterances of 2 speakers, FLAC audio, text-phone and lexicon."""
    return make_kaldi_dir(tmp_path / "kaldi")


@pytest.fixture
def builders() -> SimpleNamespace:
    """The builders and constants above, for tests that need variants of the tiny corpora."""
    return SimpleNamespace(
        make_timit_tree=make_timit_tree,
        write_timit_utterance=write_timit_utterance,
        make_kaldi_dir=make_kaldi_dir,
        PHN_LINES=PHN_LINES,
        PHONES48=PHONES48,
        N_SAMPLES=N_SAMPLES,
        SPEAKERS=SPEAKERS,
        SENTENCES=SENTENCES,
    )
