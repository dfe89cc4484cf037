"""Reader for TIMIT-layout trees: the real LDC corpus and our synthetic eSpeak corpus.

Layout: ``<root>/{TRAIN,TEST}/<DIALECT>/<SPEAKER>/<SENTENCE>.{WAV,PHN,WRD,TXT}``, in upper
or lower case. ``.WAV`` is NIST SPHERE (or any format :func:`corpora.audio.read_audio`
reads); ``.PHN`` / ``.WRD`` lines are ``begin end label`` in samples (end exclusive);
``.TXT`` is ``begin end sentence``. A converted copy ``SA1.WAV.wav`` (RIFF, as some
distributions ship) serves as the audio when the SPHERE ``SA1.WAV`` is absent. Phones are
folded 61 -> 48 (``q`` dropped, ``h#`` and ``pau`` -> ``sil``) and kept as the utterance's
alignment. Utterance ids are ``<SPEAKER>_<SENTENCE>`` in upper case (``FCJF0_SI1027``).

SA sentences (``SA1``, ``SA2``: the same two sentences read by every speaker) are excluded
from real TIMIT by default, as in every standard recipe. The synthetic corpus marks its
root with ``synth_info.json``; its ``SA`` sentences are part of the 10 per speaker, so with
``include_sa=None`` (the default) they are included exactly when that file exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpora.audio import AudioFormatError, read_audio
from corpora.errors import CorpusError
from corpora.manifest import Utterance
from corpora.phones import FOLD_61_TO_48
from corpora.timit_lists import timit_set

#: File at the root of a synthetic (eSpeak) corpus; its presence turns SA sentences on.
SYNTH_MARKER = "synth_info.json"

_SPLITS = ("TRAIN", "TEST")
_EXTENSIONS = (".WAV", ".PHN", ".WRD", ".TXT")


@dataclass(frozen=True)
class TimitFiles:
    """The files of one TIMIT utterance (any of them may be missing on disk)."""

    utt_id: str
    speaker: str
    sentence: str
    split: str
    dialect: str
    files: dict[str, Path]  # {".WAV": path, ".PHN": path, ...} for the files that exist
    speaker_dir: Path

    def path(self, ext: str) -> Path:
        """The file with extension ``ext`` (``.WAV``...), or where it would be if missing."""
        return self.files.get(ext, self.speaker_dir / f"{self.sentence}{ext}")


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


class TimitReader:
    """Read a TIMIT-layout tree into :class:`~corpora.manifest.Utterance` records.

    Parameters
    ----------
    root : the folder holding ``TRAIN`` and/or ``TEST`` (any case).
    include_sa : keep the ``SA1``/``SA2`` sentences; ``None`` keeps them only when the root
        holds ``synth_info.json`` (our synthetic corpus), so real TIMIT drops them.
    """

    format = "timit"

    def __init__(self, root: str | Path, *, include_sa: bool | None = None):
        self.root = Path(root)
        self.include_sa = include_sa

    def options(self) -> dict:
        """The reader options as resolved for this tree (recorded in ``corpus.json``)."""
        return {"include_sa": self._include_sa()}

    def _include_sa(self) -> bool:
        if self.include_sa is not None:
            return self.include_sa
        return (self.root / SYNTH_MARKER).is_file()

    def scan(self) -> tuple[list[TimitFiles], list[CorpusError]]:
        """List the utterances of the tree, and the structural problems found on the way.

        Raises :class:`CorpusError` when the root has no ``TRAIN`` or ``TEST`` folder.
        Problems returned: a speaker folder with no utterance files.
        """
        if not self.root.is_dir():
            raise CorpusError(self.root, "missing file", "corpus folder not found")
        split_dirs = [d for d in _subdirs(self.root) if d.name.upper() in _SPLITS]
        if not split_dirs:
            below = [
                d for d in _subdirs(self.root) for s in _subdirs(d) if s.name.upper() in _SPLITS
            ]
            hint = f"; did you mean {below[0]}?" if below else ""
            raise CorpusError(
                self.root, "missing file", f"no TRAIN or TEST folder (TIMIT layout){hint}"
            )
        include_sa = self._include_sa()
        refs: list[TimitFiles] = []
        problems: list[CorpusError] = []
        for split_dir in split_dirs:
            for dialect_dir in _subdirs(split_dir):
                for speaker_dir in _subdirs(dialect_dir):
                    found = self._speaker_utterances(split_dir, dialect_dir, speaker_dir)
                    if not found:
                        problems.append(
                            CorpusError(
                                speaker_dir,
                                "speaker without utterances",
                                "speaker folder holds no .WAV/.PHN/.WRD/.TXT files",
                            )
                        )
                    refs.extend(r for r in found if include_sa or not r.sentence.startswith("SA"))
        return refs, problems

    @staticmethod
    def _speaker_utterances(
        split_dir: Path, dialect_dir: Path, speaker_dir: Path
    ) -> list[TimitFiles]:
        by_sentence: dict[str, dict[str, Path]] = {}
        for f in sorted(speaker_dir.iterdir()):  # SA1.WAV sorts before SA1.WAV.wav
            stem, ext = f.stem.upper(), f.suffix.upper()
            if ext == ".WAV" and stem.endswith(".WAV"):  # SA1.WAV.wav: a RIFF copy of SA1.WAV
                stem = stem[: -len(".WAV")]
            if f.is_file() and ext in _EXTENSIONS:
                by_sentence.setdefault(stem, {}).setdefault(ext, f)
        speaker = speaker_dir.name.upper()
        return [
            TimitFiles(
                utt_id=f"{speaker}_{sentence}",
                speaker=speaker,
                sentence=sentence,
                split=split_dir.name.upper(),
                dialect=dialect_dir.name.upper(),
                files=files,
                speaker_dir=speaker_dir,
            )
            for sentence, files in sorted(by_sentence.items())
        ]

    def load(self, ref: TimitFiles) -> Utterance:
        """Read one utterance; raises :class:`CorpusError` naming the file and line."""
        wav = ref.path(".WAV")
        if ".WAV" not in ref.files:
            raise CorpusError(
                wav, "missing audio", "no .WAV file for this sentence", utt_id=ref.utt_id
            )
        try:
            samples, sr = read_audio(wav)  # (n,) float32, Hz
        except AudioFormatError as e:
            # corpora.audio says "compressed" for shorten/wavpack SPHERE: refused, not corrupt
            reason = "unsupported audio" if "compressed" in str(e) else "corrupt audio"
            raise CorpusError(wav, reason, str(e), utt_id=ref.utt_id) from e
        n_samples = len(samples)
        if n_samples == 0:
            raise CorpusError(wav, "corrupt audio", "audio has no samples", utt_id=ref.utt_id)
        text = self._read_txt(ref)
        alignment = self._read_phn(ref, n_samples)
        meta = {
            "split": ref.split,
            "dialect": ref.dialect,
            "sentence": ref.sentence,
            "timit_set": timit_set(ref.split, ref.speaker),
        }
        if ".WRD" in ref.files:
            words = self._read_segments(ref, ".WRD", n_samples)
            meta["words"] = [[b, e, w] for _, b, e, w in words]
        return Utterance(
            utt_id=ref.utt_id,
            speaker=ref.speaker,
            path=str(wav.resolve()),
            duration=n_samples / sr,
            text=text,
            phones=tuple(p for _, _, p in alignment),
            alignment=alignment,
            sample_rate=sr,
            gender={"M": "m", "F": "f"}.get(ref.speaker[:1]),
            meta=meta,
        )

    @staticmethod
    def _required(ref: TimitFiles, ext: str) -> Path:
        if ext not in ref.files:
            raise CorpusError(
                ref.path(ext), "missing file", f"no {ext} file for this sentence", utt_id=ref.utt_id
            )
        return ref.files[ext]

    def _read_txt(self, ref: TimitFiles) -> str:
        path = self._required(ref, ".TXT")
        lines = [
            (i, ln)
            for i, ln in enumerate(
                path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
            )
            if ln.strip()
        ]
        if not lines:
            raise CorpusError(
                path, "empty transcript", "transcript file is empty", line=1, utt_id=ref.utt_id
            )
        lineno, line = lines[0]
        parts = line.split(None, 2)
        if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            raise CorpusError(
                path,
                "bad line",
                f"expected 'begin end sentence', got {line!r}",
                line=lineno,
                utt_id=ref.utt_id,
            )
        text = parts[2].strip() if len(parts) == 3 else ""
        if not text:
            raise CorpusError(
                path,
                "empty transcript",
                "no words after the sample range",
                line=lineno,
                utt_id=ref.utt_id,
            )
        return text

    def _read_segments(
        self, ref: TimitFiles, ext: str, n_samples: int
    ) -> list[tuple[int, int, int, str]]:
        """``(line, begin, end, label)`` of a .PHN/.WRD file, checked to lie inside the audio."""
        path = self._required(ref, ext)
        segments = []
        for lineno, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
                raise CorpusError(
                    path,
                    "bad line",
                    f"expected 'begin end label', got {line!r}",
                    line=lineno,
                    utt_id=ref.utt_id,
                )
            begin, end, label = int(parts[0]), int(parts[1]), parts[2]
            if begin >= end:
                raise CorpusError(
                    path,
                    "bad alignment",
                    f"segment {begin}..{end} is empty or reversed",
                    line=lineno,
                    utt_id=ref.utt_id,
                )
            if end > n_samples:
                raise CorpusError(
                    path,
                    "alignment past audio",
                    f"segment ends at sample {end} but the audio has {n_samples} samples",
                    line=lineno,
                    utt_id=ref.utt_id,
                )
            segments.append((lineno, begin, end, label))
        if not segments:
            raise CorpusError(
                path, "bad alignment", f"{ext} file has no segments", utt_id=ref.utt_id
            )
        return segments

    def _read_phn(self, ref: TimitFiles, n_samples: int) -> tuple[tuple[int, int, str], ...]:
        """The .PHN alignment folded to the 48 set (``q`` dropped), ``sil`` at both ends."""
        path = self._required(ref, ".PHN")
        aligned = []
        for lineno, begin, end, label in self._read_segments(ref, ".PHN", n_samples):
            if label not in FOLD_61_TO_48:
                raise CorpusError(
                    path,
                    "unknown phone",
                    f"{label!r} is not a TIMIT phone",
                    line=lineno,
                    utt_id=ref.utt_id,
                )
            folded = FOLD_61_TO_48[label]
            if folded is not None:
                aligned.append((begin, end, folded))
        if not aligned or aligned[0][2] != "sil" or aligned[-1][2] != "sil":
            raise CorpusError(
                path,
                "bad alignment",
                "phones must start and end with h# (silence)",
                utt_id=ref.utt_id,
            )
        return tuple(aligned)
