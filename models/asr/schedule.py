"""The recognizer's training schedule: re-alignment stages, final stage, decoder tuning.

The network is trained ``epochs_per_realign`` epochs and the targets are re-aligned by forced
Viterbi with the current network, ``realign_iterations`` times (``transcript_realign_iterations``
after a flat start), before a final stage of up to ``epochs`` epochs with learning-rate halving
on dev-loss plateaus and early stopping (best dev-loss weights kept). With
``training.tune_decoding`` and a dev set, the decoder's acoustic scale and insertion penalty are
then grid-searched for the lowest dev PER. Every epoch is measured on dev and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from models.asr.data import PreparedSet
from models.asr.recognizer import Recognizer
from models.asr.trainer import FrameTrainer, decode_per

log = logging.getLogger(__name__)

#: Grid searched on dev after training when ``training.tune_decoding`` is true.
ACOUSTIC_SCALES = (0.2, 0.3, 0.5, 0.8)
INSERTION_PENALTIES = (0.0, 2.0, 4.0, 6.0, 8.0)


@dataclass
class ScheduleResult:
    """What the schedule did: per-epoch rows, failed re-alignments per re-alignment, the epoch
    whose weights were kept and the decoder tuning record (``None`` when not tuned)."""

    epochs: list[dict]
    realign_failed: list[int]
    kept_epoch: int
    tuning: dict | None


def run_schedule(
    trainer: FrameTrainer, cfg: dict, use_alignment: bool, progress: bool
) -> ScheduleResult:
    """Train ``trainer`` through the schedule (module docstring); it ends with the kept weights.

    ``cfg`` is the trainer's resolved config: decoder tuning sets its ``decoding`` values.
    """
    tr = cfg["training"]
    realigns = int(
        tr["realign_iterations"] if use_alignment else tr["transcript_realign_iterations"]
    )
    per_realign = int(tr["epochs_per_realign"])
    bar = tqdm(
        total=realigns * per_realign + int(tr["epochs"]), desc="epochs", disable=not progress
    )
    epochs_log: list[dict] = []
    realign_failed = []
    for _ in range(realigns):
        for _ in range(per_realign):
            _run_epoch(trainer, "pre-realign", epochs_log, bar, progress)
        realign_failed.append(trainer.realign())
    best_state, kept_epoch = _final_stage(trainer, tr, epochs_log, bar, progress)
    bar.close()
    if best_state is not None:
        trainer.network.load_state_dict(best_state)
    else:
        kept_epoch = len(epochs_log)
    tuning = _apply_decoder_tuning(trainer, cfg)
    return ScheduleResult(epochs_log, realign_failed, kept_epoch, tuning)


def _run_epoch(
    trainer: FrameTrainer, stage: str, epochs_log: list[dict], bar: tqdm, progress: bool
) -> dict:
    """Train one epoch and measure it on dev; the row is appended to ``epochs_log`` and returned."""
    row = {
        "epoch": len(epochs_log) + 1,
        "stage": stage,
        "lr": trainer.optimizer.param_groups[0]["lr"],
    }
    row |= trainer.epoch() | trainer.dev_metrics()
    epochs_log.append(row)
    bar.update()
    bar.set_postfix(loss=f"{row['train_loss']:.3f}", dev_per=f"{row['dev_per']:.3f}")
    if progress:
        log.info(
            "epoch %(epoch)d [%(stage)s] lr %(lr).2e train loss %(train_loss).3f "
            "dev loss %(dev_loss).3f dev acc %(dev_acc).3f dev PER %(dev_per).3f",
            row,
        )
    return row


def _final_stage(
    trainer: FrameTrainer, tr: dict, epochs_log: list[dict], bar: tqdm, progress: bool
) -> tuple[dict | None, int | None]:
    """The final epochs: ``(best state dict, its epoch)``, both ``None`` if no epoch counted.

    Keeps the best dev-loss weights (train loss without dev), halves the lr on a plateau and
    stops after ``patience`` halvings without improvement. With adversarial regularization only
    epochs trained with the game count (else a warm-up epoch, undefended, could be the one kept).
    """
    best_loss, best_state, bad, kept_epoch = float("inf"), None, 0, None
    for _ in range(int(tr["epochs"])):
        row = _run_epoch(trainer, "final", epochs_log, bar, progress)
        if trainer.adv is not None and trainer.epochs_done <= trainer.adv_warmup:
            continue
        score = row["dev_loss"] if trainer.dev_frames is not None else row["train_loss"]
        improved = score < best_loss * (1.0 - float(tr["min_improvement"]))
        if score < best_loss:
            best_loss = score
            best_state = {n: t.clone() for n, t in trainer.network.state_dict().items()}
            kept_epoch = row["epoch"]
        if improved:
            bad = 0
            continue
        bad += 1
        if bad > int(tr["patience"]):
            break
        trainer.halve_lr(float(tr["lr_halving_factor"]))
    return best_state, kept_epoch


def _apply_decoder_tuning(trainer: FrameTrainer, cfg: dict) -> dict | None:
    """With ``training.tune_decoding`` and a dev set: tune on dev, set ``cfg["decoding"]``.

    Returns the tuning record (:func:`_tune_decoding`), else ``None``.
    """
    if not (cfg["training"]["tune_decoding"] and trainer.dev_frames is not None):
        return None
    tuning = _tune_decoding(trainer.recognizer(), trainer.dev, trainer.dev_log_posteriors())
    cfg["decoding"] |= tuning["best"]
    return tuning


def _tune_decoding(rec: Recognizer, dev: PreparedSet, log_post: list[np.ndarray]) -> dict:
    """Grid-search acoustic scale and insertion penalty for the lowest dev PER."""
    grid = []
    for scale in ACOUSTIC_SCALES:
        for pen in INSERTION_PENALTIES:
            d = {"acoustic_scale": scale, "insertion_penalty": pen}
            grid.append(d | {"dev_per": decode_per(rec, dev, log_post, d)["per"]})
    best = min(grid, key=lambda g: g["dev_per"])
    return {"grid": grid, "best": {k: best[k] for k in ("acoustic_scale", "insertion_penalty")}}
