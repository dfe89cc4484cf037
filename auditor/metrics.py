"""Membership-inference metrics shared by the speech audit and the CIFAR-10 attacks.

Every attack ends in one score per record (or per user), higher meaning "more likely a member".
:func:`membership_metrics` turns scores and true labels into the figures ``metrics.json`` holds
(``docs/design.md``, "Metrics and claims"): the reference paper's accuracy / precision / recall,
plus F1, ROC AUC, the true-positive rate at low false-positive rates, bootstrap 95% intervals
and the ROC points the plots draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_curve

_THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1")
#: The headline keys of :func:`membership_metrics` (what tables and summaries keep).
METRIC_KEYS = (*_THRESHOLD_METRICS, "auc", "tpr_at_fpr", "n_members", "n_nonmembers")


def fpr_key(fpr: float) -> str:
    """The ``tpr_at_fpr`` key for a false-positive rate, e.g. ``0.01 -> "0.01"``."""
    return repr(float(fpr))


def tpr_at_fpr(y_true, scores, fpr: float) -> float:
    """Largest TPR among thresholds whose FPR is at most ``fpr`` (no interpolation).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 for members, 0 for non-members.
    scores : array-like of shape (n,)
        Membership scores, higher = more likely member.
    fpr : float
        Target false-positive rate in [0, 1].

    Returns
    -------
    float
        The TPR of the most permissive threshold ``t`` (records with score >= ``t`` are called
        members) that calls at most ``floor(fpr * n_nonmembers)`` non-members members.
    """
    y_true, scores = _check_inputs(y_true, scores)
    return float(_tpr_at_fpr_rows(scores[None, y_true == 1], scores[None, y_true == 0], fpr)[0])


def membership_metrics(
    y_true,
    scores,
    *,
    threshold: float | None = None,
    y_pred=None,
    fprs: Sequence[float] = (0.01, 0.001),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Score a membership attack.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 for members, 0 for non-members; both classes must be present.
    scores : array-like of shape (n,)
        Membership scores, higher = more likely member.
    threshold : float, optional
        Records with ``score >= threshold`` are called members for accuracy, precision, recall
        and F1. Defaults to 0.5 (scores that are probabilities) unless ``y_pred`` is given.
    y_pred : array-like of shape (n,), optional
        The attack's own hard decisions (1 = member); used instead of a threshold.
    fprs : sequence of float
        False-positive rates at which to report the TPR.
    n_bootstrap : int
        Bootstrap resamples for the 95% intervals (members and non-members are resampled
        separately so both counts stay fixed); 0 skips the intervals. The intervals are over
        the *evaluated* records or users only: the trained models are held fixed, so they do
        not cover the spread over training runs or seeds.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``accuracy, precision, recall, f1, auc, tpr_at_fpr`` (keyed by :func:`fpr_key`; ``None``
        where ``1 / n_nonmembers > fpr``, explained in ``tpr_at_fpr_note``), ``n_members``,
        ``n_nonmembers``, ``threshold`` (``None`` when ``y_pred`` was given), ``ci95`` (metric ->
        ``[low, high]``; ``tpr_at_fpr`` nested the same way) and ``roc`` (``{"fpr": [...],
        "tpr": [...]}``).

    Examples
    --------
    >>> m = membership_metrics([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1], n_bootstrap=0)
    >>> m["auc"], m["accuracy"]
    (1.0, 1.0)
    """
    y_true, scores = _check_inputs(y_true, scores)
    if y_pred is not None:
        decisions = np.asarray(y_pred).astype(int).ravel()
        if decisions.shape != y_true.shape or not np.isin(decisions, (0, 1)).all():
            raise ValueError("y_pred must be 0/1 decisions with the same length as y_true")
        used_threshold = None
    else:
        used_threshold = 0.5 if threshold is None else float(threshold)
        decisions = (scores >= used_threshold).astype(int)
    members, nonmembers = y_true == 1, y_true == 0
    n_members, n_nonmembers = int(members.sum()), int(nonmembers.sum())

    result = _threshold_metrics_rows(decisions[None, members], decisions[None, nonmembers])
    result = {name: float(values[0]) for name, values in result.items()}
    result["auc"] = float(_auc_rows(scores[None, members], scores[None, nonmembers])[0])
    tprs, notes = {}, []
    for fpr in fprs:
        if 1.0 / n_nonmembers > fpr:
            tprs[fpr_key(fpr)] = None
            notes.append(
                f"TPR at FPR {fpr:g} is unmeasurable with {n_nonmembers} non-members: "
                f"the smallest non-zero FPR is 1/{n_nonmembers} = {1.0 / n_nonmembers:.3g}"
            )
        else:
            tprs[fpr_key(fpr)] = tpr_at_fpr(y_true, scores, fpr)
    result["tpr_at_fpr"] = tprs
    if notes:
        result["tpr_at_fpr_note"] = "; ".join(notes)
    result["n_members"] = n_members
    result["n_nonmembers"] = n_nonmembers
    result["threshold"] = used_threshold
    if n_bootstrap > 0:
        result["ci95"] = _bootstrap_ci95(
            scores[members],
            scores[nonmembers],
            decisions[members],
            decisions[nonmembers],
            [fpr for fpr in fprs if tprs[fpr_key(fpr)] is not None],
            n_bootstrap,
            seed,
        )
    roc_fpr, roc_tpr, _ = roc_curve(y_true, scores)
    result["roc"] = {"fpr": roc_fpr.tolist(), "tpr": roc_tpr.tolist()}
    return result


