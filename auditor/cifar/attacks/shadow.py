"""Training models like the target, in parallel: the recipe and the job the executor runs.

A *recipe* is how the attacker trains a model the way the target was trained (Shokri's
assumption that the learning algorithm is known). It has ``fit(x, y, *, seed) -> model`` and
``predict_log_proba(model, x) -> (n, C)``. :class:`CnnRecipe` is the reference paper's CNN
(:mod:`models.vision.train`). :func:`train_and_query` is the job shadow and reference models
run through :mod:`auditor.executor`: it trains one model and returns only its answers to the
query sets, so no model crosses process boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from auditor.cifar.attacks.signals import log_proba
from corpora.splits import draw_splits
from models.privacy.serving import FULL, OutputPolicy
from models.vision.train import predict_logits, train_cnn


@dataclass(frozen=True)
class CnnRecipe:
    """Train and query the reference CNN (:func:`models.vision.train.train_cnn`).

    Parameters
    ----------
    config : dict
        ``train_cnn`` configuration (epochs, batch size, architecture, training defenses, ...),
        the target's.
    serving : dict, optional
        The target's serving defense (``{"name": ..., **params}``, its
        :class:`~models.privacy.serving.OutputPolicy`): shadow answers are hardened the same way.
    reference : tuple of np.ndarray, optional
        ``(x_ref (n_ref, H, W, 3), y_ref (n_ref,))``: the advreg reference non-members of every
        model the recipe trains, records outside their training data (required with
        ``advreg``, as for the target; not compared).
    """

    config: dict = field(default_factory=dict)
    serving: dict | None = None
    reference: tuple | None = field(default=None, compare=False, repr=False)

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int):
        """Train on images ``x (n, H, W, 3)`` and labels ``y (n,)``; returns the network."""
        x_ref, y_ref = self.reference if self.reference is not None else (None, None)
        model, _ = train_cnn(x, y, self.config, seed=seed, x_ref=x_ref, y_ref=y_ref, progress=False)
        return model

    def predict_log_proba(self, model, x: np.ndarray) -> np.ndarray:
        """float64 log-softmax of the logits ``(n, n_classes)``, hardened like the target's
        (:func:`harden_log_proba`)."""
        logits = torch.from_numpy(predict_logits(model, x)).double()  # (n, C)
        log_p = torch.log_softmax(logits, dim=1).numpy()
        return harden_log_proba(log_p, OutputPolicy.from_serving(self.serving))


def harden_log_proba(log_p: np.ndarray, policy: OutputPolicy) -> np.ndarray:
    """Log-probabilities ``(n, C)`` as ``policy`` answers them (``log_p`` itself under ``full``).

    Hardened answers hold zeros; their logs are floored as in
    :func:`auditor.cifar.attacks.signals.log_proba`.
    """
    return log_p if policy.name == FULL else log_proba(policy.harden_proba(np.exp(log_p)))


def train_and_query(
    recipe, x_train: np.ndarray, y_train: np.ndarray, queries: Mapping[str, np.ndarray], seed: int
) -> dict[str, np.ndarray]:
    """Train one model with ``recipe`` and return its log-probabilities on each query set.

    Returns
    -------
    dict
        Query-set name -> float64 log-probabilities ``(n_query, n_classes)``.
    """
    model = recipe.fit(x_train, y_train, seed=seed)
    return {
        name: np.asarray(recipe.predict_log_proba(model, q), dtype=np.float64)
        for name, q in queries.items()
    }


def in_out_splits(
    n_pool: int, size: int, n_models: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each of ``n_models`` shadows, disjoint random ``(in, out)`` index sets of ``size``.

    Shadows draw independently (their sets may overlap, as in Shokri et al.), each one
    :func:`corpora.splits.draw_splits` on one generator seeded with ``seed``.
    """
    if 2 * size > n_pool:
        raise ValueError(
            f"shadow models need 2 x {size} records (in + out) but the shadow data "
            f"hold only {n_pool}"
        )
    rng = np.random.default_rng(seed)  # successive draws of one generator
    drawn = (draw_splits(n_pool, {"in": size, "out": size}, rng) for _ in range(n_models))
    return [(d["in"], d["out"]) for d in drawn]
