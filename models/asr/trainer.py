"""The recognizer's frame trainer: network, optimiser, mini-batch steps, DP-SGD and advreg wiring.

A :class:`FrameTrainer` holds the frame MLP, its optimiser and the preloaded training frames
(spliced windows of one tensor, drawn in shuffled mini-batches), and the HMM estimated from the
current targets. It trains an epoch, measures the dev set, re-aligns the targets by forced
Viterbi and halves the learning rate; the order of those steps is the schedule's
(:mod:`models.asr.schedule`).

Defenses (config ``training.advreg`` and ``training.dpsgd``; L2 is ``training.weight_decay``,
dropout ``network.dropout``; named settings in :mod:`models.asr.defenses`):

- adversarial regularization (:mod:`models.privacy.advreg`) at frame level: after
  ``warmup_epochs``, each mini-batch first trains the inference model ``k_steps`` times to tell
  the network's state posteriors (with the target state) on the batch's training frames from
  those on as many random reference frames, both computed in eval mode (what the device
  serves); then the network steps on cross-entropy + the penalty of
  :meth:`~models.privacy.advreg.AdversarialRegularizer.penalty` (``lam`` x a term that grows
  with the inference model's membership confidence on the batch). The reference frames are the
  dev utterances of the training speakers (``reference: dev``) or the utterances of other
  speakers passed as ``reference`` (``reference: speakers``). Per epoch the history logs the
  inference model's loss (binary cross-entropy; ``log 2 = 0.693`` is chance).
- DP-SGD (:mod:`models.privacy.dpsgd`, Opacus; refused with advreg): the records are the
  spliced windows (``2 * context + 1`` frames around each training frame), Poisson-sampled
  through a ``DataLoader`` over window indices; each window's gradient is clipped to
  ``max_grad_norm`` and Gaussian noise added (``grad_sample_mode: ghost``, Opacus' fast
  gradient clipping, computes the per-window gradient norms without materialising per-window
  gradients; ``hooks`` does); batch norm becomes group norm (``ModuleValidator.fix``), recorded
  in ``model.json``'s architecture. The accountant's epsilon at
  ``delta = min(training.dpsgd.delta, 1 / (10 n))`` (``n`` training windows) is logged per
  epoch; what it covers is stated in ``model.json`` (:func:`models.asr.train.train_recognizer`).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from corpora.phones import fold_48_to_39
from models.asr.data import PreparedSet, TrainingData, TrainingDataError
from models.asr.features import SplicedFrames
from models.asr.hmm import HmmParams
from models.asr.network import FrameMlp, describe_network
from models.asr.recognizer import Recognizer
from models.asr.scoring import per, sum_counts
from models.asr.viterbi import AlignmentError, forced_align


class FrameTrainer:
    """The network, its optimiser and the preloaded frames; one method per training step kind.

    ``data.ref`` (prepared non-member utterances) is needed when adversarial regularization is
    on (``training.advreg.lam > 0``). ``cfg`` is the resolved config; ``seed`` seeds the batch
    order, DP-SGD's sampling and noise and the advreg draws (the network's initialisation comes
    from torch's global generator).
    """

    def __init__(self, data: TrainingData, cfg: dict, seed: int):
        tr, net = cfg["training"], cfg["network"]
        self.train, self.dev, self.cfg, self.cmvn = data.train, data.dev, cfg, data.cmvn
        context = int(cfg["features"]["context"])
        self.frames = self.train.frames(context)
        self.targets = self.train.target_tensor()  # (train frames,)
        self.dev_frames = self.dev.frames(context) if self.dev.utts else None
        self.n_states = 48 * int(cfg["hmm"]["states_per_phone"])
        hidden, dropout = list(net["hidden"]), float(net["dropout"])
        self.network = FrameMlp(
            self.frames.input_dim, self.n_states, hidden, dropout, bool(net["batch_norm"])
        )
        lr, wd = float(tr["learning_rate"]), float(tr["weight_decay"])
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr, weight_decay=wd)
        self.gen = torch.Generator().manual_seed(seed)
        self.batch = int(tr["batch_size"])
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.hmm = estimate_hmm(self.train, cfg)
        self.seconds = 0.0  # spent in mini-batch steps
        self.frames_seen = 0
        self.epochs_done = 0
        self.model = self.network  # what the mini-batch steps call (Opacus wraps it)
        self.dp, self.delta = None, None
        if tr["dpsgd"]["enabled"]:
            self._make_private(seed, lambda ps: torch.optim.Adam(ps, lr=lr, weight_decay=wd))
        adv = tr["advreg"]
        self.adv, self.adv_warmup, self.adv_k = None, int(adv["warmup_epochs"]), int(adv["k_steps"])
        if float(adv["lam"]) > 0:
            self._regularize(data.ref, seed)

    def _make_private(self, seed: int, optimizer_factory) -> None:
        """DP-SGD: Opacus wraps the network; one record is one spliced window."""
        from torch.utils.data import DataLoader, TensorDataset

        from models.privacy.dpsgd import default_delta, make_private

        dp = self.cfg["training"]["dpsgd"]
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
            optimizer_factory=optimizer_factory,
            grad_sample_mode="ghost" if ghost else "hooks",
            criterion=torch.nn.CrossEntropyLoss() if ghost else None,
        )
        self.network = self.dp.network  # batch norm -> group norm when it had batch norm
        self.network.arch = describe_network(self.network)
        self.model, self.optimizer = self.dp.module, self.dp.optimizer
        self.delta = default_delta(len(self.frames), float(dp["delta"]))

    def _regularize(self, reference: PreparedSet | None, seed: int) -> None:
        """Adversarial regularization: the inference model and the reference frames."""
        from models.privacy.advreg import AdversarialRegularizer

        adv = self.cfg["training"]["advreg"]
        if reference is None or not reference.utts:
            raise TrainingDataError("training.advreg needs reference (non-member) utterances")
        self.adv = AdversarialRegularizer(
            self.n_states, lam=float(adv["lam"]), attack_lr=float(adv["attack_lr"]), seed=seed
        )
        self.ref_frames = reference.frames(int(self.cfg["features"]["context"]))
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
        return log_posteriors(self.network, self.dev_frames, [f.shape[0] for f in self.dev.feats])

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
            "dev_per": decode_per(self.recognizer(), self.dev, log_post)["per"],
        }

    def realign(self) -> int:
        """Forced re-alignment of train and dev targets; re-estimates the HMM; returns failures."""
        self.hmm = estimate_hmm(self.train, self.cfg)
        lengths = [f.shape[0] for f in self.train.feats]
        failed = _realign(self.train, log_posteriors(self.network, self.frames, lengths), self.hmm)
        if self.dev_frames is not None:
            _realign(self.dev, self.dev_log_posteriors(), self.hmm)
        self.targets = self.train.target_tensor()
        self.hmm = estimate_hmm(self.train, self.cfg)
        return failed

    def halve_lr(self, factor: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] *= factor


@torch.no_grad()
def log_posteriors(
    network: torch.nn.Module, frames: SplicedFrames, lengths: list[int], chunk: int = 8192
) -> list[np.ndarray]:
    """Per-utterance (frames, S) float64 log state posteriors of the utterances of ``lengths``
    frames in ``frames``, the network in eval mode."""
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


def decode_per(
    rec: Recognizer, data: PreparedSet, log_post: list[np.ndarray], decoding: dict | None = None
) -> dict:
    """Summed phone error counts (:func:`models.asr.scoring.sum_counts`) of decoding ``data``."""
    hyps = rec.decode_log_posteriors(log_post, decoding=decoding)
    return sum_counts(
        per(fold_48_to_39(u.phones), h.phones39) for u, h in zip(data.utts, hyps, strict=True)
    )


def estimate_hmm(data: PreparedSet, cfg: dict) -> HmmParams:
    """HMM transitions, priors and phone bigram from the current targets of ``data``."""
    return HmmParams.estimate(
        data.states,
        data.phones,
        int(cfg["hmm"]["states_per_phone"]),
        float(cfg["hmm"]["lm_smoothing"]),
    )
