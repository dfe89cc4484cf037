"""The one manifest format every corpus is prepared into and every later step reads.

A manifest is JSONL, one utterance per line, written once by ``auditor corpus prepare``
(see ``auditor/corpora``). Training (``device-sim train``), feature caching, shadow
training and auditing all read manifests only, never the raw corpus. Reference phones are
in the 48-phone set of :mod:`corpora.phones`; an alignment, when the corpus has one, is
a list of ``[begin_sample, end_sample, phone48]`` at ``sample_rate`` with ``end`` exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: File name of the manifest inside a prepared-corpus directory.
MANIFEST_NAME = "manifest.jsonl"


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Utterance:
    """One utterance of a prepared corpus.

    Attributes
    ----------
    utt_id : unique utterance id (``<speaker>_<sentence>`` for TIMIT layouts).
    speaker : speaker id; the unit of membership in the user-level audit.
    path : absolute path of the audio file (SPHERE, WAV or FLAC).
    duration : seconds of audio.
    text : the words said, as in the corpus transcript.
    phones : reference phones in the 48 set (``sil`` at both ends).
    alignment : ``[(begin_sample, end_sample, phone48), ...]`` or ``None`` when unknown.
    sample_rate : Hz of the audio file.
    gender : ``"m"``, ``"f"`` or ``None``.
    meta : free-form corpus facts (dialect region, split, age, ...).
    """

    utt_id: str
    speaker: str
    path: str
    duration: float
    text: str
    phones: tuple[str, ...]
    alignment: tuple[tuple[int, int, str], ...] | None = None
    sample_rate: int = 16000
    gender: str | None = None
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["phones"] = list(self.phones)
        d["alignment"] = None if self.alignment is None else [list(a) for a in self.alignment]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Utterance:
        align = d.get("alignment")
        return cls(
            utt_id=str(d["utt_id"]),
            speaker=str(d["speaker"]),
            path=str(d["path"]),
            duration=float(d["duration"]),
            text=str(d["text"]),
            phones=tuple(d["phones"]),
            alignment=None
            if align is None
            else tuple((int(b), int(e), str(p)) for b, e, p in align),
            sample_rate=int(d.get("sample_rate", 16000)),
            gender=d.get("gender"),
            meta=dict(d.get("meta") or {}),
        )


def manifest_path(path: str | Path) -> Path:
    """Accept either a manifest file or a prepared-corpus directory holding one."""
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> Path:
    """Write utterances as JSONL (atomically: a temp file renamed into place)."""
    out = manifest_path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for u in utterances:
            f.write(u.to_json() + "\n")
    tmp.replace(out)
    return out


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    """Yield utterances of a manifest; a bad line raises :class:`ManifestError` naming it."""
    p = manifest_path(path)
    if not p.exists():
        raise ManifestError(f"{p}: manifest not found")
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Utterance.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ManifestError(f"{p}:{lineno}: bad manifest line ({e})") from e


def read_manifest(path: str | Path, speakers: Iterable[str] | None = None) -> list[Utterance]:
    """Read a manifest, optionally keeping only the given speakers (all must exist)."""
    utts = list(iter_manifest(path))
    if speakers is None:
        return utts
    wanted = set(speakers)
    missing = wanted - {u.speaker for u in utts}
    if missing:
        raise ManifestError(
            f"{manifest_path(path)}: speakers not in manifest: {', '.join(sorted(missing))}"
        )
    return [u for u in utts if u.speaker in wanted]
