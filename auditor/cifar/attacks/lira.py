"""LiRA, the likelihood-ratio attack (Carlini et al., "Membership Inference Attacks From First
Principles", 2022).

For each candidate record, N reference models trained like the target give the distribution
of its logit-scaled confidence ``phi = log p_y - log(1 - p_y)`` when the record is OUT of the
training set (and, online, when it is IN). Each distribution is fitted by a Gaussian, per
example (or with one variance shared by all examples, better with few models). The target's
``phi`` on the record is then scored:

- offline (OUT models only): one-sided test, score ``-log P[Z >= phi]`` under ``N(mu_out, s_out)``;
- online (IN and OUT): log likelihood ratio ``log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out)``.

Offline, the reference models train on random halves of the auditor's own records; online the
pool also holds the candidates, and every candidate is IN for exactly half of the models.
Each Gaussian needs at least two models (offline N >= 2, online N >= 4): with one, its standard
deviation is zero and LiRA degenerates into a one-model loss difference.
With ``augment=True`` each record is also queried mirrored left-right (images ``(n, H, W, 3)``)
and the scores of both views are averaged.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator

from auditor.cifar.attacks.blackbox import BlackBox
from auditor.cifar.attacks.shadow import train_and_query
from auditor.cifar.attacks.signals import log_proba, scaled_confidence
from auditor.executor import as_executor
from common.hashing import records_digest
from corpora.splits import balanced_membership, random_halves

MODES = ("offline", "online")
#: Fewest reference models behind each fitted Gaussian (one model leaves it no spread).
MIN_PER_GAUSSIAN = 2
#: Smallest standard deviation used (keeps the Gaussians proper when all models agree).
MIN_STD = 1e-6


def views(x: np.ndarray, augment: bool) -> list[np.ndarray]:
    """The records as queried: ``[x]``, plus ``x`` mirrored left-right when ``augment``."""
    if not augment:
        return [x]
    if x.ndim != 4:
        raise ValueError(f"augment=True mirrors images (n, H, W, C); got shape {x.shape}")
    return [x, x[:, :, ::-1, :]]


class LiRA(BaseEstimator):
    """Likelihood-ratio membership attack with reference models.

    Parameters
    ----------
    target : callable
        Black box, records -> probabilities ``(n, C)``.
    recipe : object
        Trains a model like the target: ``fit(x, y, *, seed)``, ``predict_log_proba(model, x)``.
    n_reference : int
        Reference models (N): offline >= 2, online an even number >= 4, so that every fitted
        Gaussian rests on at least two models (with one, its standard deviation is zero).
    mode : {"offline", "online"}
        OUT models only, or IN and OUT (module docstring).
    global_variance : bool
        One standard deviation per distribution shared by all candidates (advised for N < 64).
    augment : bool
        Also query the mirrored image.
    executor : str or executor
        Where reference models train (:func:`auditor.executor.as_executor`).
    query_budget : int, optional
        Most records the attack may query on the target.
    seed : int
        Seeds the training subsets and the reference models.

    Attributes
    ----------
    reference_phi_ : np.ndarray
        ``(n_candidates, N, n_views)`` reference models' scaled confidences on the candidates.
    in_mask_ : np.ndarray
        ``(n_candidates, N)`` bool: candidate in the reference model's training set.
    mean_out_, std_out_, mean_in_, std_in_ : np.ndarray
        ``(n_candidates, n_views)`` Gaussian parameters (``*_in_`` online only).
    blackbox_ : BlackBox
        The counted access to the target.

    Examples
    --------
    >>> lira = LiRA(target, CnnRecipe(cfg), n_reference=16, mode="online")  # doctest: +SKIP
    >>> lira.fit(x_aux, y_aux, x_candidates=x, y_candidates=y)  # doctest: +SKIP
    >>> scores = lira.score_samples(x, y)  # doctest: +SKIP
    """

    def __init__(
        self,
        target=None,
        recipe=None,
        *,
        n_reference: int = 16,
        mode: str = "offline",
        global_variance: bool = False,
        augment: bool = False,
        executor="local",
        query_budget: int | None = None,
        seed: int = 0,
    ):
        self.target = target
        self.recipe = recipe
        self.n_reference = n_reference
        self.mode = mode
        self.global_variance = global_variance
        self.augment = augment
        self.executor = executor
        self.query_budget = query_budget
        self.seed = seed

    def fit(self, x, y, *, x_candidates, y_candidates):
        """Train the reference models and fit the per-candidate Gaussians.

        Parameters
        ----------
        x, y : np.ndarray
            The auditor's own records and labels (disjoint from the target's training set).
        x_candidates, y_candidates : np.ndarray
            The records to audit (later passed to :meth:`score_samples`).
        """
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        online = self.mode == "online"
        least = MIN_PER_GAUSSIAN * (2 if online else 1)  # online: half IN, half OUT
        if self.n_reference < least or (online and self.n_reference % 2):
            raise ValueError(
                f"{self.mode} LiRA needs {'an even number >= ' if online else '>= '}{least} "
                f"reference models ({MIN_PER_GAUSSIAN} per fitted Gaussian: with one, its spread "
                f"is zero and the score a one-model loss difference), got {self.n_reference}"
            )
        x, y = np.asarray(x), np.asarray(y)
        xc, yc = np.asarray(x_candidates), np.asarray(y_candidates)
        if len(x) != len(y) or len(xc) != len(yc):
            raise ValueError("records and labels differ in length")
        self.candidates_fingerprint_ = _fingerprint(xc, yc)
        queries = {f"view{v}": q for v, q in enumerate(views(xc, self.augment))}
        rng = np.random.default_rng(self.seed)
        if online:
            pool_x, pool_y = np.concatenate([xc, x]), np.concatenate([yc, y])
            keep = balanced_membership(len(pool_x), self.n_reference, self.seed)  # (N, n_pool)
        else:
            pool_x, pool_y = x, y
            keep = random_halves(len(x), self.n_reference, rng)  # (N, n_aux)
        jobs = [
            {
                "recipe": self.recipe,
                "x_train": pool_x[mask],
                "y_train": pool_y[mask],
                "queries": queries,
                "seed": self.seed + 1 + m,
            }
            for m, mask in enumerate(keep)
        ]
        answers = as_executor(self.executor).map(train_and_query, jobs, desc="lira references")
        self.reference_phi_ = np.stack(
            [
                np.stack([scaled_confidence(a[name], yc) for name in queries], axis=1)  # (n, V)
                for a in answers
            ],
            axis=1,
        )  # (n, N, V)
        self.in_mask_ = keep[:, : len(xc)].T if online else np.zeros((len(xc), len(keep)), bool)
        self.mean_out_, self.std_out_ = self._gaussian(~self.in_mask_)
        if online:
            self.mean_in_, self.std_in_ = self._gaussian(self.in_mask_)
        self.blackbox_ = BlackBox(self.target, self.query_budget)
        return self

    def score_samples(self, x, y) -> np.ndarray:
        """Membership score ``(n,)`` of the fitted candidates (log LR online, -log p offline)."""
        x, y = np.asarray(x), np.asarray(y)
        if _fingerprint(x, y) != self.candidates_fingerprint_:
            raise ValueError(
                "LiRA scores only the candidates it was fitted on (x_candidates, y_candidates)"
            )
        phi = np.stack(
            [scaled_confidence(log_proba(self.blackbox_(q)), y) for q in views(x, self.augment)],
            axis=1,
        )  # (n, V)
        if self.mode == "online":
            llr = norm.logpdf(phi, self.mean_in_, self.std_in_) - norm.logpdf(
                phi, self.mean_out_, self.std_out_
            )
            return llr.mean(axis=1)
        return -norm.logsf(phi, self.mean_out_, self.std_out_).mean(axis=1)

    def predict_proba(self, x, y) -> np.ndarray:
        """``(n, 2)`` non-member / member probability.

        Online: the posterior of the likelihood ratio with equal priors. Offline: one minus
        the (geometric mean over views of the) one-sided p-value.
        """
        score = self.score_samples(x, y)
        member = 1.0 / (1.0 + np.exp(-score)) if self.mode == "online" else -np.expm1(-score)
        return np.stack([1.0 - member, member], axis=1)

    def predict(self, x, y) -> np.ndarray:
        """1 for records called members, 0 otherwise."""
        return (self.predict_proba(x, y)[:, 1] >= 0.5).astype(int)

    def _gaussian(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std ``(n, V)`` of reference confidences where ``mask (n, N)`` holds."""
        counts = mask.sum(axis=1)  # (n,)
        if counts.min() < 1:
            raise ValueError("a candidate has no reference model on this side; add models")
        weights = mask[:, :, None].astype(float)  # (n, N, 1)
        phi = self.reference_phi_
        mean = (phi * weights).sum(axis=1) / counts[:, None]  # (n, V)
        residual = (phi - mean[:, None, :]) * weights  # (n, N, V)
        if self.global_variance:
            var = (residual**2).sum(axis=(0, 1)) / counts.sum()  # (V,)
            std = np.broadcast_to(np.sqrt(var), mean.shape).copy()
        else:
            std = np.sqrt((residual**2).sum(axis=1) / counts[:, None])
        return mean, np.maximum(std, MIN_STD)


def _fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    return f"{x.shape}:{records_digest(x, y)}"
