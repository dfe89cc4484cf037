"""Acoustic features of the recognizer: Kaldi fbank, CMVN, context splicing and a feature cache.

Audio is checked (:func:`check_audio`) and turned into 40-dim log-mel filterbanks with
``torchaudio.compliance.kaldi.fbank`` (25 ms windows every 10 ms, no dither, so features are
deterministic). CMVN statistics are computed per utterance, per speaker or over the training
set (:func:`cmvn_stats`). The MLP sees ``±context`` frames around each frame: :func:`splice`
does it for one utterance, :class:`SplicedFrames` gathers shuffled mini-batches of spliced
frames from one preloaded tensor without per-frame Python work. :class:`FeatureCache` stores
raw fbanks next to a manifest, keyed by the fbank config and each audio file's size and mtime.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torchaudio.compliance import kaldi
from tqdm import tqdm

from common.hashing import json_digest
from corpora.audio import read_audio
from corpora.manifest import Utterance

#: Bumped whenever the fbank computation changes, so old caches are never read.
FEATURE_VERSION = 1

#: Keys of ``config["features"]`` that change the raw fbank (and so the cache key).
FBANK_KEYS = ("sample_rate", "num_mel_bins", "frame_length_ms", "frame_shift_ms")


class RecognizerInputError(ValueError):
    """Audio the recognizer refuses; ``code`` is one of ``empty_audio``, ``too_short``,
    ``non_finite`` or ``bad_sample_rate``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def num_frames(n_samples: int, feat_cfg: dict) -> int:
    """Frames Kaldi's ``snip_edges`` framing yields for ``n_samples`` samples."""
    sr = feat_cfg["sample_rate"]
    length = int(sr * feat_cfg["frame_length_ms"] / 1000)
    shift = int(sr * feat_cfg["frame_shift_ms"] / 1000)
    return 0 if n_samples < length else 1 + (n_samples - length) // shift


def check_audio(samples: np.ndarray, sample_rate: int, feat_cfg: dict, min_frames: int) -> None:
    """Raise :class:`RecognizerInputError` for audio the recognizer cannot decode."""
    if sample_rate != feat_cfg["sample_rate"]:
        raise RecognizerInputError(
            "bad_sample_rate",
            f"sample rate {sample_rate} Hz, expected {feat_cfg['sample_rate']} Hz",
        )
    x = np.asarray(samples)
    if x.ndim != 1:
        raise RecognizerInputError(
            "empty_audio", f"expected mono samples (n,), got shape {x.shape}"
        )
    if x.size == 0:
        raise RecognizerInputError("empty_audio", "audio has no samples")
    if not np.all(np.isfinite(x)):
        raise RecognizerInputError("non_finite", "audio contains NaN or infinite samples")
    frames = num_frames(x.size, feat_cfg)
    if frames < min_frames:
        raise RecognizerInputError(
            "too_short",
            f"audio of {x.size} samples gives {frames} frames, at least {min_frames} needed",
        )


def fbank(samples: np.ndarray, feat_cfg: dict) -> torch.Tensor:
    """Kaldi log-mel filterbank of float samples in [-1, 1] -> (frames, num_mel_bins) float32."""
    wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None, :] * 32768.0
    return kaldi.fbank(
        wav,  # (1, n) in 16-bit sample units, as Kaldi reads PCM
        num_mel_bins=feat_cfg["num_mel_bins"],
        frame_length=feat_cfg["frame_length_ms"],
        frame_shift=feat_cfg["frame_shift_ms"],
        sample_frequency=feat_cfg["sample_rate"],
        dither=0.0,
        energy_floor=0.0,
    )  # (frames, mel)


