"""The target as the attacks see it: a black box answering class probabilities, with a budget.

Attacks never touch the target model; they call :class:`BlackBox`, which counts every record
queried, refuses to go past the query budget, and checks that the answers are probability
vectors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class QueryBudgetExceeded(RuntimeError):
    """The attack asked the target for more records than its query budget allows."""


class BlackBox:
    """Counting, budgeted access to ``predict_proba(x) -> (n, n_classes)``.

    Parameters
    ----------
    predict_proba : callable
        The target: records ``x`` (first axis = records) -> class probabilities ``(n, C)``.
    budget : int, optional
        Most records that may be queried in all; ``None`` = unlimited.

    Attributes
    ----------
    n_queries : int
        Records queried so far.
    """

    def __init__(
        self, predict_proba: Callable[[np.ndarray], np.ndarray], budget: int | None = None
    ):
        self.predict_proba = predict_proba
        self.budget = budget
        self.n_queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """float64 probabilities ``(n, C)`` of records ``x``; counts ``n`` queries."""
        n = len(x)
        if self.budget is not None and self.n_queries + n > self.budget:
            raise QueryBudgetExceeded(
                f"query budget of {self.budget} records exhausted ({self.n_queries} used, "
                f"{n} more asked)"
            )
        proba = np.asarray(self.predict_proba(x), dtype=np.float64)
        self.n_queries += n
        if proba.ndim != 2 or proba.shape[0] != n:
            raise ValueError(
                f"target answered shape {proba.shape} for {n} records; "
                "expected (n_records, n_classes)"
            )
        if not np.isfinite(proba).all() or (proba < 0).any():
            raise ValueError("target answered non-finite or negative probabilities")
        if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError("target's answers do not sum to 1 per record (not probabilities)")
        return proba
