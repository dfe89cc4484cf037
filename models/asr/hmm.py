"""HMM side of the hybrid recognizer: topology, transitions, state priors and the bigram phone LM.

Each of the 48 phones has ``states_per_phone`` left-to-right states; state ``p * K + k`` is
state ``k`` of phone ``p`` (phone ids index :data:`corpora.phones.PHONES48`). Every state
has a self-loop and a forward transition (the last state's forward transition leaves the
phone). All parameters are estimated from frame-level state alignments and phone
transcripts, kept as float64 numpy log-probabilities and stored as JSON in ``model.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corpora.phones import PHONES48, UnknownPhoneError

PHONE_INDEX = {p: i for i, p in enumerate(PHONES48)}


def phone_ids(phones: Sequence[str]) -> np.ndarray:
    """48-set phone labels -> int64 ids; an unknown label raises :class:`UnknownPhoneError`."""
    try:
        return np.array([PHONE_INDEX[p] for p in phones], dtype=np.int64)
    except KeyError as e:
        raise UnknownPhoneError(f"phone {e.args[0]!r} is not in the 48-phone set") from None


def transition_counts(
    state_paths: Sequence[np.ndarray], n_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """Self-loop and leave counts per state ((n_states,) each) from frame-level state paths."""
    stay = np.zeros(n_states)
    leave = np.zeros(n_states)
    for path in state_paths:
        same = path[1:] == path[:-1]  # (frames - 1,)
        np.add.at(stay, path[:-1][same], 1.0)
        np.add.at(leave, path[:-1][~same], 1.0)
        leave[path[-1]] += 1.0  # the utterance end leaves the last state
    return stay, leave


@dataclass
class HmmParams:
    """Log-probabilities of the phone-loop HMM.

    Attributes
    ----------
    states_per_phone : K.
    log_self : (S,) log P(stay in state).
    log_next : (S,) log P(move to the next state / leave the phone).
    log_priors : (S,) log state priors (frame frequencies).
    lm_start : (P,) log P(first phone).
    lm_bigram : (P, P) log P(next phone | phone).
    """

    states_per_phone: int
    log_self: np.ndarray
    log_next: np.ndarray
    log_priors: np.ndarray
    lm_start: np.ndarray
    lm_bigram: np.ndarray

    @property
    def n_phones(self) -> int:
        return int(self.lm_start.shape[0])

    @property
    def n_states(self) -> int:
        return self.n_phones * self.states_per_phone

    @classmethod
    def estimate(
        cls,
        state_paths: Sequence[np.ndarray],
        phone_seqs: Sequence[np.ndarray],
        states_per_phone: int,
        lm_smoothing: float,
        n_phones: int = len(PHONES48),
    ) -> HmmParams:
        """Estimate every parameter from state paths (frames,) and phone-id sequences.

        Transition counts get one pseudo-count each way; priors get one pseudo-frame per
        state so that an unseen state keeps a finite prior; LM counts get ``lm_smoothing``
        each (a phone never seen followed by another gets a uniform successor distribution).
        """
        n_states = n_phones * states_per_phone
        stay, leave = transition_counts(state_paths, n_states)
        stay += 1.0
        leave += 1.0
        log_self = np.log(stay / (stay + leave))
        log_next = np.log(leave / (stay + leave))
        counts = np.ones(n_states)
        for path in state_paths:
            counts += np.bincount(path, minlength=n_states)
        log_priors = np.log(counts / counts.sum())
        start = np.full(n_phones, lm_smoothing)
        bigram = np.full((n_phones, n_phones), lm_smoothing)
        for seq in phone_seqs:
            start[seq[0]] += 1.0
            np.add.at(bigram, (seq[:-1], seq[1:]), 1.0)
        bigram[bigram.sum(axis=1) == 0] = 1.0  # a phone never followed: uniform successor
        with np.errstate(divide="ignore"):  # unseen events without smoothing: log 0 = -inf
            lm_start, lm_bigram = (
                np.log(start / start.sum()),
                np.log(bigram / bigram.sum(axis=1, keepdims=True)),
            )
        return cls(
            states_per_phone=states_per_phone,
            log_self=log_self,
            log_next=log_next,
            log_priors=log_priors,
            lm_start=lm_start,
            lm_bigram=lm_bigram,
        )

    def to_dict(self) -> dict:
        return {
            "states_per_phone": self.states_per_phone,
            "log_self": self.log_self.tolist(),
            "log_next": self.log_next.tolist(),
            "log_priors": self.log_priors.tolist(),
            "lm_start": self.lm_start.tolist(),
            "lm_bigram": self.lm_bigram.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> HmmParams:
        return cls(
            states_per_phone=int(d["states_per_phone"]),
            **{
                k: np.asarray(d[k], dtype=np.float64)
                for k in ("log_self", "log_next", "log_priors", "lm_start", "lm_bigram")
            },
        )
