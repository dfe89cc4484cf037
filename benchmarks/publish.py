"""Where a benchmark's section goes: printed, and appended to ``BENCHMARKS.md``."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def publish(section: str, *, append: bool = True, path: Path = BENCHMARKS_MD) -> None:
    """Print ``section`` and (unless ``append`` is false) append it to ``path``."""
    print(section)
    if append:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write("\n" + section.lstrip("\n"))
