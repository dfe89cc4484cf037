"""Output hardening: how much of a hypothesis the device reveals in its answer.

A vendor-side privacy option (``--output``). ``full`` sends every field; ``topk:K`` keeps at
most ``K`` entries of each frame's top-k state posteriors (and caps the ``top_k`` option a
client may ask for); ``rounded:D`` rounds every score to ``D`` decimals; ``transcript-only``
sends the phones and nothing that scores them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Answer fields ``transcript-only`` keeps.
TRANSCRIPT_FIELDS = (
    "schema_version",
    "correlation",
    "model_id",
    "phones",
    "phones39",
    "latency_ms",
    "output",
)
#: Answer fields holding scores (rounded by ``rounded:D``).
SCORE_FIELDS = ("log_like_per_frame", "phone_confidences", "top_k")


@dataclass(frozen=True)
class OutputPolicy:
    """A parsed ``--output`` spec.

    Attributes
    ----------
    kind : ``full``, ``topk``, ``rounded`` or ``transcript-only``.
    value : ``K`` for ``topk``, ``D`` for ``rounded``, else ``None``.
    """

    kind: str
    value: int | None = None

    @property
    def spec(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"

    def cap_top_k(self, requested: int | None) -> int | None:
        """The ``top_k`` to decode with: ``None`` under ``transcript-only``, at most ``K`` under
        ``topk:K``."""
        if requested is None or self.kind == "transcript-only":
            return None
        return min(requested, self.value) if self.kind == "topk" else requested

    def apply(self, answer: dict) -> dict:
        """Return a hardened copy of a success answer."""
        out = dict(answer, output=self.spec)
        if self.kind == "transcript-only":
            return {k: v for k, v in out.items() if k in TRANSCRIPT_FIELDS}
        if self.kind == "topk" and out.get("top_k") is not None:
            out["top_k"] = [frame[: self.value] for frame in out["top_k"]]
        if self.kind == "rounded":
            for key in SCORE_FIELDS:
                if out.get(key) is not None:
                    out[key] = _round(out[key], self.value)
        return out


def _round(value, digits: int):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) if isinstance(v, (list, tuple, float)) else v for v in value]
    return value


def parse_output_policy(spec: str) -> OutputPolicy:
    """Parse ``full | topk:K | rounded:D | transcript-only``; anything else is a ``ValueError``."""
    if spec in ("full", "transcript-only"):
        return OutputPolicy(spec)
    kind, _, value = spec.partition(":")
    if kind in ("topk", "rounded") and value.isdigit():
        n = int(value)
        if (kind == "topk" and n >= 1) or (kind == "rounded" and n >= 0):
            return OutputPolicy(kind, n)
    raise ValueError(
        f"output policy {spec!r} must be full, topk:K (K>=1), rounded:D (D>=0) or transcript-only"
    )
