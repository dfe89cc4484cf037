"""Output hardening: what a served model answers, one policy for the voice and image paths.

An output policy is ``full`` or one serving defense of the registry
(:data:`models.privacy.registry.DEFENSES`), written in the registry's spelling. It is part of
the device's wire contract (``device-sim serve --output``, the ``output`` of its answers and
status, ``docs/protocol.md``) and hardens CIFAR-10 probability answers alike:

- ``full``: a voice answer keeps every field; probabilities are unchanged.
- ``topk:k=K``: a voice answer keeps at most ``K`` entries of each frame's ``top_k`` posteriors
  (and a client's ``top_k`` request is capped at ``K``); of probabilities the ``K`` largest are
  kept, the others set to 0, and the kept ones divided by their sum (ties at the K-th value are
  broken by class index).
- ``rounding:decimals=D``: a voice answer's scores (:data:`SCORE_FIELDS`) are rounded to ``D``
  decimals; probabilities are rounded to multiples of ``10**-D`` that still sum to exactly 1
  (largest-remainder rounding: each value is floored to the grid and the missing units go to
  the largest remainders, so every value stays within ``10**-D`` of the true one).
- ``label_only``: a voice answer keeps the transcript (:data:`TRANSCRIPT_FIELDS`) and nothing
  that scores it; probabilities become the one-hot vector of the predicted class.

Earlier spellings (``transcript-only``, ``rounded:D``, ``topk:K``, ``none``) are refused with a
message naming the registry's (:func:`parse_output_policy`).

Examples
--------
>>> policy = parse_output_policy("topk:k=1")
>>> policy.harden_proba(np.array([[0.5, 0.3, 0.2]]))
array([[1., 0., 0.]])
>>> parse_output_policy("label_only").harden_answer({"phones": ["sil"], "frames": 3})
{'phones': ['sil'], 'output': 'label_only'}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.privacy.registry import DEFENSES, parse_defense

#: The policy that answers everything.
FULL = "full"
#: Policy names: ``full`` and the registry's serving defenses.
POLICIES = (FULL, *(name for name, spec in DEFENSES.items() if spec.stage == "serve"))
#: What :func:`parse_output_policy` accepts, for error messages.
GRAMMAR = "full, topk:k=K (K >= 1), rounding:decimals=D (D >= 0) or label_only"
#: Voice answer fields ``label_only`` keeps.
TRANSCRIPT_FIELDS = (
    "schema_version",
    "correlation",
    "model_id",
    "phones",
    "phones39",
    "latency_ms",
    "output",
)
#: Voice answer fields holding scores (rounded by ``rounding``).
SCORE_FIELDS = ("log_like_per_frame", "phone_confidences", "top_k")


@dataclass(frozen=True)
class OutputPolicy:
    """One output policy (module docstring).

    Attributes
    ----------
    name : ``full``, ``topk``, ``rounding`` or ``label_only``.
    params : the serving defense's parameters, registry defaults filled in (``k``;
        ``decimals``; none for ``full`` and ``label_only``).

    Raises
    ------
    ValueError
        For another name, an unknown or mistyped parameter, ``k < 1`` or ``decimals < 0``.
    """

    name: str = FULL
    params: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.name not in POLICIES:
            defense = DEFENSES.get(self.name)
            why = "not a policy"
            if defense is not None:
                why = f"defense {self.name!r} acts at stage {defense.stage!r}, not at serving"
            raise ValueError(f"output policy {self.name!r}: {why}; it must be {GRAMMAR}")
        if self.name == FULL:
            if self.params:
                raise ValueError(f"output policy 'full' takes no parameters, got {self.params}")
            return
        params = DEFENSES[self.name].params(self.params)
        if params.get("k", 1) < 1:
            raise ValueError(f"output policy topk needs k >= 1, got {params['k']}")
        if params.get("decimals", 0) < 0:
            decimals = params["decimals"]
            raise ValueError(f"output policy rounding needs decimals >= 0, got {decimals}")
        object.__setattr__(self, "params", params)

    @classmethod
    def from_serving(cls, serving: dict | None) -> OutputPolicy:
        """The policy of a serving defense recorded as ``{"name": ..., **params}`` (``None``:
        ``full``), as :func:`models.privacy.registry.split_serving` gives it."""
        if not serving:
            return cls()
        return cls(serving["name"], {k: v for k, v in serving.items() if k != "name"})

    @property
    def spec(self) -> str:
        """The policy in the registry's spelling, e.g. ``topk:k=3`` (what answers declare)."""
        if not self.params:
            return self.name
        return f"{self.name}:" + ",".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def reveals_scores(self) -> bool:
        """Whether answers carry anything that scores the prediction (all but ``label_only``)."""
        return self.name != "label_only"

    def cap_top_k(self, requested: int | None) -> int | None:
        """The ``top_k`` a voice request is decoded with: ``None`` under ``label_only``, at most
        ``k`` under ``topk``."""
        if requested is None or not self.reveals_scores:
            return None
        return min(requested, self.params["k"]) if self.name == "topk" else requested

    def harden_answer(self, answer: dict) -> dict:
        """A hardened copy of a voice success answer, its ``output`` set to :attr:`spec`."""
        out = dict(answer, output=self.spec)
        if not self.reveals_scores:
            return {k: v for k, v in out.items() if k in TRANSCRIPT_FIELDS}
        if self.name == "topk" and out.get("top_k") is not None:
            out["top_k"] = [frame[: self.params["k"]] for frame in out["top_k"]]
        if self.name == "rounding":
            for key in SCORE_FIELDS:
                if out.get(key) is not None:
                    out[key] = _round(out[key], self.params["decimals"])
        return out

    def harden_proba(self, proba: np.ndarray) -> np.ndarray:
        """float64 hardened answers ``(n, C)`` of probability vectors ``proba (n, C)``.

        Raises
        ------
        ValueError
            For ``proba`` that is not 2-D, or ``topk`` with ``k`` above the ``C`` classes.
        """
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2:
            raise ValueError(f"expected probabilities (n, C), got shape {proba.shape}")
        n, c = proba.shape
        if self.name == FULL:
            return proba.copy()
        if self.name == "label_only":
            out = np.zeros_like(proba)
            out[np.arange(n), proba.argmax(axis=1)] = 1.0
            return out
        if self.name == "topk":
            k = self.params["k"]
            if k > c:
                raise ValueError(f"topk needs 1 <= k <= {c}, got {k}")
            keep = np.argsort(-proba, axis=1, kind="stable")[:, :k]  # (n, k)
            out = np.zeros_like(proba)
            rows = np.arange(n)[:, None]
            out[rows, keep] = proba[rows, keep]
            return out / out.sum(axis=1, keepdims=True)
        units = 10 ** self.params["decimals"]
        scaled = proba / proba.sum(axis=1, keepdims=True) * units  # (n, C)
        counts = np.floor(scaled)
        missing = np.rint(units - counts.sum(axis=1)).astype(int)  # (n,) units still to give out
        order = np.argsort(-(scaled - counts), axis=1, kind="stable")  # largest remainders first
        give = np.arange(c)[None, :] < missing[:, None]  # (n, C) in remainder order
        counts[np.arange(n)[:, None], order] += give
        return counts / units


