"""Training of the hybrid recognizer from manifest utterances (vendor side and shadow models).

Data protocol (:func:`split_utterances`): for each speaker, its utterances are shuffled with
the seed; the first ``heldout_utterances_per_speaker`` are never used (the auditor's "unseen
audios of member speakers"), the next ``dev_utterances_per_speaker`` form the dev set (used
only for learning-rate halving, early stopping and tuning the decoder's acoustic scale and
insertion penalty), the rest are trained on. All three lists go to ``data.json``.

Targets: with alignments, states are split evenly inside each aligned phone; without, a
flat start (quiet edges to the end silences, the rest cut evenly per phone). Either way the
network is trained ``epochs_per_realign`` epochs and the targets are re-aligned by forced
Viterbi with the current network, ``realign_iterations`` times (``transcript_realign_iterations``
after a flat start), before a final stage of up to ``epochs`` epochs with learning-rate
halving on dev-loss plateaus and early stopping (best dev-loss weights kept).
Priors and transitions come from the final training alignment, the bigram LM from the
training transcripts. Frames are drawn in shuffled mini-batches from one preloaded tensor.

Defenses (config ``training.advreg`` and ``training.dpsgd``; L2 is ``training.weight_decay``,
dropout ``network.dropout``; named settings in :mod:`models.asr.defenses`):

- adversarial regularization (:mod:`models.privacy.advreg`) at frame level: after
  ``warmup_epochs``, each mini-batch first trains the inference model ``k_steps`` times to tell
  the network's state posteriors (with the target state) on the batch's training frames from
  those on as many random reference frames, both computed in eval mode (what the device
  serves); then the network steps on cross-entropy + the penalty of
  :meth:`~models.privacy.advreg.AdversarialRegularizer.penalty` (``lam`` x a term that grows
  with the inference model's membership confidence on the batch). The reference frames are the dev utterances of the
  training speakers (``reference: dev``) or the utterances of other speakers passed as
  ``reference`` (``reference: speakers``). Per epoch the history logs the inference model's
  loss (binary cross-entropy; ``log 2 = 0.693`` is chance).
- DP-SGD (:mod:`models.privacy.dpsgd`, Opacus; refused with advreg): the records are the
  spliced windows (``2 * context + 1`` frames around each training frame), Poisson-sampled
  through a ``DataLoader`` over window indices; each window's gradient is clipped to
  ``max_grad_norm`` and Gaussian noise added (``grad_sample_mode: ghost``, Opacus' fast
  gradient clipping, computes the per-window gradient norms without materialising per-window
  gradients; ``hooks`` does); batch norm becomes group norm (``ModuleValidator.fix``), recorded
  in ``model.json``'s architecture. The accountant's epsilon at
  ``delta = min(training.dpsgd.delta, 1 / (10 n))`` (``n`` training windows) is logged per
  epoch and stored in ``model.json`` (``training.defenses.dpsgd``) with what it covers
  (:func:`_dp_guarantee`): record-level DP of the network's SGD per window, not per frame (a
  frame is in up to ``2 * context + 1`` windows) nor per speaker (thousands of windows). The
  CMVN statistics, HMM priors and transitions, phone bigram, re-aligned targets and dev-set
  choices are learnt from the data without noise and are not covered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.hashing import digest
from corpora.manifest import Utterance
from corpora.phones import UnknownPhoneError, fold_48_to_39
from models.asr.config import resolve_config
from models.asr.features import FeatureCache, SplicedFrames, apply_cmvn, cmvn_stats
from models.asr.hmm import HmmParams, phone_ids
from models.asr.network import FrameMlp, describe_network
from models.asr.recognizer import Recognizer, save_recognizer
from models.asr.scoring import per, sum_counts
from models.asr.targets import alignment_states, flat_start_states, speech_span
from models.asr.viterbi import AlignmentError, forced_align

log = logging.getLogger(__name__)

DATA_JSON_NAME = "data.json"

#: Grid searched on dev after training when ``training.tune_decoding`` is true.
ACOUSTIC_SCALES = (0.2, 0.3, 0.5, 0.8)
INSERTION_PENALTIES = (0.0, 2.0, 4.0, 6.0, 8.0)


class TrainingDataError(ValueError):
    """Training data that cannot be used at all (no usable utterances, too few per speaker)."""


@dataclass
class DataSplit:
    """Utterances per role: ``train``, ``dev`` and ``heldout`` (never trained on)."""

    train: list[Utterance]
    dev: list[Utterance]
    heldout: list[Utterance]


def speaker_fingerprint(speakers: Sequence[str]) -> str:
    """Short hash of the sorted speaker set."""
    return digest("\n".join(sorted(set(speakers))))[:16]


def split_utterances(
    utterances: Sequence[Utterance], heldout: int, dev: int, seed: int
) -> DataSplit:
    """Per speaker: shuffle (seeded), take ``heldout``, then ``dev``, train on the rest.

    Raises :class:`TrainingDataError` naming a speaker with fewer than ``heldout + dev + 1``
    utterances.
    """
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    rng = np.random.default_rng(seed)
    split = DataSplit([], [], [])
    for spk in sorted(by_speaker):
        utts = sorted(by_speaker[spk], key=lambda u: u.utt_id)
        if len(utts) < heldout + dev + 1:
            raise TrainingDataError(
                f"speaker {spk} has {len(utts)} utterances; {heldout} held out + {dev} dev + 1 "
                "training utterance needed (lower training.heldout_utterances_per_speaker or "
                "training.dev_utterances_per_speaker)"
            )
        order = [utts[i] for i in rng.permutation(len(utts))]
        split.heldout += order[:heldout]
        split.dev += order[heldout : heldout + dev]
        split.train += order[heldout + dev :]
    return split


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


def _initial_states(
    utt: Utterance, phones: np.ndarray, raw: torch.Tensor, cfg: dict, use_alignment: bool
) -> np.ndarray:
    k = int(cfg["hmm"]["states_per_phone"])
    if use_alignment:
        return alignment_states(utt.alignment, raw.shape[0], cfg["features"], k)
    log_energy = torch.logsumexp(raw.double(), dim=1).numpy()  # (frames,) from log-mel bins
    return flat_start_states(phones, raw.shape[0], k, speech_span(log_energy))


@torch.no_grad()
def _log_posteriors(
    network: torch.nn.Module, frames: SplicedFrames, lengths: list[int], chunk: int = 8192
) -> list[np.ndarray]:
    network.eval()
    out = []
    for b in range(0, len(frames), chunk):
        idx = torch.arange(b, min(b + chunk, len(frames)))
        out.append(torch.log_softmax(network(frames.gather(idx)), dim=-1).double().numpy())
    logp = np.concatenate(out)  # (total frames, S)
    bounds = np.cumsum([0, *lengths])
    return [logp[b:e] for b, e in zip(bounds[:-1], bounds[1:], strict=True)]


def _realign(data: PreparedSet, log_post: list[np.ndarray], hmm: HmmParams) -> int:
    """Replace each utterance's targets by its forced alignment; return how many failed."""
    failed = 0
    for i, lp in enumerate(log_post):
        try:
            data.states[i] = forced_align(lp - hmm.log_priors, data.phones[i], hmm).states
        except AlignmentError:
            failed += 1  # too few frames for the phones: the previous targets are kept
    return failed


