"""Prepare a corpus once: read it, validate every utterance, write the manifest and ``corpus.json``.

``prepare_corpus`` is what ``auditor corpus prepare`` runs; ``check_corpus`` is ``auditor
corpus check`` (every problem listed, nothing written). A prepared-corpus folder holds
``manifest.jsonl`` (:mod:`corpora.manifest`) and ``corpus.json``: format, source folder,
reader options, a fingerprint of the source files, counts, and every skipped utterance
with its reason. Preparation is skipped when both files exist and the format, options and
fingerprint are unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from corpora.errors import CorpusError, count_by_reason
from corpora.kaldi import KaldiReader
from corpora.manifest import (
    MANIFEST_NAME,
    ManifestError,
    Utterance,
    iter_manifest,
    manifest_path,
    write_manifest,
)
from corpora.phones import PHONES48
from corpora.timit import TimitReader

#: Name of the preparation record inside a prepared-corpus folder.
CORPUS_INFO_NAME = "corpus.json"

#: Corpus formats and their readers.
READERS = {"timit": TimitReader, "kaldi": KaldiReader}

_PHONES48 = frozenset(PHONES48)


def make_reader(corpus: str | Path, fmt: str, *, include_sa: bool | None = None):
    """The reader for ``fmt`` over ``corpus``; unknown formats raise ``ValueError``.

    ``include_sa`` applies to TIMIT layouts only (see :class:`~corpora.timit.TimitReader`).
    """
    if fmt not in READERS:
        raise ValueError(f"unknown corpus format {fmt!r} (known: {', '.join(sorted(READERS))})")
    if fmt == "timit":
        return TimitReader(corpus, include_sa=include_sa)
    if include_sa is not None:
        raise ValueError("include_sa applies to the timit format only")
    return READERS[fmt](corpus)


@dataclass
class CorpusReading:
    """The outcome of reading a corpus: good utterances and every problem found."""

    format: str
    source: str
    options: dict
    utterances: list[Utterance] = field(default_factory=list)
    problems: list[CorpusError] = field(default_factory=list)

    def counts(self) -> dict:
        """Utterance, speaker and audio counts of the good utterances."""
        return corpus_counts(self.utterances)


def corpus_counts(utterances: Iterable[Utterance]) -> dict:
    """``{utterances, speakers, duration_s, with_alignment, speakers_by_gender[, speakers_by_set]}``."""
    utts = list(utterances)
    gender_of = {u.speaker: u.gender or "unknown" for u in utts}
    counts = {
        "utterances": len(utts),
        "speakers": len(gender_of),
        "duration_s": round(sum(u.duration for u in utts), 2),
        "with_alignment": sum(u.alignment is not None for u in utts),
        "speakers_by_gender": _tally(gender_of.values()),
    }
    set_of = {u.speaker: u.meta["timit_set"] for u in utts if "timit_set" in u.meta}
    if set_of:
        counts["speakers_by_set"] = _tally(set_of.values())
    return counts


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def validate_utterance(utt: Utterance) -> None:
    """Check one manifest record; raises :class:`CorpusError` naming the audio file.

    Checks: the audio file exists, a speaker and a transcript are given, the duration is
    positive, phones are in the 48 set with ``sil`` at both ends, and an alignment (when
    present) matches the phones, has non-empty segments in order and lies inside the audio.
    """
    _check_fields(utt)
    _check_phones(utt)
    if utt.alignment is not None:
        _check_alignment(utt)


def _fail(utt: Utterance, reason: str, detail: str) -> None:
    """Raise the :class:`CorpusError` of ``utt`` (its audio file and id) for ``reason``."""
    raise CorpusError(utt.path, reason, detail, utt_id=utt.utt_id)


def _check_fields(utt: Utterance) -> None:
    """The audio file exists; speaker and transcript are given; the duration is positive."""
    if not Path(utt.path).is_file():
        _fail(utt, "missing audio", "audio file not found")
    if not utt.speaker:
        _fail(utt, "missing speaker", "no speaker id")
    if not utt.text.strip():
        _fail(utt, "empty transcript", "no words")
    if not utt.duration > 0:
        _fail(utt, "corrupt audio", f"duration {utt.duration} s is not positive")


def _check_phones(utt: Utterance) -> None:
    """The phones are in the 48 set, ``sil`` at both ends with at least one phone between."""
    unknown = sorted(set(utt.phones) - _PHONES48)
    if unknown:
        _fail(utt, "unknown phone", f"not in the 48-phone set: {', '.join(unknown)}")
    if len(utt.phones) < 3 or utt.phones[0] != "sil" or utt.phones[-1] != "sil":
        _fail(utt, "bad phones", "phones must be sil ... sil with at least one phone between")


def _check_alignment(utt: Utterance) -> None:
    """The alignment has the phones as labels, non-empty segments in order, inside the audio."""
    n_samples = round(utt.duration * utt.sample_rate)
    if tuple(p for _, _, p in utt.alignment) != tuple(utt.phones):
        _fail(utt, "bad alignment", "alignment labels differ from the phones")
    previous_begin = 0
    for begin, end, phone in utt.alignment:
        if not 0 <= previous_begin <= begin < end:
            _fail(
                utt, "bad alignment", f"segment {begin}..{end} ({phone}) is empty or out of order"
            )
        if end > n_samples:
            _fail(
                utt,
                "alignment past audio",
                f"segment {begin}..{end} ({phone}) ends after sample {n_samples}",
            )
        previous_begin = begin


def validate_manifest(path: str | Path) -> dict:
    """Validate every line of a manifest (and that utterance ids are unique); return its counts.

    Raises :class:`CorpusError` naming the manifest file and line of the first bad record.
    """
    path = manifest_path(path)
    utts = []
    seen: set[str] = set()
    try:
        for lineno, utt in enumerate(iter_manifest(path), 1):
            try:
                if utt.utt_id in seen:
                    raise CorpusError(
                        utt.path, "duplicate id", "utterance id appears twice", utt_id=utt.utt_id
                    )
                validate_utterance(utt)
            except CorpusError as e:
                raise CorpusError(path, e.reason, e.detail, line=lineno, utt_id=utt.utt_id) from e
            seen.add(utt.utt_id)
            utts.append(utt)
    except ManifestError as e:
        raise CorpusError(path, "bad line", str(e)) from e
    return corpus_counts(utts)


def read_corpus(
    corpus: str | Path,
    fmt: str,
    *,
    include_sa: bool | None = None,
    strict: bool = True,
    progress: bool = False,
) -> CorpusReading:
    """Read and validate every utterance of a corpus.

    Parameters
    ----------
    corpus : corpus folder (TIMIT-layout root or Kaldi data dir).
    fmt : ``"timit"`` or ``"kaldi"``.
    include_sa : TIMIT only; see :class:`~corpora.timit.TimitReader`.
    strict : raise the first :class:`CorpusError`; otherwise collect every problem in
        ``problems`` and keep reading.
    progress : show a progress bar on stderr.
    """
    reader = make_reader(corpus, fmt, include_sa=include_sa)
    refs, problems = reader.scan()  # structural problems; a missing corpus raises here
    if strict and problems:
        raise problems[0]
    reading = CorpusReading(
        format=fmt, source=str(Path(corpus).resolve()), options=reader.options(), problems=problems
    )
    seen: set[str] = set()
    for ref in tqdm(refs, desc=f"reading {fmt} corpus", unit="utt", disable=not progress):
        try:
            utt = reader.load(ref)
            validate_utterance(utt)
            if utt.utt_id in seen:
                raise CorpusError(
                    utt.path, "duplicate id", "utterance id appears twice", utt_id=utt.utt_id
                )
        except CorpusError as e:
            if strict:
                raise
            reading.problems.append(e)
            continue
        seen.add(utt.utt_id)
        reading.utterances.append(utt)
    return reading


def check_corpus(corpus: str | Path, fmt: str, *, include_sa: bool | None = None) -> CorpusReading:
    """Read a corpus without writing anything, collecting every problem (``auditor corpus check``)."""
    return read_corpus(corpus, fmt, include_sa=include_sa, strict=False, progress=True)


def source_fingerprint(corpus: str | Path) -> dict:
    """Number of files, total bytes and newest modification time under ``corpus``."""
    n_files = n_bytes = latest = 0
    for dirpath, _, filenames in os.walk(corpus):
        for name in filenames:
            st = os.stat(os.path.join(dirpath, name))
            n_files += 1
            n_bytes += st.st_size
            latest = max(latest, st.st_mtime_ns)
    return {"files": n_files, "bytes": n_bytes, "latest_mtime_ns": latest}


@dataclass
class PreparedCorpus:
    """What ``prepare_corpus`` wrote (or found up to date)."""

    out_dir: Path
    info: dict
    up_to_date: bool

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @property
    def counts(self) -> dict:
        return self.info["counts"]

    @property
    def skipped_counts(self) -> dict:
        return self.info["skipped_counts"]


def prepare_corpus(
    corpus: str | Path,
    fmt: str,
    out_dir: str | Path,
    *,
    lenient: bool = False,
    include_sa: bool | None = None,
    force: bool = False,
    progress: bool = True,
) -> PreparedCorpus:
    """Write ``manifest.jsonl`` and ``corpus.json`` for a corpus, then validate the manifest.

    Parameters
    ----------
    corpus : corpus folder (TIMIT-layout root or Kaldi data dir).
    fmt : ``"timit"`` or ``"kaldi"``.
    out_dir : prepared-corpus folder to write.
    lenient : skip bad utterances (each listed in ``corpus.json`` with its reason) instead of
        raising the first :class:`CorpusError`.
    include_sa : TIMIT only; ``None`` includes SA sentences only for our synthetic corpus.
    force : prepare again even when the outputs are up to date.
    progress : show a progress bar on stderr.
    """
    out_dir = Path(out_dir)
    info_path = out_dir / CORPUS_INFO_NAME
    reader = make_reader(corpus, fmt, include_sa=include_sa)
    wanted = {
        "format": fmt,
        "source": str(Path(corpus).resolve()),
        "options": reader.options() | {"lenient": lenient},
        "source_fingerprint": source_fingerprint(corpus),
    }
    if not force and info_path.is_file() and (out_dir / MANIFEST_NAME).is_file():
        info = json.loads(info_path.read_text())
        if all(info.get(k) == v for k, v in wanted.items()):
            return PreparedCorpus(out_dir, info, up_to_date=True)

    reading = read_corpus(corpus, fmt, include_sa=include_sa, strict=not lenient, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = validate_manifest(write_manifest(out_dir / MANIFEST_NAME, reading.utterances))
    info = wanted | {
        "manifest": MANIFEST_NAME,
        "counts": counts,
        "skipped_counts": count_by_reason(reading.problems),
        "skipped": [p.to_dict() for p in reading.problems],
    }
    tmp = info_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(info_path)
    return PreparedCorpus(out_dir, info, up_to_date=False)