def parse_output_policy(spec: str) -> OutputPolicy:
    """``full`` or a serving defense spec of the registry as an :class:`OutputPolicy`.

    ``topk:k=K``, ``rounding:decimals=D`` and ``label_only``; a parameter left out takes its
    registry default (``topk`` is ``topk:k=3``).

    Raises
    ------
    ValueError
        For anything else; an earlier spelling (``transcript-only``, ``rounded:D``, ``topk:K``,
        ``none``) with a message naming the one to write instead.
    """
    spec = str(spec)
    new = _new_spelling(spec)
    if new is not None:
        raise ValueError(
            f"output policy {spec!r} is an old spelling: write {new!r} (the defense registry's)"
        )
    if spec == FULL:
        return OutputPolicy()
    try:
        name, params = parse_defense(spec)
    except ValueError as e:
        raise ValueError(f"output policy {spec!r}: {e}; it must be {GRAMMAR}") from None
    return OutputPolicy(name, params)


def _new_spelling(spec: str) -> str | None:
    """The registry spelling of a policy in the device's former ``--output`` spelling, else None."""
    name, sep, value = spec.partition(":")
    if not sep and name in ("transcript-only", "none"):
        return "label_only" if name == "transcript-only" else FULL
    if name == "rounded":
        return f"rounding:decimals={value or 'D'}"
    if name == "topk" and value.isdigit():
        return f"topk:k={value}"
    return None


def _round(value, digits: int):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) if isinstance(v, (list, tuple, float)) else v for v in value]
    return value
