"""Shadow training data when the auditor has little or none (Shokri et al. 2017, section V-C).

- :func:`model_based_synthesis`: hill climbing on the target's confidence (Shokri et al.,
  Algorithm 1), querying the target only through a black-box ``query(x) -> proba`` callable
  (pass a :class:`~auditor.cifar.attacks.blackbox.BlackBox` to enforce a query budget).
- :func:`statistics_based_synthesis`: each feature drawn independently from its per-class
  marginal in the auditor's data.
- :func:`noisy_real_data`: real records with a fraction of their features resampled.

A *feature* is one value of a flattened record (one colour channel of one pixel for images).
Random feature values are uniform over ``feature_range``: integers (kept in the records' dtype)
when both bounds are ints, floats otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from auditor.cifar.attacks.blackbox import QueryBudgetExceeded

log = logging.getLogger(__name__)


def random_values(shape, feature_range: tuple, dtype, rng: np.random.Generator) -> np.ndarray:
    """Uniform random feature values of ``shape`` in ``feature_range`` (inclusive for ints)."""
    low, high = feature_range
    if isinstance(low, int | np.integer) and isinstance(high, int | np.integer):
        return rng.integers(low, high + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def model_based_synthesis(
    query: Callable[[np.ndarray], np.ndarray],
    target_class: int,
    n_records: int,
    record_shape: tuple[int, ...],
    *,
    feature_range: tuple = (0, 255),
    dtype=np.uint8,
    k_max: int = 128,
    k_min: int = 4,
    conf_min: float = 0.5,
    rej_max: int = 20,
    iter_max: int = 200,
    n_chains: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Synthesize records the target classifies as ``target_class`` with high confidence.

    Runs ``n_chains`` hill-climbing chains of Shokri et al.'s Algorithm 1 side by side (one
    batched query per step): start from a random record; keep a proposal when the target's
    confidence in ``target_class`` does not drop; accept it as a synthetic record, with
    probability equal to that confidence, once the confidence exceeds ``conf_min`` and the
    class is the target's top class; after ``rej_max`` consecutive rejected proposals halve
    the number ``k`` of features randomized per proposal (not below ``k_min``); give a chain
    up after ``iter_max`` steps and start a new one.

    Parameters
    ----------
    query : callable
        Black-box target, records ``(m, *record_shape)`` -> probabilities ``(m, C)``.
    target_class : int
        Class the synthetic records should be.
    n_records : int
        Records to return.
    record_shape : tuple of int
        Shape of one record (e.g. ``(32, 32, 3)``).
    feature_range, dtype
        Range and dtype of feature values.
    k_max, k_min : int
        Features randomized per proposal at the start / at least.
    conf_min : float
        Confidence a record needs before it may be accepted.
    rej_max : int
        Consecutive rejections before ``k`` is halved.
    iter_max : int
        Steps per chain before it is abandoned.
    n_chains : int
        Chains run side by side.
    seed : int
        Seed.

    Returns
    -------
    np.ndarray
        ``(n_records, *record_shape)`` records of ``dtype``.

    Raises
    ------
    QueryBudgetExceeded
        When ``query`` refuses more queries; the message says how many records were made.
    """
    rng = np.random.default_rng(seed)
    n_features = math.prod(record_shape)
    k_max = min(k_max, n_features)
    accepted: list[np.ndarray] = []
    n_started = 0
    try:
        while len(accepted) < n_records:
            x = random_values((n_chains, n_features), feature_range, dtype, rng)  # (B, F)
            best_x, best_conf = x.copy(), np.zeros(n_chains)
            rejections = np.zeros(n_chains, dtype=int)
            k = np.full(n_chains, k_max)
            active = np.ones(n_chains, dtype=bool)
            n_started += n_chains
            for _ in range(iter_max):
                rows = np.flatnonzero(active)
                proba = query(x[rows].reshape(len(rows), *record_shape))  # (m, C)
                conf = proba[:, target_class]
                improved = conf >= best_conf[rows]
                done = (
                    improved
                    & (conf > conf_min)
                    & (proba.argmax(axis=1) == target_class)
                    & (rng.random(len(rows)) < conf)
                )
                for row in rows[done]:
                    if len(accepted) < n_records:
                        accepted.append(x[row].copy())
                active[rows[done]] = False
                keep = rows[improved & ~done]
                best_x[keep], best_conf[keep], rejections[keep] = x[keep], conf[improved & ~done], 0
                worse = rows[~improved]
                rejections[worse] += 1
                stuck = worse[rejections[worse] > rej_max]
                k[stuck] = np.maximum(k_min, np.ceil(k[stuck] / 2)).astype(int)
                rejections[stuck] = 0
                if not active.any() or len(accepted) >= n_records:
                    break
                for row in np.flatnonzero(active):  # propose: randomize k features of the best
                    x[row] = best_x[row]
                    picked = rng.choice(n_features, size=k[row], replace=False)
                    x[row, picked] = random_values(k[row], feature_range, dtype, rng)
    except QueryBudgetExceeded as error:
        raise QueryBudgetExceeded(
            f"model-based synthesis for class {target_class} made {len(accepted)} of "
            f"{n_records} records before the query budget ran out ({error})"
        ) from error
    log.info("class %d: %d records from %d chains", target_class, len(accepted), n_started)
    return np.stack(accepted).reshape(n_records, *record_shape)


def statistics_based_synthesis(
    x: np.ndarray, y: np.ndarray, n_per_class: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Records whose features are drawn independently from per-class marginals of ``x``.

    Parameters
    ----------
    x : np.ndarray
        The auditor's records ``(n, ...)``.
    y : np.ndarray
        Their labels ``(n,)``.
    n_per_class : int
        Synthetic records per class present in ``y``.
    seed : int
        Seed.

    Returns
    -------
    x_syn, y_syn : np.ndarray
        ``(n_classes * n_per_class, ...)`` records (dtype of ``x``) and their labels.
    """
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x), np.asarray(y)
    flat = x.reshape(len(x), -1)  # (n, F)
    out_x, out_y = [], []
    for label in np.unique(y):
        members = flat[y == label]  # (n_c, F)
        donors = rng.integers(0, len(members), size=(n_per_class, flat.shape[1]))  # (m, F)
        out_x.append(np.take_along_axis(members, donors, axis=0))  # feature f from donor (i, f)
        out_y.append(np.full(n_per_class, label, dtype=y.dtype))
    x_syn = np.concatenate(out_x).reshape(-1, *x.shape[1:])
    return x_syn, np.concatenate(out_y)


def noisy_real_data(
    x: np.ndarray, fraction: float, *, feature_range: tuple = (0, 255), seed: int = 0
) -> np.ndarray:
    """Copy of ``x`` with ``fraction`` of each record's features replaced by random values."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"noise fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x)
    flat = x.reshape(len(x), -1).copy()  # (n, F)
    n_noisy = int(round(fraction * flat.shape[1]))
    for row in flat:
        picked = rng.choice(flat.shape[1], size=n_noisy, replace=False)
        row[picked] = random_values(n_noisy, feature_range, flat.dtype, rng)
    return flat.reshape(x.shape)
