"""Training-free threshold attacks (ML-Leaks adversary 3; Salem et al. 2019).

A record is called a member when the target's answer on it is confident enough: the maximum
posterior is high, or the entropy is low. The threshold is either chosen on a shadow model's
outputs for known members / non-members (the one that maximizes accuracy) or set at a stated
percentile of the signal on records known to be non-members (or random noise).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from auditor.cifar.attacks.blackbox import BlackBox
from auditor.cifar.attacks.signals import entropy, max_posterior

SIGNALS = ("max_posterior", "entropy")


class ThresholdAttack(BaseEstimator):
    """Member if the target's max posterior is high (or its entropy low).

    Parameters
    ----------
    target : callable
        Black box, records -> probabilities ``(n, C)``.
    signal : {"max_posterior", "entropy"}
        What is thresholded; the membership score is the max posterior or minus the entropy.
    percentile : float, optional
        When set, ``fit(x)`` puts the threshold at this percentile (0-100) of the score on
        ``x`` (records taken as non-members); otherwise ``fit(proba, membership)`` picks the
        accuracy-maximizing threshold on labelled shadow outputs.
    query_budget : int, optional
        Most records the attack may query.

    Attributes
    ----------
    threshold_ : float
        Scores at or above it are called members.
    blackbox_ : BlackBox
        The counted access to the target.

    Examples
    --------
    >>> attack = ThresholdAttack(target, percentile=95).fit(x_reference)  # doctest: +SKIP
    >>> scores = attack.score_samples(x_candidates)  # doctest: +SKIP
    """

    def __init__(
        self,
        target=None,
        *,
        signal: str = "max_posterior",
        percentile: float | None = None,
        query_budget: int | None = None,
    ):
        self.target = target
        self.signal = signal
        self.percentile = percentile
        self.query_budget = query_budget

    def fit(self, x, membership=None, *, shadow_proba=None):
        """Choose the threshold.

        Parameters
        ----------
        x : np.ndarray or None
            With ``percentile``: reference records, queried on the target, taken as
            non-members. Without: ignored when ``shadow_proba`` is given.
        membership : array-like of shape (n,), optional
            1 / 0 labels of the shadow outputs (needed without ``percentile``).
        shadow_proba : np.ndarray, optional
            A shadow model's probabilities ``(n, C)`` on its own members and non-members.
        """
        if self.signal not in SIGNALS:
            raise ValueError(f"unknown signal {self.signal!r}; expected one of {SIGNALS}")
        self.blackbox_ = BlackBox(self.target, self.query_budget)
        if self.percentile is not None:
            if not 0.0 <= self.percentile <= 100.0:
                raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")
            scores = self._score(self.blackbox_(x))
            self.threshold_ = float(np.percentile(scores, self.percentile))
            return self
        if shadow_proba is None or membership is None:
            raise ValueError("without a percentile, fit needs shadow_proba and membership")
        self.threshold_ = best_threshold(self._score(shadow_proba), np.asarray(membership))
        return self

    def score_samples(self, x, y=None) -> np.ndarray:
        """Membership score per record ``(n,)`` (``y`` is accepted and unused)."""
        return self._score(self.blackbox_(x))

    def predict(self, x, y=None) -> np.ndarray:
        """1 for records called members, 0 otherwise."""
        return (self.score_samples(x) >= self.threshold_).astype(int)

    def _score(self, proba: np.ndarray) -> np.ndarray:
        return max_posterior(proba) if self.signal == "max_posterior" else -entropy(proba)


def best_threshold(scores: np.ndarray, membership: np.ndarray) -> float:
    """The threshold ``t`` (call members where ``score >= t``) with the highest accuracy."""
    scores = np.asarray(scores, dtype=np.float64)
    membership = np.asarray(membership).astype(int)
    if set(np.unique(membership)) != {0, 1}:
        raise ValueError("membership must contain both 0 (non-member) and 1 (member)")
    candidates = np.unique(scores)  # ascending
    # Members called at threshold t: those with score >= t; non-members rejected: score < t.
    pos_sorted = np.sort(scores[membership == 1])
    neg_sorted = np.sort(scores[membership == 0])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, candidates, side="left")
    tn = np.searchsorted(neg_sorted, candidates, side="left")
    accuracy = (tp + tn) / len(scores)
    return float(candidates[int(np.argmax(accuracy))])