def _decode_per(
    rec: Recognizer, data: PreparedSet, log_post: list[np.ndarray], decoding: dict | None = None
) -> dict:
    hyps = rec.decode_log_posteriors(log_post, decoding=decoding)
    return sum_counts(
        per(fold_48_to_39(u.phones), h.phones39) for u, h in zip(data.utts, hyps, strict=True)
    )


def _estimate_hmm(data: PreparedSet, cfg: dict) -> HmmParams:
    return HmmParams.estimate(
        data.states,
        data.phones,
        int(cfg["hmm"]["states_per_phone"]),
        float(cfg["hmm"]["lm_smoothing"]),
    )


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


class _FrameTrainer:
    """The network, its optimiser and the preloaded frames; one method per training step kind.

    ``reference`` (prepared non-member utterances) is needed when adversarial regularization is
    on (``training.advreg.lam > 0``).
    """

    def __init__(
        self,
        train: PreparedSet,
        dev: PreparedSet,
        cfg: dict,
        seed: int,
        cmvn,
        reference: PreparedSet | None = None,
    ):
        tr, net = cfg["training"], cfg["network"]
        self.train, self.dev, self.cfg, self.cmvn = train, dev, cfg, cmvn
        context = int(cfg["features"]["context"])
        self.frames = train.frames(context)
        self.targets = train.target_tensor()  # (train frames,)
        self.dev_frames = dev.frames(context) if dev.utts else None
        n_states = 48 * int(cfg["hmm"]["states_per_phone"])
        hidden, dropout = list(net["hidden"]), float(net["dropout"])
        self.network = FrameMlp(
            self.frames.input_dim, n_states, hidden, dropout, bool(net["batch_norm"])
        )
        lr, wd = float(tr["learning_rate"]), float(tr["weight_decay"])
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr, weight_decay=wd)
        self.gen = torch.Generator().manual_seed(seed)
        self.batch = int(tr["batch_size"])
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.hmm = _estimate_hmm(train, cfg)
        self.seconds = 0.0  # spent in mini-batch steps
        self.frames_seen = 0
        self.epochs_done = 0
        self.model = self.network  # what the mini-batch steps call (Opacus wraps it)

        self.dp, self.delta = None, None
        dp = tr["dpsgd"]
        if dp["enabled"]:
            from torch.utils.data import DataLoader, TensorDataset

            from models.privacy.dpsgd import default_delta, make_private

            index = TensorDataset(torch.arange(len(self.frames)))  # record = one spliced window
            loader = DataLoader(index, batch_size=self.batch, shuffle=True, generator=self.gen)
            ghost = dp["grad_sample_mode"] == "ghost"
            self.dp = make_private(
                self.network,
                None,
                loader,
                noise_multiplier=float(dp["noise_multiplier"]),
                max_grad_norm=float(dp["max_grad_norm"]),
                seed=seed,
                optimizer_factory=lambda ps: torch.optim.Adam(ps, lr=lr, weight_decay=wd),
                grad_sample_mode="ghost" if ghost else "hooks",
                criterion=torch.nn.CrossEntropyLoss() if ghost else None,
            )
            self.network = self.dp.network  # batch norm -> group norm when it had batch norm
            self.network.arch = describe_network(self.network)
            self.model, self.optimizer = self.dp.module, self.dp.optimizer
            self.delta = default_delta(len(self.frames), float(dp["delta"]))

        adv = tr["advreg"]
        self.adv, self.adv_warmup, self.adv_k = None, int(adv["warmup_epochs"]), int(adv["k_steps"])
        if float(adv["lam"]) > 0:
            from models.privacy.advreg import AdversarialRegularizer

            if reference is None or not reference.utts:
                raise TrainingDataError("training.advreg needs reference (non-member) utterances")
            self.adv = AdversarialRegularizer(
                n_states, lam=float(adv["lam"]), attack_lr=float(adv["attack_lr"]), seed=seed
            )
            self.ref_frames = reference.frames(context)
            self.ref_targets = reference.target_tensor()  # (reference frames,)
            self.adv_gen = torch.Generator().manual_seed(seed + 7919)  # own stream: reference draws

    def epsilon(self) -> float | None:
        """DP-SGD's epsilon at ``delta`` so far (``None`` without DP-SGD)."""
        if self.dp is None:
            return None
        from models.privacy.dpsgd import epsilon

        return epsilon(self.dp.engine, self.delta)

    def _batches(self):
        """Index batches of one epoch: Poisson-sampled under DP-SGD, else a seeded shuffle."""
        if self.dp is not None:
            for (idx,) in self.dp.data_loader:
                yield idx
            return
        perm = torch.randperm(len(self.frames), generator=self.gen)  # (train frames,)
        for b in range(0, perm.numel(), self.batch):
            yield perm[b : b + self.batch]

    def _attack_steps(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Advreg max step(s) on the batch's frames against random reference frames.

        Through :meth:`~models.privacy.advreg.AdversarialRegularizer.max_steps`: the inference
        model sees the network's eval-mode posteriors (what the device serves).
        """

        def draw_reference():  # as many random reference frames: (b, input_dim), (b,)
            ridx = torch.randint(len(self.ref_frames), (x.shape[0],), generator=self.adv_gen)
            return self.ref_frames.gather(ridx), self.ref_targets[ridx]

        return self.adv.max_steps(self.network, x, y, draw_reference, self.adv_k)

    def step(self, idx: torch.Tensor) -> dict:
        """One mini-batch step on training frames ``idx`` (the advreg max steps first, if on)."""
        x, y = self.frames.gather(idx), self.targets[idx]  # (b, input_dim), (b,)
        out = {}
        game = self.adv is not None and self.epochs_done >= self.adv_warmup
        if game:
            out["attack_loss"] = self._attack_steps(x, y)
        logits = self.model(x)  # (b, S)
        criterion = self.dp.criterion if self.dp is not None and self.dp.criterion else None
        loss = (criterion or self.loss_fn)(logits, y)  # ghost clipping: Opacus' loss wrapper
        out["ce"] = loss.item()
        if game:
            penalty = self.adv.penalty(logits, y)
            out["penalty"] = penalty.item()
            loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return out

    def epoch(self) -> dict:
        """One pass over the training frames; returns mean mini-batch losses.

        ``train_loss`` (cross-entropy), and with adversarial regularization on
        ``advreg_attack_loss`` (the inference model's loss before each max step) and
        ``advreg_penalty`` (the classifier's penalty term).
        """
        self.network.train()
        sums: dict[str, float] = {}
        n_batches = 0
        t0 = time.perf_counter()
        for idx in self._batches():
            if idx.numel() < 2:
                continue  # batch norm needs two frames (a Poisson batch may even be empty)
            for key, value in self.step(idx).items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
        self.seconds += time.perf_counter() - t0
        self.frames_seen += len(self.frames)
        self.epochs_done += 1
        means = {k: v / max(n_batches, 1) for k, v in sums.items()}
        row = {"train_loss": means.get("ce", float("nan"))}
        if self.adv is not None:
            row["advreg_attack_loss"] = means.get("attack_loss", float("nan"))
            row["advreg_penalty"] = means.get("penalty", float("nan"))
        if self.dp is not None:
            row["epsilon"] = self.epsilon()
        return row

    def recognizer(self, meta: dict | None = None) -> Recognizer:
        return Recognizer(self.network, self.cfg, self.hmm, *(self.cmvn or (None, None)), meta=meta)

    def dev_log_posteriors(self) -> list[np.ndarray]:
        return _log_posteriors(self.network, self.dev_frames, [f.shape[0] for f in self.dev.feats])

    @torch.no_grad()
    def dev_metrics(self) -> dict:
        """Dev cross-entropy, frame accuracy (against the current dev targets) and PER."""
        if self.dev_frames is None:
            return {"dev_loss": float("nan"), "dev_acc": float("nan"), "dev_per": float("nan")}
        log_post = self.dev_log_posteriors()
        y = np.concatenate(self.dev.states)  # (dev frames,)
        lp = np.concatenate(log_post)  # (dev frames, S)
        return {
            "dev_loss": float(-lp[np.arange(y.size), y].mean()),
            "dev_acc": float((lp.argmax(axis=1) == y).mean()),
            "dev_per": _decode_per(self.recognizer(), self.dev, log_post)["per"],
        }

    def realign(self) -> int:
        """Forced re-alignment of train and dev targets; re-estimates the HMM; returns failures."""
        self.hmm = _estimate_hmm(self.train, self.cfg)
        lengths = [f.shape[0] for f in self.train.feats]
        failed = _realign(self.train, _log_posteriors(self.network, self.frames, lengths), self.hmm)
        if self.dev_frames is not None:
            _realign(self.dev, self.dev_log_posteriors(), self.hmm)
        self.targets = self.train.target_tensor()
        self.hmm = _estimate_hmm(self.train, self.cfg)
        return failed

    def halve_lr(self, factor: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] *= factor


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


def _load_data(utterances, cfg: dict, seed: int, cache_dir, progress: bool, reference=None):
    """Split, check phones, load features, normalise and build initial targets.

    Returns ``(split, train, dev, skipped, cmvn, cache_stats, use_alignment, ref)`` where ``ref``
    is the prepared advreg reference set (``None`` when adversarial regularization is off).
    """
    tr = cfg["training"]
    skipped: list[dict] = []
    split = split_utterances(
        utterances,
        int(tr["heldout_utterances_per_speaker"]),
        int(tr["dev_utterances_per_speaker"]),
        seed,
    )
    ref_utts = _reference_utterances(utterances, reference, cfg, skipped)
    usable = _check_phones(split.train + split.dev, skipped)
    use_alignment = (
        all(u.alignment for u in usable)
        if tr["targets"] == "auto"
        else tr["targets"] == "alignment"
    )
    if use_alignment and not all(u.alignment for u in usable):
        missing = next(u.utt_id for u in usable if not u.alignment)
        raise TrainingDataError(f"training.targets is 'alignment' but {missing} has no alignment")
    raw, feat_skipped, cache_stats = FeatureCache(cache_dir).load(
        usable + ref_utts, cfg["features"], int(cfg["decoding"]["min_frames"]), progress=progress
    )
    skipped += feat_skipped
    train_raw = [raw[u.utt_id] for u in split.train if u.utt_id in raw]
    global_stats = cmvn_stats(train_raw) if train_raw else None
    train = _prepare(split.train, raw, cfg, use_alignment, global_stats, skipped)
    dev = _prepare(split.dev, raw, cfg, use_alignment, global_stats, skipped)
    ref = None
    if float(tr["advreg"]["lam"]) > 0:
        ref = (
            _prepare(ref_utts, raw, cfg, use_alignment, global_stats, skipped)
            if tr["advreg"]["reference"] == "speakers"
            else dev
        )
        if not ref.utts:
            raise TrainingDataError("training.advreg: no usable reference utterances")
    for s in skipped:
        log.warning("skipped %s: %s", s["utt_id"], s["reason"])
    if not train.utts:
        raise TrainingDataError(
            f"no usable training utterances ({len(skipped)} skipped: {skipped[:3]})"
        )
    cmvn = global_stats if cfg["features"]["cmvn"] == "global" else None
    return split, train, dev, skipped, cmvn, cache_stats, use_alignment, ref


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
    tr = cfg["training"]
    torch.manual_seed(seed)
    started = time.perf_counter()
    split, train, dev, skipped, cmvn, cache_stats, use_alignment, ref = _load_data(
        utterances, cfg, seed, cache_dir, progress, reference
    )
    trainer = _FrameTrainer(train, dev, cfg, seed, cmvn, ref)
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

    tuning = _apply_decoder_tuning(trainer, cfg, dev)
    speakers = sorted({u.speaker for u in utterances})
    meta = {
        "seed": seed,
        "speaker_fingerprint": speaker_fingerprint(speakers),
        "n_speakers": len(speakers),
        "n_train_utterances": len(train.utts),
        "train_frames": len(trainer.frames),
        "targets": "alignment" if use_alignment else "transcript",
        "defenses": _defense_meta(cfg, trainer, ref),
    }
    recognizer = trainer.recognizer(meta)
    data_doc = _data_doc(seed, speakers, meta, split, train, dev, skipped, ref)
    report = {
        "model_id": recognizer.model_id,
        "targets": meta["targets"],
        "data": {
            k: (len(v) if isinstance(v, list) else v)
            for k, v in data_doc.items()
            if k != "dev_protocol"
        },
        "skipped": skipped,
        "epochs": epochs_log,
        "realign_failed": realign_failed,
        "kept_epoch": kept_epoch if best_state is not None else len(epochs_log),
        "decoding_tuning": tuning,
        "decoding": dict(cfg["decoding"]),
        "feature_cache": cache_stats,
        "train_frames_per_second": trainer.frames_seen / trainer.seconds
        if trainer.seconds
        else float("nan"),
        "train_seconds": trainer.seconds,
        "wall_seconds": time.perf_counter() - started,
        "defenses": meta["defenses"],
    }
    if out_dir is not None:
        _write_training_outputs(out_dir, recognizer, data_doc, report)
    return recognizer, report


def _run_epoch(
    trainer: _FrameTrainer, stage: str, epochs_log: list[dict], bar: tqdm, progress: bool
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
    trainer: _FrameTrainer, tr: dict, epochs_log: list[dict], bar: tqdm, progress: bool
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


def _apply_decoder_tuning(trainer: _FrameTrainer, cfg: dict, dev: PreparedSet) -> dict | None:
    """With ``training.tune_decoding`` and a dev set: tune on dev, set ``cfg["decoding"]``.

    Returns the tuning record (:func:`_tune_decoding`), else ``None``.
    """
    if not (cfg["training"]["tune_decoding"] and trainer.dev_frames is not None):
        return None
    tuning = _tune_decoding(trainer.recognizer(), dev, trainer.dev_log_posteriors())
    cfg["decoding"] |= tuning["best"]
    return tuning


def _data_doc(
    seed: int,
    speakers: list[str],
    meta: dict,
    split: DataSplit,
    train: PreparedSet,
    dev: PreparedSet,
    skipped: list[dict],
    ref: PreparedSet | None,
) -> dict:
    """The content of ``data.json``: which utterances went where, and why some were skipped."""
    return {
        "seed": seed,
        "speakers": speakers,
        "speaker_fingerprint": meta["speaker_fingerprint"],
        "train": [u.utt_id for u in train.utts],
        "dev": [u.utt_id for u in dev.utts],
        "heldout": [u.utt_id for u in split.heldout],
        "skipped": skipped,
        "advreg_reference": [] if ref is None else [u.utt_id for u in ref.utts],
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


def _defense_meta(cfg: dict, trainer: _FrameTrainer, ref: PreparedSet | None) -> dict:
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
            "reference_utterances": len(ref.utts),
            "reference_speakers": sorted({u.speaker for u in ref.utts}),
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


def _dp_guarantee(cfg: dict, trainer: _FrameTrainer) -> dict:
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


def _tune_decoding(rec: Recognizer, dev: PreparedSet, log_post: list[np.ndarray]) -> dict:
    """Grid-search acoustic scale and insertion penalty for the lowest dev PER."""
    grid = []
    for scale in ACOUSTIC_SCALES:
        for pen in INSERTION_PENALTIES:
            d = {"acoustic_scale": scale, "insertion_penalty": pen}
            grid.append(d | {"dev_per": _decode_per(rec, dev, log_post, d)["per"]})
    best = min(grid, key=lambda g: g["dev_per"])
    return {"grid": grid, "best": {k: best[k] for k in ("acoustic_scale", "insertion_penalty")}}
