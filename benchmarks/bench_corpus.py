"""Synthetic corpus benchmarks: synthesis speed and speaker realism.

1. Speed: synthesize ``--speed-speakers`` speakers x 10 sentences with ``--jobs`` workers,
   report seconds of audio per wall second, and extrapolate to a TIMIT-sized corpus
   (630 speakers x 10 sentences) from that measured rate.
2. Realism: per-utterance MFCC mean + std (20 coefficients, 40 features), logistic regression,
   8 train / 4 test utterances per speaker (held-out utterances), on 60 synthetic speakers and
   on the 60 real speakers of ``../shared/data/speechocean762-dev``; speaker-ID accuracy side by
   side, for each ``--spreads`` value of the generator's speaker draw.

Prints a table and appends a section to ``BENCHMARKS.md``. Run from the repository root:
``.venv/bin/python benchmarks/bench_corpus.py``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

# torch, torchaudio and scikit-learn are imported inside the functions that use them: the
# generator's worker processes re-import this script, and torch would cost seconds in each.
from publish import publish  # benchmarks/publish.py

from corpora.audio import read_audio
from corpora.synth.corpus import DEFAULT_SPREAD, synthesize_corpus

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "speechocean762-dev"
TIMIT_SPEAKERS, TIMIT_SENTENCES = 630, 10
N_TRAIN, N_TEST = 8, 4


def utterance_features(path: Path, mfcc) -> np.ndarray:
    """MFCC mean and std over frames of one 16 kHz file -> (2 * n_mfcc,)."""
    import torch

    x, sr = read_audio(path)
    if sr != 16000:
        raise ValueError(f"{path}: expected 16 kHz, got {sr}")
    m = mfcc(torch.from_numpy(x))  # (n_mfcc, frames)
    return torch.cat([m.mean(dim=1), m.std(dim=1)]).numpy()


def speaker_id_accuracy(files: dict[str, list[Path]], seed: int, n_mfcc: int = 13) -> float:
    """Held-out-utterance speaker identification accuracy (8 train, 4 test utts per speaker)."""
    import torch
    import torchaudio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    torch.set_num_threads(1)
    mfcc = torchaudio.transforms.MFCC(
        16000, n_mfcc=n_mfcc, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40}
    )
    xtr, ytr, xte, yte = [], [], [], []
    for speaker, paths in sorted(files.items()):
        rng = np.random.default_rng([seed, len(xtr)])
        chosen = [paths[i] for i in rng.permutation(len(paths))[: N_TRAIN + N_TEST]]
        feats = [utterance_features(p, mfcc) for p in chosen]
        xtr += feats[:N_TRAIN]
        ytr += [speaker] * N_TRAIN
        xte += feats[N_TRAIN:]
        yte += [speaker] * N_TEST
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(np.array(xtr), ytr)
    return float(np.mean(clf.predict(np.array(xte)) == np.array(yte)))


def real_files() -> dict[str, list[Path]]:
    """speechocean762-dev: speaker -> audio paths (from wav.scp and utt2spk)."""
    wav = dict(line.split(None, 1) for line in (REAL / "wav.scp").read_text().splitlines())
    files: dict[str, list[Path]] = {}
    for line in (REAL / "utt2spk").read_text().splitlines():
        utt, spk = line.split()
        files.setdefault(spk, []).append(REAL / wav[utt].strip())
    return files


def synthetic_files(root: Path) -> dict[str, list[Path]]:
    """Synthetic TIMIT-layout corpus: speaker -> .WAV paths."""
    return {d.name: sorted(d.glob("*.WAV")) for d in sorted(root.glob("TRAIN/DR*/*"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--speed-speakers", type=int, default=40)
    parser.add_argument("--realism-speakers", type=int, default=60)
    parser.add_argument("--spreads", type=float, nargs="+", default=[DEFAULT_SPREAD])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-mfcc", type=int, default=13)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        speed = synthesize_corpus(
            Path(tmp) / "speed", args.speed_speakers, args.seed, 10, jobs=args.jobs
        )
        rate = speed["seconds"] / speed["wall_seconds"]
        per_utt = speed["seconds"] / speed["utterances"]
        timit_wall = TIMIT_SPEAKERS * TIMIT_SENTENCES * per_utt / rate
        real_acc = speaker_id_accuracy(real_files(), args.seed, args.n_mfcc)
        for spread in args.spreads:
            root = Path(tmp) / f"realism-{spread}"
            synthesize_corpus(
                root,
                args.realism_speakers,
                args.seed + 1,
                N_TRAIN + N_TEST,
                jobs=args.jobs,
                spread=spread,
            )
            rows.append(
                (spread, speaker_id_accuracy(synthetic_files(root), args.seed, args.n_mfcc))
            )
    import torch
    import torchaudio

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        f"## Synthetic corpus (eSpeak NG): speed and speaker realism ({datetime.date.today()})",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchaudio {torchaudio.__version__}, numpy {np.__version__}.",
        f"Load average when the run ended (the machine is shared): "
        f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} (1 / 5 / 15 min).",
        f"Command: `.venv/bin/python {' '.join(['benchmarks/bench_corpus.py', *sys.argv[1:]])}`",
        "",
        "| figure | value |",
        "|---|---|",
        f"| measured: {speed['speakers']} speakers x 10 sentences, jobs={args.jobs} | {speed['seconds']:.1f} s of audio in {speed['wall_seconds']:.1f} s wall |",
        f"| synthesis speed | {rate:.1f} s of audio per wall second |",
        f"| TIMIT-sized corpus (630 x 10), extrapolated from the measured rate | {timit_wall / 60:.1f} min ({TIMIT_SPEAKERS * TIMIT_SENTENCES * per_utt / 3600:.2f} h of audio) |",
        f"| speaker ID, real speechocean762-dev (60 speakers, 8 train / 4 test utts) | {real_acc:.1%} |",
    ]
    lines += [
        f"| speaker ID, synthetic ({args.realism_speakers} speakers, spread={s:g}) | {a:.1%} |"
        for s, a in rows
    ]
    lines += [
        "",
        f"Speaker ID: per-utterance MFCC ({args.n_mfcc}) mean + std, standardised, logistic regression; "
        "chance is 1/60 = 1.7%.",
        "",
    ]
    publish("\n".join(lines), append=not args.no_append)


if __name__ == "__main__":
    main()
