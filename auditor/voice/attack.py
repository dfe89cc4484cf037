"""User-level attack models trained on shadow recognizers' per-user features.

Two attacks share the per-user vectors of :func:`auditor.voice.features.user_features`:

- :func:`make_forest_attack`: the random forest of the reference paper, "Membership Inference
  Attack in IoT services" (Chu, Tsai and Tai), in a scikit-learn ``Pipeline``; its member
  probability is the user's score.
- :class:`CalibratedUserTest`: a likelihood-ratio test on one per-user score. On the shadow
  users it picks the feature that best separates IN from OUT (largest standardized mean
  gap), fits a Gaussian to each side, and for a new user reports the log likelihood ratio
  of the two Gaussians with their pooled variance (linear, hence monotone, in the score: a
  more member-like score never ranks lower, which unequal variances would break) and a
  one-sided p-value: the chance that an OUT user scores at least as member-like under the
  OUT Gaussian (the null hypothesis is "not a member").
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, check_X_y, validate_data


def make_forest_attack(n_estimators: int = 300, random_state: int = 0) -> Pipeline:
    """Scaler + ``RandomForestClassifier`` (balanced classes), as the reference paper uses.

    Examples
    --------
    >>> make_forest_attack().named_steps["forest"].n_estimators
    300
    """
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "forest",
                RandomForestClassifier(
                    n_estimators=n_estimators,
                    min_samples_leaf=2,
                    class_weight="balanced",
                    random_state=random_state,
                    n_jobs=1,
                ),
            ),
        ]
    )


class CalibratedUserTest(ClassifierMixin, BaseEstimator):
    """Likelihood-ratio membership test on the most separating per-user feature.

    Parameters
    ----------
    feature_names : list of str, optional
        Names of the columns of ``X`` (for ``score_name_``).
    min_std : float
        Floor on each fitted standard deviation (relative to the pooled one) so that a tiny
        shadow sample cannot give a degenerate Gaussian.

    Attributes
    ----------
    score_index_ : int
        Column of ``X`` used as the user score.
    score_name_ : str
        Its name (``feature_names[score_index_]`` or ``"x<i>"``).
    direction_ : float
        +1 if IN users score higher on it, -1 if lower.
    in_mean_, in_std_, out_mean_, out_std_ : float
        The fitted Gaussians (on ``direction_ * x``).
    pooled_std_ : float
        ``sqrt((in_std_**2 + out_std_**2) / 2)``: the common spread of the likelihood ratio.
    classes_ : ndarray of shape (2,)

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([0, 0, 1, 1])
    >>> test = CalibratedUserTest().fit(X, y)
    >>> test.predict([[1.05], [0.05]]).tolist()
    [1, 0]
    """

    def __init__(self, feature_names: list[str] | None = None, min_std: float = 0.05):
        self.feature_names = feature_names
        self.min_std = min_std

    def fit(self, X, y):
        X, y = check_X_y(X, y)
        X = validate_data(self, X, reset=True)
        self.classes_ = np.array([0, 1])
        if not set(np.unique(y)) == {0, 1}:
            raise ValueError("y must hold both 0 (OUT) and 1 (IN) shadow users")
        x_in, x_out = X[y == 1], X[y == 0]  # (n_in, d), (n_out, d)
        pooled = np.sqrt((x_in.var(axis=0) + x_out.var(axis=0)) / 2.0) + 1e-12  # (d,)
        gap = (x_in.mean(axis=0) - x_out.mean(axis=0)) / pooled  # (d,)
        self.score_index_ = int(np.argmax(np.abs(gap)))
        names = self.feature_names or [f"x{i}" for i in range(X.shape[1])]
        self.score_name_ = names[self.score_index_]
        self.direction_ = 1.0 if gap[self.score_index_] >= 0 else -1.0
        s_in = self.direction_ * x_in[:, self.score_index_]
        s_out = self.direction_ * x_out[:, self.score_index_]
        floor = self.min_std * pooled[self.score_index_]
        self.in_mean_, self.in_std_ = float(s_in.mean()), float(max(s_in.std(), floor))
        self.out_mean_, self.out_std_ = float(s_out.mean()), float(max(s_out.std(), floor))
        self.pooled_std_ = float(np.sqrt((self.in_std_**2 + self.out_std_**2) / 2.0))
        return self

    def score_of(self, X) -> np.ndarray:
        """The oriented user score ``direction_ * X[:, score_index_]`` (higher = more IN)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.direction_ * X[:, self.score_index_]  # (n,)

    def log_likelihood_ratio(self, X) -> np.ndarray:
        """``log p(score | IN) - log p(score | OUT)`` per user with the pooled variance, shape (n,).

        Equal variances make it linear in the score, increasing (``in_mean_ >= out_mean_``), so
        it ranks users as the score does; per-side variances would rank an extreme member (far
        beyond a narrow IN Gaussian) below a typical non-member.
        """
        s = self.score_of(X)
        return (
            (self.in_mean_ - self.out_mean_)
            / self.pooled_std_**2
            * (s - (self.in_mean_ + self.out_mean_) / 2.0)
        )

    def p_value(self, X) -> np.ndarray:
        """P(an OUT user scores >= this user's score) under the OUT Gaussian, shape (n,)."""
        return norm.sf(self.score_of(X), self.out_mean_, self.out_std_)

    def predict_proba(self, X) -> np.ndarray:
        """Posterior (OUT, IN) with equal priors, shape (n, 2)."""
        llr = np.clip(self.log_likelihood_ratio(X), -50.0, 50.0)
        p_in = 1.0 / (1.0 + np.exp(-llr))
        return np.column_stack([1.0 - p_in, p_in])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
