"""The one error type corpus readers and validation raise, and how problems are tallied.

A :class:`CorpusError` names the file, the line (when one applies), a short ``reason``
from a fixed vocabulary (so skipped utterances can be counted per reason) and a
``detail`` saying exactly what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: The reasons a corpus problem can have; ``--lenient`` reports counts per reason.
REASONS = (
    "missing audio",
    "corrupt audio",
    "unsupported audio",
    "missing file",
    "bad line",
    "duplicate id",
    "empty transcript",
    "unknown phone",
    "bad phones",
    "alignment past audio",
    "bad alignment",
    "no pronunciation",
    "speaker without utterances",
    "missing speaker",
    "duration mismatch",
    "phone count mismatch",
)


class CorpusError(ValueError):
    """A problem in a corpus on disk.

    Parameters
    ----------
    path : file the problem is in (an audio file, ``.PHN``, ``text``, a speaker dir, ...).
    reason : one of :data:`REASONS`.
    detail : what exactly is wrong, for a human.
    line : 1-based line number in ``path`` when the problem is on one line, else ``None``.
    utt_id : the utterance the problem belongs to, when known.
    """

    def __init__(
        self,
        path: str | Path,
        reason: str,
        detail: str,
        *,
        line: int | None = None,
        utt_id: str | None = None,
    ):
        if reason not in REASONS:
            raise ValueError(f"unknown corpus problem reason {reason!r}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        self.line = line
        self.utt_id = utt_id
        where = self.path if line is None else f"{self.path}:{line}"
        utt = f" [{utt_id}]" if utt_id else ""
        super().__init__(f"{where}: {reason}{utt}: {detail}")

    def to_dict(self) -> dict:
        """JSON-ready record of the problem (as written to ``corpus.json``)."""
        return {
            "utt_id": self.utt_id,
            "path": self.path,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
        }


def count_by_reason(problems: Iterable[CorpusError]) -> dict[str, int]:
    """``{reason: count}``, sorted by reason."""
    return dict(sorted(Counter(p.reason for p in problems).items()))