def _check_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if y_true.shape != scores.shape:
        raise ValueError(f"y_true has {y_true.size} entries but scores has {scores.size}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (non-member) and 1 (member)")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores hold {int((~np.isfinite(scores)).sum())} non-finite values")
    y_true = y_true.astype(int)
    if y_true.min() == y_true.max():
        raise ValueError("need both members (1) and non-members (0) to score an attack")
    return y_true, scores


def _auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC per row (Mann-Whitney with mid-ranks for ties); pos (B, n1), neg (B, n0)."""
    n1, n0 = pos.shape[1], neg.shape[1]
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # (B, n1 + n0)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _tpr_at_fpr_rows(pos: np.ndarray, neg: np.ndarray, fpr: float) -> np.ndarray:
    """Exact TPR at FPR <= ``fpr`` per row; pos (B, n1), neg (B, n0)."""
    n0 = neg.shape[1]
    allowed = int(np.floor(fpr * n0 + 1e-9))  # false positives we may make
    if allowed >= n0:
        return np.ones(pos.shape[0])
    # A threshold just above the (allowed+1)-th largest non-member score admits `allowed` of them
    # (fewer under ties); every member strictly above it is a true positive.
    cut = -np.sort(-neg, axis=1)[:, allowed]  # (B,)
    return (pos > cut[:, None]).mean(axis=1)


def _threshold_metrics_rows(pred_pos: np.ndarray, pred_neg: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall, F1 per row from 0/1 decisions on members / non-members."""
    tp = pred_pos.sum(axis=1).astype(float)
    fn = pred_pos.shape[1] - tp
    fp = pred_neg.sum(axis=1).astype(float)
    tn = pred_neg.shape[1] - fp
    called = tp + fp
    precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
    recall = tp / (tp + fn)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _bootstrap_ci95(pos_scores, neg_scores, pos_pred, neg_pred, fprs, n_bootstrap, seed) -> dict:
    """Percentile 95% intervals from resampling members and non-members separately."""
    rng = np.random.default_rng(seed)
    idx_pos = rng.integers(0, pos_scores.size, size=(n_bootstrap, pos_scores.size))
    idx_neg = rng.integers(0, neg_scores.size, size=(n_bootstrap, neg_scores.size))
    boot_pos, boot_neg = pos_scores[idx_pos], neg_scores[idx_neg]  # (B, n1), (B, n0)
    values = _threshold_metrics_rows(pos_pred[idx_pos], neg_pred[idx_neg])
    values["auc"] = _auc_rows(boot_pos, boot_neg)
    ci = {name: _percentile_interval(values[name]) for name in (*_THRESHOLD_METRICS, "auc")}
    ci["tpr_at_fpr"] = {
        fpr_key(fpr): _percentile_interval(_tpr_at_fpr_rows(boot_pos, boot_neg, fpr))
        for fpr in fprs
    }
    return ci


def _percentile_interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


#: How tables and reports label the bootstrap intervals of :func:`membership_metrics`.
CI_LABEL = "95% CI over users"


def fmt(value, digits: int = 3) -> str:
    """A table cell: ``n/a`` for None, ints as they are, other numbers to ``digits`` decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"
