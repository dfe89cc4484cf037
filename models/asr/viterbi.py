"""Viterbi search of the hybrid recognizer, vectorised over states and over a batch.

:func:`decode_phone_loop` finds the best state path through a loop of all phones (bigram LM
and insertion penalty on each phone entry) for a padded batch of utterances;
:func:`forced_align` finds the best state path through one known phone sequence (used to
refine training targets). Both take per-frame state log-likelihoods (log posterior minus log
prior) and the :class:`~models.asr.hmm.HmmParams`; the acoustic scale multiplies the
log-likelihoods, transitions and LM are unscaled. Scores are natural-log path scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.asr.hmm import HmmParams

NEG_INF = -np.inf


class AlignmentError(ValueError):
    """A phone sequence that cannot be aligned to the frames (too few frames)."""


@dataclass
class ViterbiPath:
    """Best path of one utterance: ``states`` (frames,) int64 and its total ``score``."""

    states: np.ndarray
    score: float


def decode_phone_loop(
    loglikes: np.ndarray,
    lengths: np.ndarray,
    hmm: HmmParams,
    *,
    acoustic_scale: float,
    lm_weight: float = 1.0,
    insertion_penalty: float = 0.0,
) -> list[ViterbiPath]:
    """Best phone-loop paths of a padded batch.

    Parameters
    ----------
    loglikes : (batch, frames, S) state log-likelihoods; frames past ``lengths`` are ignored.
    lengths : (batch,) valid frames per utterance (each >= 1).
    hmm : topology, transitions and LM (S = n_phones * states_per_phone).
    acoustic_scale : weight of ``loglikes``.
    lm_weight : weight of the bigram LM log-probabilities.
    insertion_penalty : log-domain score added each time a phone is entered.

    Returns
    -------
    One :class:`ViterbiPath` per utterance, ending in a phone's last state.
    """
    b, t_max, s = loglikes.shape
    p, k = hmm.n_phones, hmm.states_per_phone
    if s != hmm.n_states:
        raise ValueError(f"loglikes have {s} states, the HMM has {hmm.n_states}")
    lengths = np.asarray(lengths, dtype=np.int64)
    emis = acoustic_scale * loglikes.reshape(b, t_max, p, k).astype(np.float64)  # (B, T, P, K)
    log_self = hmm.log_self.reshape(p, k)
    log_next = hmm.log_next.reshape(p, k)
    entry = lm_weight * hmm.lm_bigram + insertion_penalty  # (P_from, P_to)
    start = lm_weight * hmm.lm_start + insertion_penalty  # (P,)

    flat = np.arange(s).reshape(p, k)  # state id of (phone, k)
    back = np.empty((t_max, b, p, k), dtype=np.int32)  # previous state of each state at t
    delta = np.full((b, p, k), NEG_INF)
    delta[:, :, 0] = start[None, :] + emis[:, 0, :, 0]
    back[0] = flat[None]
    for t in range(1, t_max):
        stay = delta + log_self  # (B, P, K)
        new = stay.copy()
        prev = np.broadcast_to(flat, (b, p, k)).copy()  # (B, P, K): self-loop by default
        if k > 1:
            move = delta[:, :, :-1] + log_next[:, :-1]  # (B, P, K-1)
            better = move > stay[:, :, 1:]
            new[:, :, 1:] = np.where(better, move, stay[:, :, 1:])
            prev[:, :, 1:] = np.where(better, flat[:, :-1], flat[:, 1:])
        leave = delta[:, :, -1] + log_next[:, -1]  # (B, P_from)
        cand = leave[:, :, None] + entry[None]  # (B, P_from, P_to)
        src = cand.argmax(axis=1)  # (B, P_to)
        best_entry = np.take_along_axis(cand, src[:, None, :], axis=1)[:, 0]  # (B, P_to)
        enter = best_entry > new[:, :, 0]
        new[:, :, 0] = np.where(enter, best_entry, new[:, :, 0])
        prev[:, :, 0] = np.where(enter, flat[src, k - 1], prev[:, :, 0])
        new += emis[:, t]
        active = (t < lengths)[:, None, None]  # (B, 1, 1)
        delta = np.where(active, new, delta)
        back[t] = np.where(active, prev, flat[None])

    finals = delta[:, :, -1]  # (B, P)
    last_phone = finals.argmax(axis=1)  # (B,)
    paths = []
    for i in range(b):
        n = int(lengths[i])
        states = np.empty(n, dtype=np.int64)
        states[-1] = flat[last_phone[i], k - 1]
        back_i = back[:, i].reshape(t_max, s)  # (T, S)
        for t in range(n - 1, 0, -1):
            states[t - 1] = back_i[t, states[t]]
        paths.append(ViterbiPath(states=states, score=float(finals[i, last_phone[i]])))
    return paths


def forced_align(
    loglikes: np.ndarray,
    phones: np.ndarray,
    hmm: HmmParams,
    *,
    acoustic_scale: float = 1.0,
) -> ViterbiPath:
    """Best state path through exactly the phone sequence ``phones``.

    Parameters
    ----------
    loglikes : (frames, S) state log-likelihoods of one utterance.
    phones : (N,) phone ids in order; each phone takes at least ``states_per_phone`` frames.
    hmm : transitions (the LM is not used).
    acoustic_scale : weight of ``loglikes``.

    Raises
    ------
    AlignmentError : when frames < N * states_per_phone.
    """
    t_max = loglikes.shape[0]
    k = hmm.states_per_phone
    chain = (
        np.asarray(phones, dtype=np.int64)[:, None] * k + np.arange(k)[None, :]
    ).ravel()  # (C,)
    c = chain.size
    if t_max < c:
        raise AlignmentError(f"{t_max} frames cannot hold {len(phones)} phones x {k} states")
    emis = acoustic_scale * loglikes[:, chain].astype(np.float64)  # (T, C)
    log_self = hmm.log_self[chain]  # (C,)
    log_next = hmm.log_next[chain]  # (C,)
    from_prev = np.zeros((t_max, c), dtype=bool)  # True: came from chain position j - 1
    delta = np.full(c, NEG_INF)
    delta[0] = emis[0, 0]
    for t in range(1, t_max):
        stay = delta + log_self
        move = np.concatenate(([NEG_INF], delta[:-1] + log_next[:-1]))  # (C,)
        from_prev[t] = move > stay
        delta = np.maximum(stay, move) + emis[t]
    score = float(delta[-1])
    pos = np.empty(t_max, dtype=np.int64)
    j = c - 1
    for t in range(t_max - 1, -1, -1):
        pos[t] = j
        if t > 0 and from_prev[t, j]:
            j -= 1
    return ViterbiPath(states=chain[pos], score=score)
