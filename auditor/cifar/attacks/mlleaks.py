"""ML-Leaks adversary 1 (Salem et al. 2019): one shadow model, top-3 posteriors, one attack model.

The shadow is trained with the target's recipe on half of the auditor's data and queried on
both halves; an attack classifier learns in/out from the shadow's three largest posteriors
(sorted, class-agnostic). Because the features ignore the class, the shadow's data may come
from another distribution or dataset split ("data transferring", adversary 2): just ``fit`` on
that data.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.cifar.attacks.blackbox import BlackBox
from auditor.cifar.attacks.shadow import in_out_splits, train_and_query
from auditor.cifar.attacks.signals import log_proba, top_k_sorted
from auditor.executor import as_executor


def default_attack_model(seed: int):
    """ML-Leaks' attack model: an MLP with one hidden layer of 64, on standardized features."""
    return make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=seed)
    )


def posterior_features(proba: np.ndarray, top_k: int) -> np.ndarray:
    """Log of the ``top_k`` largest posteriors, ``(n, top_k)``.

    Logs keep members' near-1 confidences apart (``1 - 1e-6`` against ``1 - 1e-3``).
    """
    return log_proba(top_k_sorted(proba, top_k))


class MLLeaksAttack(BaseEstimator):
    """Single-shadow membership attack on the top-k sorted posteriors.

    Parameters
    ----------
    target : callable
        Black box, records -> probabilities ``(n, C)``.
    recipe : object
        Trains a model like the target: ``fit(x, y, *, seed)``, ``predict_log_proba(model, x)``
        (e.g. :class:`~auditor.cifar.attacks.shadow.CnnRecipe`).
    shadow_size : int, optional
        Shadow members (and as many shadow non-members); default half of the data given.
    top_k : int
        Posteriors kept (ML-Leaks: 3).
    attack_model : sklearn classifier, optional
        Cloned and fitted on the shadow features; default :func:`default_attack_model`.
    executor : str or executor
        Where the shadow trains (:func:`auditor.executor.as_executor`).
    query_budget : int, optional
        Most records the attack may query.
    seed : int
        Seeds the split, the shadow and the attack model.

    Attributes
    ----------
    attack_model_ : sklearn classifier
        Fitted on the shadow's member / non-member features.
    blackbox_ : BlackBox
        The counted access to the target.
    """

    def __init__(
        self,
        target=None,
        recipe=None,
        *,
        shadow_size: int | None = None,
        top_k: int = 3,
        attack_model=None,
        executor="local",
        query_budget: int | None = None,
        seed: int = 0,
    ):
        self.target = target
        self.recipe = recipe
        self.shadow_size = shadow_size
        self.top_k = top_k
        self.attack_model = attack_model
        self.executor = executor
        self.query_budget = query_budget
        self.seed = seed

    def fit(self, x, y):
        """Train the shadow on the auditor's records ``x`` / labels ``y`` and the attack model."""
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} records but {len(y)} labels")
        size = self.shadow_size or len(x) // 2
        ((in_idx, out_idx),) = in_out_splits(len(x), size, 1, self.seed)
        (answers,) = as_executor(self.executor).map(
            train_and_query,
            [
                {
                    "recipe": self.recipe,
                    "x_train": x[in_idx],
                    "y_train": y[in_idx],
                    "queries": {"in": x[in_idx], "out": x[out_idx]},
                    "seed": self.seed,
                }
            ],
            desc="ml-leaks shadow",
        )
        features = np.concatenate(
            [
                posterior_features(np.exp(answers["in"]), self.top_k),
                posterior_features(np.exp(answers["out"]), self.top_k),
            ]
        )
        membership = np.r_[np.ones(len(in_idx)), np.zeros(len(out_idx))].astype(int)
        model = (
            self.attack_model if self.attack_model is not None else default_attack_model(self.seed)
        )
        self.attack_model_ = clone(model).fit(features, membership)
        self.blackbox_ = BlackBox(self.target, self.query_budget)
        return self

    def predict_proba(self, x, y=None) -> np.ndarray:
        """``(n, 2)``: probabilities of non-member and member per record (``y`` unused)."""
        return self.attack_model_.predict_proba(posterior_features(self.blackbox_(x), self.top_k))

    def score_samples(self, x, y=None) -> np.ndarray:
        """Membership score per record ``(n,)``: the member probability."""
        return self.predict_proba(x, y)[:, 1]

    def predict(self, x, y=None) -> np.ndarray:
        """1 for records called members, 0 otherwise."""
        return (self.score_samples(x, y) >= 0.5).astype(int)