def cmvn_stats(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (each (dim,)) pooled over all frames of ``feats``."""
    stacked = torch.cat(list(feats), dim=0).double()  # (frames, dim)
    mean = stacked.mean(dim=0)
    std = stacked.std(dim=0, unbiased=False).clamp_min(1e-5)
    return mean.float(), std.float()


def apply_cmvn(feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(frames, dim) -> (frames, dim) normalised to zero mean and unit variance."""
    return (feats - mean) / std


def splice(feats: torch.Tensor, context: int) -> torch.Tensor:
    """(frames, dim) -> (frames, (2 * context + 1) * dim), edge frames repeated."""
    t = feats.shape[0]
    offsets = torch.arange(-context, context + 1)  # (2c+1,)
    idx = (torch.arange(t)[:, None] + offsets[None, :]).clamp(0, t - 1)  # (frames, 2c+1)
    return feats[idx].reshape(t, -1)


class SplicedFrames:
    """Every frame of many utterances, with context, gathered by frame index in one call.

    Each utterance is padded with ``context`` copies of its edge frames and all are
    concatenated into one tensor; ``centers[i]`` is frame ``i``'s row in it.

    Parameters
    ----------
    feats : normalised features, one (frames, dim) tensor per utterance.
    context : frames of left and right context.
    """

    def __init__(self, feats: Sequence[torch.Tensor], context: int):
        self.context = context
        padded, centers, start = [], [], 0
        for f in feats:
            t = f.shape[0]
            idx = torch.arange(-context, t + context).clamp(0, t - 1)  # (t + 2c,)
            padded.append(f[idx])
            centers.append(torch.arange(t) + start + context)
            start += t + 2 * context
        self.data = torch.cat(padded).contiguous()  # (sum(t + 2c), dim)
        self.centers = torch.cat(centers)  # (total frames,)
        self.offsets = torch.arange(-context, context + 1)  # (2c+1,)

    def __len__(self) -> int:
        return int(self.centers.numel())

    @property
    def input_dim(self) -> int:
        return int(self.data.shape[1]) * (2 * self.context + 1)

    def gather(self, frame_idx: torch.Tensor) -> torch.Tensor:
        """(batch,) frame indices -> (batch, (2c+1) * dim) spliced inputs."""
        rows = self.centers[frame_idx][:, None] + self.offsets[None, :]  # (batch, 2c+1)
        return self.data[rows].reshape(frame_idx.numel(), -1)


def fbank_config_key(feat_cfg: dict) -> str:
    """Short hash of everything that changes raw fbanks."""
    doc = {k: feat_cfg[k] for k in FBANK_KEYS} | {"version": FEATURE_VERSION}
    return json_digest(doc)[:16]


def load_utterance_fbank(utt: Utterance, feat_cfg: dict, min_frames: int) -> torch.Tensor:
    """Read one utterance's audio, check it and return its fbank (frames, mel)."""
    samples, sr = read_audio(utt.path)
    check_audio(samples, sr, feat_cfg, min_frames)
    return fbank(samples, feat_cfg)


class FeatureCache:
    """Raw fbanks of a corpus in one safetensors file per fbank config.

    The file ``fbank-<config hash>.safetensors`` holds the concatenated features and, in its
    metadata, each utterance's row range and its audio file's path, size and mtime; an
    utterance whose audio changed, or a different fbank config, is recomputed.

    Parameters
    ----------
    directory : folder of the cache files (e.g. ``<prepared corpus>/features``); ``None``
        disables caching.
    """

    def __init__(self, directory: str | Path | None):
        self.directory = None if directory is None else Path(directory)

    def path_for(self, feat_cfg: dict) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"fbank-{fbank_config_key(feat_cfg)}.safetensors"

    @staticmethod
    def _audio_stamp(utt: Utterance) -> list:
        st = os.stat(utt.path)
        return [str(Path(utt.path).resolve()), st.st_size, st.st_mtime_ns]

    def _read(self, path: Path) -> dict[str, tuple[list, torch.Tensor]]:
        if not path.exists():
            return {}
        with safe_open(str(path), framework="pt") as f:
            index = json.loads(f.metadata()["index"])
            data = f.get_tensor("feats")  # (total frames, mel)
        return {u: (stamp, data[b:e].clone()) for u, (b, e, stamp) in index.items()}

    def _write(self, path: Path, entries: dict[str, tuple[list, torch.Tensor]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        index, chunks, start = {}, [], 0
        for utt_id, (stamp, feats) in entries.items():
            index[utt_id] = (start, start + feats.shape[0], stamp)
            chunks.append(feats)
            start += feats.shape[0]
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(
            {"feats": torch.cat(chunks).contiguous()},
            str(tmp),
            metadata={"index": json.dumps(index)},
        )
        tmp.replace(path)

    def load(
        self,
        utterances: Sequence[Utterance],
        feat_cfg: dict,
        min_frames: int,
        progress: bool = False,
    ) -> tuple[dict[str, torch.Tensor], list[dict], dict]:
        """Fbanks of ``utterances``, from the cache where valid, computed otherwise.

        Returns
        -------
        feats : ``{utt_id: (frames, mel) tensor}`` for every readable utterance.
        skipped : ``[{"utt_id", "reason"}]`` for audio that could not be read or was refused.
        stats : ``{"hits": n, "misses": n, "path": str | None}``.
        """
        path = self.path_for(feat_cfg)
        cached = {} if path is None else self._read(path)
        feats: dict[str, torch.Tensor] = {}
        skipped: list[dict] = []
        hits = misses = 0
        for utt in tqdm(utterances, desc="features", disable=not progress, leave=False):
            try:
                stamp = self._audio_stamp(utt)
                entry = cached.get(utt.utt_id)
                if entry is not None and entry[0] == stamp:
                    feats[utt.utt_id] = entry[1]
                    hits += 1
                    continue
                feats[utt.utt_id] = load_utterance_fbank(utt, feat_cfg, min_frames)
                cached[utt.utt_id] = (stamp, feats[utt.utt_id])
                misses += 1
            except (OSError, ValueError) as e:
                skipped.append({"utt_id": utt.utt_id, "reason": f"{utt.path}: {e}"})
        if path is not None and misses:
            self._write(path, cached)
        return (
            feats,
            skipped,
            {"hits": hits, "misses": misses, "path": None if path is None else str(path)},
        )
