"""Recognizer training data: the utterance split, features, CMVN and initial state targets.

Data protocol (:func:`corpora.splits.split_utterances`): for each speaker, its utterances are
shuffled with the seed; the first ``heldout_utterances_per_speaker`` are never used (the
auditor's "unseen audios of member speakers"), the next ``dev_utterances_per_speaker`` form the
dev set (used only for learning-rate halving, early stopping and tuning the decoder's acoustic
scale and insertion penalty), the rest are trained on.

Utterances without usable reference phones, unreadable audio or too short for their phones are
skipped with a reason. Features come from the feature cache (:class:`FeatureCache`) and are
normalised per ``features.cmvn`` (global statistics of the training frames, per speaker, per
utterance or none). Initial targets: with alignments, states are split evenly inside each
aligned phone; without, a flat start (quiet edges to the end silences, the rest cut evenly per
phone). :func:`load_training_data` does all of it and returns a :class:`TrainingData`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from corpora.manifest import Utterance
from corpora.phones import UnknownPhoneError
from corpora.splits import SplitError, UtteranceSplit, split_utterances
from models.asr.features import FeatureCache, SplicedFrames, apply_cmvn, cmvn_stats
from models.asr.hmm import phone_ids
from models.asr.targets import alignment_states, flat_start_states, speech_span
from models.asr.viterbi import AlignmentError

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """Training data that cannot be used at all (no usable utterances, too few per speaker)."""


@dataclass
class PreparedSet:
    """Normalised features, phone ids and current state targets of a list of utterances."""

    utts: list[Utterance]
    feats: list[torch.Tensor]  # each (frames, mel), normalised
    phones: list[np.ndarray]  # each (N,) phone ids
    states: list[np.ndarray]  # each (frames,) state targets

    def frames(self, context: int) -> SplicedFrames:
        return SplicedFrames(self.feats, context)

    def target_tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(self.states)).long()  # (total frames,)


@dataclass
class TrainingData:
    """Everything training reads, as :func:`load_training_data` prepared it.

    Attributes
    ----------
    split : the utterances per role (train, dev, held out) before any was skipped.
    train, dev : the prepared training and dev sets.
    ref : the prepared advreg reference set (the dev set with ``reference: dev``), ``None``
        when adversarial regularization is off.
    skipped : ``{"utt_id", "reason"}`` of every utterance left out, in the order found.
    cmvn : ``(mean, std)`` (mel,) of the training frames with ``cmvn: global``, else ``None``.
    cache_stats : the feature cache's hit / miss counts.
    use_alignment : initial targets from alignments (else a flat start from transcripts).
    """

    split: UtteranceSplit
    train: PreparedSet
    dev: PreparedSet
    ref: PreparedSet | None
    skipped: list[dict]
    cmvn: tuple[torch.Tensor, torch.Tensor] | None
    cache_stats: dict
    use_alignment: bool


def load_training_data(
    utterances: Sequence[Utterance],
    cfg: dict,
    seed: int,
    *,
    reference: Sequence[Utterance] | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> TrainingData:
    """Split, check phones, load features, normalise and build initial targets.

    ``cfg`` is a resolved config (:func:`models.asr.config.resolve_config`); ``reference`` the
    advreg reference utterances of ``training.advreg.reference: speakers``.

    Raises
    ------
    TrainingDataError
        Too few utterances of a speaker, no usable training (or reference) utterance, or
        ``training.targets: alignment`` with an utterance that has none.
    """
    tr = cfg["training"]
    skipped: list[dict] = []
    split = _split(utterances, tr, seed)
    ref_utts = _reference_utterances(utterances, reference, cfg, skipped)
    usable = _check_phones(split.train + split.dev, skipped)
    use_alignment = _use_alignment(usable, tr["targets"])
    raw, feat_skipped, cache_stats = FeatureCache(cache_dir).load(
        usable + ref_utts, cfg["features"], int(cfg["decoding"]["min_frames"]), progress=progress
    )
    skipped += feat_skipped
    train_raw = [raw[u.utt_id] for u in split.train if u.utt_id in raw]
    global_stats = cmvn_stats(train_raw) if train_raw else None
    prepare = functools.partial(
        _prepare,
        raw=raw,
        cfg=cfg,
        use_alignment=use_alignment,
        global_stats=global_stats,
        skipped=skipped,
    )
    train, dev = prepare(split.train), prepare(split.dev)
    ref = None
    if float(tr["advreg"]["lam"]) > 0:
        ref = prepare(ref_utts) if tr["advreg"]["reference"] == "speakers" else dev
        if not ref.utts:
            raise TrainingDataError("training.advreg: no usable reference utterances")
    for s in skipped:
        log.warning("skipped %s: %s", s["utt_id"], s["reason"])
    if not train.utts:
        raise TrainingDataError(
            f"no usable training utterances ({len(skipped)} skipped: {skipped[:3]})"
        )
    cmvn = global_stats if cfg["features"]["cmvn"] == "global" else None
    return TrainingData(split, train, dev, ref, skipped, cmvn, cache_stats, use_alignment)


def _split(utterances: Sequence[Utterance], tr: dict, seed: int) -> UtteranceSplit:
    """The per-speaker split of ``training`` settings ``tr``; too few utterances are refused."""
    try:
        return split_utterances(
            utterances,
            int(tr["heldout_utterances_per_speaker"]),
            int(tr["dev_utterances_per_speaker"]),
            seed,
        )
    except SplitError as e:
        raise TrainingDataError(
            f"{e} (lower training.heldout_utterances_per_speaker or "
            "training.dev_utterances_per_speaker)"
        ) from e


def _use_alignment(usable: list[Utterance], targets: str) -> bool:
    """Whether initial targets come from alignments (``training.targets``; ``auto``: if all
    have one)."""
    use = all(u.alignment for u in usable) if targets == "auto" else targets == "alignment"
    if use and not all(u.alignment for u in usable):
        missing = next(u.utt_id for u in usable if not u.alignment)
        raise TrainingDataError(f"training.targets is 'alignment' but {missing} has no alignment")
    return use


def _reference_utterances(utterances, reference, cfg: dict, skipped: list[dict]) -> list:
    """The advreg reference utterances of ``reference: speakers`` (checked), else ``[]``."""
    adv = cfg["training"]["advreg"]
    if float(adv["lam"]) <= 0 or adv["reference"] != "speakers":
        return []
    if not reference:
        raise TrainingDataError(
            "training.advreg.reference is 'speakers' but no reference utterances were given "
            "(training.advreg.reference_speakers names them in the manifest)"
        )
    clash = {u.speaker for u in reference} & {u.speaker for u in utterances}
    if clash:
        raise TrainingDataError(f"advreg reference speakers are training speakers: {sorted(clash)}")
    return _check_phones(list(reference), skipped)


def _check_phones(utts: list[Utterance], skipped: list[dict]) -> list[Utterance]:
    ok = []
    for u in utts:
        try:
            if not u.phones:
                raise ValueError("no reference phones")
            phone_ids(u.phones)
            ok.append(u)
        except (UnknownPhoneError, ValueError) as e:
            skipped.append({"utt_id": u.utt_id, "reason": f"{u.path}: {e}"})
    return ok


def _prepare(
    utts: list[Utterance],
    raw: dict[str, torch.Tensor],
    cfg: dict,
    use_alignment: bool,
    global_stats,
    skipped: list[dict],
) -> PreparedSet:
    kept, phones, states = [], [], []
    for u in utts:
        if u.utt_id not in raw:
            continue  # unreadable audio, already in `skipped`
        ids = phone_ids(u.phones)  # checked by _check_phones
        try:
            states.append(_initial_states(u, ids, raw[u.utt_id], cfg, use_alignment))
        except (AlignmentError, UnknownPhoneError) as e:  # too short, or a bad alignment label
            skipped.append({"utt_id": u.utt_id, "reason": f"{u.path}: {e}"})
            continue
        kept.append(u)
        phones.append(ids)
    feats = _normalise(kept, raw, cfg["features"]["cmvn"], global_stats)
    return PreparedSet(kept, feats, phones, states)


def _initial_states(
    utt: Utterance, phones: np.ndarray, raw: torch.Tensor, cfg: dict, use_alignment: bool
) -> np.ndarray:
    k = int(cfg["hmm"]["states_per_phone"])
    if use_alignment:
        return alignment_states(utt.alignment, raw.shape[0], cfg["features"], k)
    log_energy = torch.logsumexp(raw.double(), dim=1).numpy()  # (frames,) from log-mel bins
    return flat_start_states(phones, raw.shape[0], k, speech_span(log_energy))


def _normalise(
    utts: list[Utterance], raw: dict[str, torch.Tensor], mode: str, global_stats
) -> list[torch.Tensor]:
    if mode == "none":
        return [raw[u.utt_id] for u in utts]
    if mode == "global":
        return [apply_cmvn(raw[u.utt_id], *global_stats) for u in utts]
    if mode == "utterance":
        return [apply_cmvn(raw[u.utt_id], *cmvn_stats([raw[u.utt_id]])) for u in utts]
    by_spk: dict[str, list[torch.Tensor]] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(raw[u.utt_id])
    stats = {s: cmvn_stats(f) for s, f in by_spk.items()}
    return [apply_cmvn(raw[u.utt_id], *stats[u.speaker]) for u in utts]
