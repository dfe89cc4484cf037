"""Per-record signals computed from a model's answer (probabilities or log-probabilities).

Shared by the attacks: max posterior, entropy, top-k sorted posteriors, and LiRA's
logit-scaled confidence ``log p_y - log(1 - p_y)`` computed in log space so that confidences
near 1 keep their resolution.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

#: Floor for probabilities before taking logs (float64 keeps values far below this).
PROBA_FLOOR = 1e-300


def log_proba(proba: np.ndarray) -> np.ndarray:
    """Natural log of probabilities ``(n, C)``, floored at :data:`PROBA_FLOOR`."""
    return np.log(np.maximum(np.asarray(proba, dtype=np.float64), PROBA_FLOOR))


def max_posterior(proba: np.ndarray) -> np.ndarray:
    """Largest class probability per record, ``(n,)``."""
    return np.asarray(proba).max(axis=1)


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each record's answer, ``(n,)``."""
    proba = np.asarray(proba, dtype=np.float64)
    return -(proba * log_proba(proba)).sum(axis=1)


def top_k_sorted(proba: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest probabilities of each record, descending, ``(n, k)``."""
    proba = np.asarray(proba)
    if not 1 <= k <= proba.shape[1]:
        raise ValueError(f"k must be in 1..{proba.shape[1]}, got {k}")
    return -np.sort(-proba, axis=1)[:, :k]


def scaled_confidence(log_p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """LiRA's ``log p_y - log(sum_{j != y} p_j)`` from log-probabilities ``(n, C)``, ``(n,)``.

    Equal to ``log(p_y / (1 - p_y))`` but computed without forming ``1 - p_y``, which rounds to
    0 for well-fitted members.
    """
    log_p = np.asarray(log_p, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    rows = np.arange(len(y))
    others = log_p.copy()
    others[rows, y] = -np.inf
    return log_p[rows, y] - logsumexp(others, axis=1)
