"""Shokri et al. (2017) shadow-model attack: k shadows, one attack model per class.

Each shadow is trained with the target's recipe on its own "in" records and queried on them and
on as many "out" records; for every class, an attack classifier learns in/out from the shadow
answers on records of that class (by default the answer's log-probabilities in class order, as
Shokri et al. feed the prediction vector; sorted is an option). At audit time the target's
answer on a record goes to the attack model of the record's class. Shadow data come from:

- ``"real"``: the auditor's own records (disjoint from the target's training set);
- ``"model"``: model-based synthesis, hill climbing on the target's confidence
  (:func:`~auditor.cifar.attacks.synthesis.model_based_synthesis`, counted in the query budget);
- ``"statistics"``: per-class feature marginals of the auditor's records;
- ``"noisy"``: the auditor's records with ``noise_fraction`` of their features resampled.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, clone

from auditor.cifar.attacks.blackbox import BlackBox
from auditor.cifar.attacks.mlleaks import default_attack_model
from auditor.cifar.attacks.shadow import in_out_splits, train_and_query
from auditor.cifar.attacks.signals import log_proba
from auditor.cifar.attacks.synthesis import (
    model_based_synthesis,
    noisy_real_data,
    statistics_based_synthesis,
)
from auditor.executor import as_executor

SHADOW_DATA = ("real", "model", "statistics", "noisy")
#: Attack features: log-probabilities in class order (the default) or sorted descending.
FEATURES = ("class_order", "sorted")


class ShokriAttack(BaseEstimator):
    """Shadow-model membership attack with per-class attack models.

    Parameters
    ----------
    target : callable
        Black box, records -> probabilities ``(n, C)``.
    recipe : object
        Trains a model like the target: ``fit(x, y, *, seed)``, ``predict_log_proba(model, x)``.
    n_shadows : int
        Shadow models (k).
    shadow_size : int, optional
        Records each shadow trains on (and as many it does not); default half the shadow data.
    shadow_data : {"real", "model", "statistics", "noisy"}
        Where shadow training data come from (module docstring).
    n_synthetic : int, optional
        Records to synthesize for ``"model"`` / ``"statistics"`` (default ``2 * shadow_size``,
        split evenly over classes).
    noise_fraction : float
        Fraction of features resampled for ``"noisy"``.
    synthesis : dict, optional
        Keyword arguments of :func:`~auditor.cifar.attacks.synthesis.model_based_synthesis`
        (``k_max``, ``k_min``, ``conf_min``, ``rej_max``, ``iter_max``, ``n_chains``).
    feature_range : tuple
        Range of feature values (random draws in synthesis and noise).
    features : {"class_order", "sorted"}
        Attack features: the log-probability vector in class order (default; the attack model
        of the record's class sees whether its label is the top class), or sorted descending
        (label-blind: a confident right answer and a confident wrong one look the same).
    attack_model : sklearn classifier, optional
        Cloned once per class; default an MLP with 64 hidden units on standardized features.
    executor : str or executor
        Where shadows train (:func:`auditor.executor.as_executor`).
    query_budget : int, optional
        Most records the attack may query (synthesis included).
    seed : int
        Seeds shadow splits, synthesis, shadows and attack models.

    Attributes
    ----------
    classes_ : np.ndarray
        Classes with an attack model.
    attack_models_ : dict
        Class -> fitted attack classifier.
    shadow_x_, shadow_y_ : np.ndarray
        The shadow data used.
    blackbox_ : BlackBox
        The counted access to the target.
    """

    def __init__(
        self,
        target=None,
        recipe=None,
        *,
        n_shadows: int = 4,
        shadow_size: int | None = None,
        shadow_data: str = "real",
        n_synthetic: int | None = None,
        noise_fraction: float = 0.1,
        synthesis: dict | None = None,
        feature_range: tuple = (0, 255),
        features: str = "class_order",
        attack_model=None,
        executor="local",
        query_budget: int | None = None,
        seed: int = 0,
    ):
        self.target = target
        self.recipe = recipe
        self.n_shadows = n_shadows
        self.shadow_size = shadow_size
        self.shadow_data = shadow_data
        self.n_synthetic = n_synthetic
        self.noise_fraction = noise_fraction
        self.synthesis = synthesis
        self.feature_range = feature_range
        self.features = features
        self.attack_model = attack_model
        self.executor = executor
        self.query_budget = query_budget
        self.seed = seed

    def fit(self, x, y, *, n_classes: int | None = None):
        """Build shadow data from ``x, y``, train the shadows and the per-class attack models.

        Parameters
        ----------
        x, y : np.ndarray
            The auditor's records and labels. For ``shadow_data="model"`` only their shape,
            dtype and classes are used (synthesis needs no real data).
        n_classes : int, optional
            Classes of the target (default: ``max(y) + 1``).
        """
        if self.shadow_data not in SHADOW_DATA:
            raise ValueError(f"unknown shadow_data {self.shadow_data!r}; expected {SHADOW_DATA}")
        if self.features not in FEATURES:
            raise ValueError(f"unknown features {self.features!r}; expected {FEATURES}")
        if self.n_shadows < 1:
            raise ValueError(f"n_shadows must be >= 1, got {self.n_shadows}")
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} records but {len(y)} labels")
        self.blackbox_ = BlackBox(self.target, self.query_budget)
        self.shadow_x_, self.shadow_y_ = self._shadow_data(x, y, n_classes)
        size = self.shadow_size or len(self.shadow_x_) // 2
        splits = in_out_splits(len(self.shadow_x_), size, self.n_shadows, self.seed)
        jobs = [
            {
                "recipe": self.recipe,
                "x_train": self.shadow_x_[i],
                "y_train": self.shadow_y_[i],
                "queries": {"in": self.shadow_x_[i], "out": self.shadow_x_[o]},
                "seed": self.seed + 1 + s,
            }
            for s, (i, o) in enumerate(splits)
        ]
        answers = as_executor(self.executor).map(train_and_query, jobs, desc="shokri shadows")
        feats, labels, membership = [], [], []
        for (in_idx, out_idx), answer in zip(splits, answers, strict=True):
            for name, idx, flag in (("in", in_idx, 1), ("out", out_idx, 0)):
                feats.append(self._features(answer[name]))
                labels.append(self.shadow_y_[idx])
                membership.append(np.full(len(idx), flag))
        feats, labels = np.concatenate(feats), np.concatenate(labels)
        membership = np.concatenate(membership)
        model = (
            self.attack_model if self.attack_model is not None else default_attack_model(self.seed)
        )
        self.classes_ = np.unique(labels)
        self.attack_models_ = {}
        for label in self.classes_:
            rows = labels == label
            if len(np.unique(membership[rows])) < 2:
                raise ValueError(
                    f"class {label}: shadow outputs hold only one of in/out; use more shadow data"
                )
            self.attack_models_[label] = clone(model).fit(feats[rows], membership[rows])
        return self

    def predict_proba(self, x, y) -> np.ndarray:
        """``(n, 2)``: non-member / member probability of records ``x`` with labels ``y``."""
        y = np.asarray(y)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"no attack model for class(es) {unknown.tolist()}")
        feats = self._features(log_proba(self.blackbox_(x)))
        proba = np.empty((len(y), 2))
        for label, model in self.attack_models_.items():
            rows = y == label
            if rows.any():
                proba[rows] = model.predict_proba(feats[rows])
        return proba

    def score_samples(self, x, y) -> np.ndarray:
        """Membership score per record ``(n,)``: the member probability."""
        return self.predict_proba(x, y)[:, 1]

    def predict(self, x, y) -> np.ndarray:
        """1 for records called members, 0 otherwise."""
        return (self.score_samples(x, y) >= 0.5).astype(int)

    def _features(self, log_p: np.ndarray) -> np.ndarray:
        """Attack features ``(n, C)`` of log-probabilities ``(n, C)`` (``features``)."""
        return -np.sort(-log_p, axis=1) if self.features == "sorted" else log_p

    def _shadow_data(self, x, y, n_classes):
        if self.shadow_data == "real":
            return x, y
        if self.shadow_data == "noisy":
            return noisy_real_data(
                x, self.noise_fraction, feature_range=self.feature_range, seed=self.seed
            ), y
        n_classes = n_classes or int(y.max()) + 1
        total = self.n_synthetic or 2 * (self.shadow_size or len(x) // 2)
        per_class = math.ceil(total / n_classes)
        if self.shadow_data == "statistics":
            return statistics_based_synthesis(x, y, per_class, seed=self.seed)
        records = [
            model_based_synthesis(
                self.blackbox_,
                c,
                per_class,
                x.shape[1:],
                feature_range=self.feature_range,
                dtype=x.dtype,
                seed=self.seed + c,
                **(self.synthesis or {}),
            )
            for c in range(n_classes)
        ]
        return np.concatenate(records), np.repeat(np.arange(n_classes), per_class)
