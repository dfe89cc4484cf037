"""Output hardening: what a served classifier answers instead of its full probability vector.

Applied to probabilities ``(n, C)`` after the model, before the answer leaves the server:

- ``topk``: the ``k`` largest probabilities are kept, the others set to 0, and the kept ones
  divided by their sum (the answer stays a probability vector; ties at the k-th value are
  broken by class index);
- ``rounding``: every probability rounded to a multiple of ``10**-decimals`` so that the
  answer still sums to exactly 1 (largest-remainder rounding: each value is floored to the
  grid and the missing units go to the largest remainders; every value stays within
  ``10**-decimals`` of the true one and on the grid);
- ``label_only``: the one-hot vector of the predicted class (the voice path's transcript-only
  answer is the same idea).

``none`` returns the probabilities unchanged. Parameters are those of the registry
(:data:`models.privacy.registry.DEFENSES`).

Examples
--------
>>> harden(np.array([[0.5, 0.3, 0.2]]), "topk", k=1)
array([[1., 0., 0.]])
"""

from __future__ import annotations

import numpy as np

from models.privacy.registry import get_defense


def harden(proba: np.ndarray, name: str = "none", **params) -> np.ndarray:
    """float64 hardened answers ``(n, C)`` of probabilities ``proba (n, C)``.

    Parameters
    ----------
    proba : np.ndarray
        Probability vectors, one row per record.
    name : str
        ``"none"`` or a serving defense of the registry (``topk``, ``rounding``,
        ``label_only`` / ``transcript_only``).
    **params
        The defense's parameters (``k``; ``decimals``); missing ones take the registry default.
    """
    spec = get_defense(name)
    if spec.name != "none" and spec.stage != "serve":
        raise ValueError(f"defense {spec.name!r} acts at stage {spec.stage!r}, not at serving")
    p = spec.params(params)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"expected probabilities (n, C), got shape {proba.shape}")
    n, c = proba.shape
    if spec.name == "none":
        return proba.copy()
    if spec.name == "label_only":
        out = np.zeros_like(proba)
        out[np.arange(n), proba.argmax(axis=1)] = 1.0
        return out
    if spec.name == "topk":
        k = p["k"]
        if not 1 <= k <= c:
            raise ValueError(f"topk needs 1 <= k <= {c}, got {k}")
        keep = np.argsort(-proba, axis=1, kind="stable")[:, :k]  # (n, k)
        out = np.zeros_like(proba)
        rows = np.arange(n)[:, None]
        out[rows, keep] = proba[rows, keep]
        return out / out.sum(axis=1, keepdims=True)
    decimals = p["decimals"]
    if decimals < 0:
        raise ValueError(f"rounding needs decimals >= 0, got {decimals}")
    units = 10**decimals
    scaled = proba / proba.sum(axis=1, keepdims=True) * units  # (n, C)
    counts = np.floor(scaled)
    missing = np.rint(units - counts.sum(axis=1)).astype(int)  # (n,) units still to give out
    order = np.argsort(-(scaled - counts), axis=1, kind="stable")  # largest remainders first
    give = np.arange(c)[None, :] < missing[:, None]  # (n, C) in remainder order
    counts[np.arange(n)[:, None], order] += give
    return counts / units
