"""Viterbi decoding and forced alignment against brute-force enumeration on tiny random HMMs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.asr.hmm import HmmParams
from models.asr.viterbi import AlignmentError, decode_phone_loop, forced_align


def random_hmm(rng: np.random.Generator, n_phones: int, k: int) -> HmmParams:
    s = n_phones * k
    stay = rng.uniform(0.1, 0.9, s)
    start = rng.dirichlet(np.ones(n_phones))
    bigram = rng.dirichlet(np.ones(n_phones), size=n_phones)
    return HmmParams(
        states_per_phone=k,
        log_self=np.log(stay),
        log_next=np.log1p(-stay),
        log_priors=np.log(np.full(s, 1.0 / s)),
        lm_start=np.log(start),
        lm_bigram=np.log(bigram),
    )


def loop_path_score(states, emis, hmm, scale, lm_w, pen):
    """Score of a state sequence under the phone loop, or -inf if it is not a valid path."""
    k = hmm.states_per_phone
    p0, k0 = divmod(states[0], k)
    if k0 != 0:
        return -np.inf
    score = lm_w * hmm.lm_start[p0] + pen + scale * emis[0, states[0]]
    for t in range(1, len(states)):
        a, b = states[t - 1], states[t]
        (pa, ka), (pb, kb) = divmod(a, k), divmod(b, k)
        options = []
        if a == b:
            options.append(hmm.log_self[a])
        if pa == pb and kb == ka + 1:
            options.append(hmm.log_next[a])
        if ka == k - 1 and kb == 0:
            options.append(hmm.log_next[a] + lm_w * hmm.lm_bigram[pa, pb] + pen)
        if not options:
            return -np.inf
        score += max(options) + scale * emis[t, b]
    if states[-1] % k != k - 1:
        return -np.inf
    return score


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_phones=st.integers(1, 3),
    k=st.integers(1, 2),
    frames=st.integers(1, 6),
    scale=st.sampled_from([0.1, 0.5, 1.0]),
    pen=st.sampled_from([-1.0, 0.0, 1.5]),
)
def test_phone_loop_matches_brute_force(seed, n_phones, k, frames, scale, pen):
    rng = np.random.default_rng(seed)
    hmm = random_hmm(rng, n_phones, k)
    s = n_phones * k
    if s**frames > 5000:
        frames = 3
    emis = rng.normal(size=(frames, s))
    best = max(
        loop_path_score(seq, emis, hmm, scale, 0.7, pen)
        for seq in itertools.product(range(s), repeat=frames)
    )
    (path,) = decode_phone_loop(
        emis[None],
        np.array([frames]),
        hmm,
        acoustic_scale=scale,
        lm_weight=0.7,
        insertion_penalty=pen,
    )
    if not np.isfinite(best):  # fewer frames than states of one phone: no valid path
        assert not np.isfinite(path.score)
        return
    assert path.score == pytest.approx(best, abs=1e-9)
    assert loop_path_score(tuple(path.states), emis, hmm, scale, 0.7, pen) == pytest.approx(
        best, abs=1e-9
    )


def test_batched_decoding_equals_one_by_one():
    rng = np.random.default_rng(1)
    hmm = random_hmm(rng, 4, 3)
    lengths = np.array([9, 20, 14])
    batch = np.zeros((3, 20, 12))
    singles = []
    for i, n in enumerate(lengths):
        e = rng.normal(size=(n, 12))
        batch[i, :n] = e
        singles.append(decode_phone_loop(e[None], np.array([n]), hmm, acoustic_scale=0.5)[0])
    together = decode_phone_loop(batch, lengths, hmm, acoustic_scale=0.5)
    for a, b in zip(singles, together, strict=True):
        assert a.score == b.score
        assert np.array_equal(a.states, b.states)


def chain_score(states, chain, emis, hmm, scale):
    """Score of frame->chain-position sequence for forced alignment, -inf when invalid."""
    if states[0] != 0 or states[-1] != len(chain) - 1:
        return -np.inf
    score = scale * emis[0, chain[0]]
    for t in range(1, len(states)):
        a, b = states[t - 1], states[t]
        if b == a:
            score += hmm.log_self[chain[a]]
        elif b == a + 1:
            score += hmm.log_next[chain[a]]
        else:
            return -np.inf
        score += scale * emis[t, chain[b]]
    return score


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 4),
    k=st.integers(1, 3),
    extra=st.integers(0, 5),
)
def test_forced_alignment_matches_brute_force(seed, n, k, extra):
    rng = np.random.default_rng(seed)
    hmm = random_hmm(rng, 3, k)
    phones = rng.integers(0, 3, size=n)
    chain = (phones[:, None] * k + np.arange(k)).ravel()
    frames = len(chain) + extra
    emis = rng.normal(size=(frames, hmm.n_states))
    best = -np.inf
    for advances in itertools.combinations(range(1, frames), len(chain) - 1):  # every monotone path
        seq = np.cumsum(np.isin(np.arange(frames), advances))
        best = max(best, chain_score(seq, chain, emis, hmm, 0.8))
    path = forced_align(emis, phones, hmm, acoustic_scale=0.8)
    assert path.score == pytest.approx(best, abs=1e-9)


def test_forced_alignment_is_monotone_and_covers_every_phone():
    rng = np.random.default_rng(7)
    hmm = random_hmm(rng, 5, 3)
    phones = np.array([0, 3, 3, 1, 4, 2])
    path = forced_align(rng.normal(size=(60, 15)), phones, hmm)
    chain = (phones[:, None] * 3 + np.arange(3)).ravel()
    # map each frame back to its chain position: positions must be 0..C-1, each step 0 or +1
    pos = np.zeros(60, dtype=int)
    for t in range(1, 60):
        pos[t] = (
            pos[t - 1]
            if path.states[t] == chain[pos[t - 1]]
            and (pos[t - 1] + 1 >= len(chain) or path.states[t] != chain[pos[t - 1] + 1])
            else pos[t - 1] + 1
        )
    assert pos[-1] == len(chain) - 1
    assert np.all(np.diff(pos) >= 0) and np.all(np.diff(pos) <= 1)
    assert np.array_equal(path.states, chain[pos])


def test_forced_alignment_refuses_too_few_frames():
    hmm = random_hmm(np.random.default_rng(0), 3, 3)
    with pytest.raises(AlignmentError, match="5 frames cannot hold 2 phones x 3 states"):
        forced_align(np.zeros((5, 9)), np.array([0, 1]), hmm)
