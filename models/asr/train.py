"""Training of the hybrid recognizer from manifest utterances (vendor side and shadow models).

:func:`train_recognizer` is the entry point: it loads the data (:mod:`models.asr.data`: the
per-speaker held-out / dev / train split, features, CMVN, initial targets), builds the frame
trainer (:mod:`models.asr.trainer`: network, optimiser, DP-SGD and adversarial regularization),
runs the schedule (:mod:`models.asr.schedule`: re-alignments, final stage with learning-rate
halving and early stopping, decoder tuning) and writes the checkpoint, ``data.json`` (the
utterances of each role) and ``train_report.json``. Priors and transitions come from the final
training alignment, the bigram LM from the training transcripts.

DP-SGD's epsilon is stored in ``model.json`` (``training.defenses.dpsgd``) with what it covers
(:func:`_dp_guarantee`): record-level DP of the network's SGD per spliced window, not per frame
(a frame is in up to ``2 * context + 1`` windows) nor per speaker (thousands of windows). The
CMVN statistics, HMM priors and transitions, phone bigram, re-aligned targets and dev-set
choices are learnt from the data without noise and are not covered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from common.hashing import digest
from corpora.manifest import Utterance
from models.asr.config import resolve_config
from models.asr.data import TrainingData, TrainingDataError, load_training_data
from models.asr.recognizer import Recognizer, save_recognizer
from models.asr.schedule import ScheduleResult, run_schedule
from models.asr.trainer import FrameTrainer

__all__ = [
    "DATA_JSON_NAME",
    "TrainingDataError",
    "speaker_fingerprint",
    "train_recognizer",
]

DATA_JSON_NAME = "data.json"


def speaker_fingerprint(speakers: Sequence[str]) -> str:
    """Short hash of the sorted speaker set."""
    return digest("\n".join(sorted(set(speakers))))[:16]


def train_recognizer(
    utterances: list[Utterance],
    config: dict,
    *,
    seed: int,
    out_dir: Path | None = None,
    progress: bool = True,
    cache_dir: Path | None = None,
    reference: Sequence[Utterance] | None = None,
) -> tuple[Recognizer, dict]:
    """Train a recognizer on the speakers of ``utterances`` (see the module docstring).

    Parameters
    ----------
    utterances : manifest records of every training speaker (held-out and dev utterances are
        taken from them).
    config : full config or overrides of :data:`models.asr.config.DEFAULT_CONFIG`.
    seed : seeds the data split, initialisation, dropout and frame shuffling.
    out_dir : if given, the checkpoint (``model.safetensors``, ``model.json``), ``data.json``
        and ``train_report.json`` are written there.
    progress : show progress bars and log one line per epoch.
    cache_dir : feature cache folder (see :class:`~models.asr.features.FeatureCache`).
    reference : non-member utterances (speakers disjoint from ``utterances``) for adversarial
        regularization with ``training.advreg.reference: speakers``; ignored otherwise (see
        :func:`models.asr.defenses.reference_utterances`).

    Returns
    -------
    recognizer, report : the report holds the data used, skipped utterances with reasons,
        per-epoch losses / dev frame accuracy / dev PER, decoder tuning and throughput.
    """
    cfg = resolve_config(config)
    torch.manual_seed(seed)
    started = time.perf_counter()
    data = load_training_data(
        utterances, cfg, seed, reference=reference, cache_dir=cache_dir, progress=progress
    )
    trainer = FrameTrainer(data, cfg, seed)
    schedule = run_schedule(trainer, cfg, data.use_alignment, progress)
    speakers = sorted({u.speaker for u in utterances})
    meta = {
        "seed": seed,
        "speaker_fingerprint": speaker_fingerprint(speakers),
        "n_speakers": len(speakers),
        "n_train_utterances": len(data.train.utts),
        "train_frames": len(trainer.frames),
        "targets": "alignment" if data.use_alignment else "transcript",
        "defenses": _defense_meta(cfg, trainer, data),
    }
    recognizer = trainer.recognizer(meta)
    data_doc = _data_doc(seed, speakers, meta, data)
    report = _report(recognizer, cfg, meta, data_doc, data, trainer, schedule, started)
    if out_dir is not None:
        _write_training_outputs(out_dir, recognizer, data_doc, report)
    return recognizer, report


def _report(
    recognizer: Recognizer,
    cfg: dict,
    meta: dict,
    data_doc: dict,
    data: TrainingData,
    trainer: FrameTrainer,
    schedule: ScheduleResult,
    started: float,
) -> dict:
    """The content of ``train_report.json`` (``started``: ``time.perf_counter()`` at the start)."""
    return {
        "model_id": recognizer.model_id,
        "targets": meta["targets"],
        "data": {
            k: (len(v) if isinstance(v, list) else v)
            for k, v in data_doc.items()
            if k != "dev_protocol"
        },
        "skipped": data.skipped,
        "epochs": schedule.epochs,
        "realign_failed": schedule.realign_failed,
        "kept_epoch": schedule.kept_epoch,
        "decoding_tuning": schedule.tuning,
        "decoding": dict(cfg["decoding"]),
        "feature_cache": data.cache_stats,
        "train_frames_per_second": trainer.frames_seen / trainer.seconds
        if trainer.seconds
        else float("nan"),
        "train_seconds": trainer.seconds,
        "wall_seconds": time.perf_counter() - started,
        "defenses": meta["defenses"],
    }


def _data_doc(seed: int, speakers: list[str], meta: dict, data: TrainingData) -> dict:
    """The content of ``data.json``: which utterances went where, and why some were skipped."""
    return {
        "seed": seed,
        "speakers": speakers,
        "speaker_fingerprint": meta["speaker_fingerprint"],
        "train": [u.utt_id for u in data.train.utts],
        "dev": [u.utt_id for u in data.dev.utts],
        "heldout": [u.utt_id for u in data.split.heldout],
        "skipped": data.skipped,
        "advreg_reference": [] if data.ref is None else [u.utt_id for u in data.ref.utts],
        "dev_protocol": "per speaker, seeded shuffle: first heldout_utterances_per_speaker held "
        "out, next dev_utterances_per_speaker dev (lr halving, early stopping, decoder tuning), "
        "rest trained on",
    }


def _write_training_outputs(
    out_dir: Path, recognizer: Recognizer, data_doc: dict, report: dict
) -> None:
    """Write the checkpoint, ``data.json`` and ``train_report.json`` to ``out_dir``."""
    save_recognizer(recognizer, out_dir)
    (Path(out_dir) / DATA_JSON_NAME).write_text(json.dumps(data_doc, indent=1))
    (Path(out_dir) / "train_report.json").write_text(json.dumps(report, indent=1))


def _defense_meta(cfg: dict, trainer: FrameTrainer, data: TrainingData) -> dict:
    """What ``model.json`` records of the training defenses (L2, dropout, advreg, DP-SGD)."""
    tr = cfg["training"]
    out: dict = {
        "weight_decay": float(tr["weight_decay"]),
        "dropout": float(cfg["network"]["dropout"]),
    }
    if trainer.adv is not None:
        adv = tr["advreg"]
        out["advreg"] = {
            "lam": float(adv["lam"]),
            "k_steps": int(adv["k_steps"]),
            "warmup_epochs": int(adv["warmup_epochs"]),
            "reference": adv["reference"],
            "reference_utterances": len(data.ref.utts),
            "reference_speakers": sorted({u.speaker for u in data.ref.utts}),
            "final_gain": trainer.adv.last_gain,
        }
    if trainer.dp is not None:
        dp = tr["dpsgd"]
        out["dpsgd"] = _dp_guarantee(cfg, trainer) | {
            "delta_max": float(dp["delta"]),
            "noise_multiplier": float(dp["noise_multiplier"]),
            "max_grad_norm": float(dp["max_grad_norm"]),
            "sampling": "poisson",
            "expected_batch_windows": trainer.batch,
            "steps": int(sum(h[-1] for h in trainer.dp.engine.accountant.history)),
            "module_fixed": bool(trainer.dp.fixed),
            "grad_sample_mode": "ghost" if trainer.dp.criterion is not None else "hooks",
        }
    return out


#: What the CMVN modes learn from the training audio (``features.cmvn``; none for ``none``).
_CMVN_NOT_COVERED = {
    "global": "global CMVN statistics (mean / std of all training frames, shipped in the device)",
    "speaker": "per-speaker CMVN statistics (each training window is normalised with its "
    "speaker's statistics)",
    "utterance": "per-utterance CMVN statistics (each training window is normalised with its "
    "utterance's statistics)",
}


def _dp_guarantee(cfg: dict, trainer: FrameTrainer) -> dict:
    """DP-SGD's epsilon, delta and what they cover (:func:`models.privacy.dpsgd.guarantee`)."""
    from models.privacy.dpsgd import guarantee

    window = 2 * int(cfg["features"]["context"]) + 1
    per_speaker: dict[str, int] = {}
    for u, f in zip(trainer.train.utts, trainer.train.feats, strict=True):
        per_speaker[u.speaker] = per_speaker.get(u.speaker, 0) + f.shape[0]
    covers = (
        f"the network's SGD steps, per spliced training window of {window} frames "
        f"(record-level); not per frame (a 10 ms frame is in up to {window} windows) and not "
        f"per speaker (a speaker contributes up to {max(per_speaker.values())} windows)"
    )
    cmvn = _CMVN_NOT_COVERED.get(cfg["features"]["cmvn"])
    not_covered = [
        *([cmvn] if cmvn else []),
        "HMM state priors (from the training alignment, shipped in the device)",
        "HMM transition probabilities (from the training alignment, shipped in the device)",
        "phone bigram LM (from the training transcripts, shipped in the device)",
        "re-aligned training targets (forced alignment with the network and the HMM)",
        "dev-set model selection and decoder tuning (dev utterances of the training speakers)",
    ]
    out = guarantee(trainer.epsilon(), trainer.delta, len(trainer.frames), covers, not_covered)
    return out | {"frames_per_window": window}
