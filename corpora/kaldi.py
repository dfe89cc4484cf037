"""Reader for Kaldi data dirs (``wav.scp``, ``text``, ``utt2spk``, ...), e.g. speechocean762.

Audio paths in ``wav.scp`` may be absolute or relative to the data dir; piped commands
(``cmd |``) and archive offsets are not supported (extract the audio to WAV/FLAC files
first). Optional files: ``spk2gender`` and ``spk2age`` (speaker facts), ``utt2dur``
(durations; otherwise read from the audio header with soundfile), ``text-phone`` (one line
per word, ``<utt>.<index><TAB><ARPAbet with _B/_I/_E/_S suffixes>``) and ``lexicon.txt``.
Reference phones come from ``text-phone`` when it covers the utterance, else from the
first ``lexicon.txt`` pronunciation of each word, else from eSpeak NG grapheme-to-phoneme
(:class:`corpora.lexicon.Lexicon`), with ``sil`` added at both ends. There is no
alignment: such corpora are transcript-only.

The module is one reader (about 440 lines) and stays whole: most of it is the per-line checks
that name each bad file and line (:class:`corpora.errors.CorpusError`), which share the
reader's parsed tables; split apart they would pass those tables around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import soundfile as sf

from corpora.errors import CorpusError
from corpora.lexicon import Lexicon, LexiconError, NoPronunciationError, transcript_words
from corpora.manifest import Utterance
from corpora.phones import UnknownPhoneError, pronunciation_to_48, utterance_phones

#: Largest accepted gap between ``utt2dur`` and the audio header, in seconds.
DURATION_TOLERANCE_S = 0.02


@dataclass(frozen=True)
class KaldiUtterance:
    """Everything the data dir says about one utterance, with the line each fact came from."""

    utt_id: str
    speaker: str
    audio: str  # the wav.scp value
    audio_line: int
    text: str
    text_line: int
    gender: str | None = None
    age: int | None = None
    duration: float | None = None  # from utt2dur
    duration_line: int | None = None
    word_phones: tuple[tuple[int, tuple[str, ...]], ...] = field(default=())  # (line, ARPAbet)


class _Table:
    """One ``key value`` Kaldi file: ``rows[key] = (line, value)``; bad keys are reported."""

    def __init__(self, path: Path, problems: list[CorpusError], *, empty_reason: str = "bad line"):
        self.path = path
        self.rows: dict[str, tuple[int, str]] = {}
        self.bad: set[str] = set()
        with path.open(encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line:
                    continue
                key, value = (line.split(None, 1) + [""])[:2]  # first field, rest of the line
                value = value.strip()
                if key in self.rows or key in self.bad:
                    self.rows.pop(key, None)
                    self.bad.add(key)
                    problems.append(
                        CorpusError(
                            path,
                            "duplicate id",
                            f"{key} appears more than once",
                            line=lineno,
                            utt_id=key,
                        )
                    )
                elif not value:
                    self.bad.add(key)
                    problems.append(
                        CorpusError(
                            path, empty_reason, f"{key} has no value", line=lineno, utt_id=key
                        )
                    )
                else:
                    self.rows[key] = (lineno, value)


def _missing_line(utt_id: str, text: _Table, utt2spk: _Table) -> CorpusError | None:
    """The problem of an utterance of ``wav.scp`` without a line in ``text`` or ``utt2spk``."""
    if utt_id not in text.rows:
        return CorpusError(
            text.path,
            "empty transcript",
            "utterance has no line in text",
            utt_id=utt_id,
        )
    if utt_id not in utt2spk.rows:
        return CorpusError(
            utt2spk.path,
            "missing speaker",
            "utterance has no line in utt2spk",
            utt_id=utt_id,
        )
    return None


def _report_missing_audio(
    wav: _Table, tables: tuple[_Table, ...], problems: list[CorpusError]
) -> None:
    """Report the utterances of ``tables`` (``text``, ``utt2spk``) without a line in ``wav.scp``."""
    for table in tables:
        for utt_id, (lineno, _) in sorted(table.rows.items()):
            if utt_id not in wav.rows and utt_id not in wav.bad:
                problems.append(
                    CorpusError(
                        table.path,
                        "missing audio",
                        "utterance has no line in wav.scp",
                        line=lineno,
                        utt_id=utt_id,
                    )
                )


def _report_speakers_without_utterances(
    refs: list[KaldiUtterance],
    utt2spk: _Table,
    optional: dict[str, _Table],
    problems: list[CorpusError],
) -> None:
    """Report (once each) the speakers of ``spk2gender`` / ``spk2age`` missing from ``utt2spk``."""
    speakers = {u.speaker for u in refs} | {spk for _, spk in utt2spk.rows.values()}
    for name in ("spk2gender", "spk2age"):
        table = optional.get(name)
        for spk, (lineno, _) in sorted(table.rows.items()) if table else []:
            if spk not in speakers:
                speakers.add(spk)  # report each speaker once
                problems.append(
                    CorpusError(
                        table.path,
                        "speaker without utterances",
                        f"speaker {spk} has no utterances in utt2spk",
                        line=lineno,
                    )
                )


class KaldiReader:
    """Read a Kaldi data dir into :class:`~corpora.manifest.Utterance` records.

    Parameters
    ----------
    data_dir : the folder holding ``wav.scp``, ``text`` and ``utt2spk``.
    g2p : pronounce words missing from ``lexicon.txt`` with eSpeak NG (otherwise such a word
        is a ``no pronunciation`` problem).
    voice : eSpeak voice for that fallback.
    """

    format = "kaldi"

    def __init__(self, data_dir: str | Path, *, g2p: bool = True, voice: str = "en-us"):
        self.data_dir = Path(data_dir)
        self.g2p = g2p
        self.voice = voice

    def options(self) -> dict:
        """The reader options (recorded in ``corpus.json``)."""
        return {"g2p": self.g2p, "voice": self.voice}

    def _file(self, name: str, required: bool) -> Path | None:
        path = self.data_dir / name
        if path.is_file():
            return path
        if required:
            raise CorpusError(path, "missing file", f"a Kaldi data dir needs {name}")
        return None

    def _check_data_dir(self) -> None:
        """Refuse a missing data dir and one whose utterances are ``segments`` of recordings."""
        if not self.data_dir.is_dir():
            raise CorpusError(self.data_dir, "missing file", "data dir not found")
        if (self.data_dir / "segments").is_file():
            raise CorpusError(
                self.data_dir / "segments",
                "unsupported audio",
                "utterances as segments of longer recordings are not supported; "
                "cut them into one audio file per utterance first",
            )

    def scan(self) -> tuple[list[KaldiUtterance], list[CorpusError]]:
        """Join the data dir's files per utterance; return the utterances and the problems.

        Raises :class:`CorpusError` when ``wav.scp``, ``text`` or ``utt2spk`` is missing,
        ``lexicon.txt`` has a bad line (reported once, not per utterance) or the dir has a
        ``segments`` file (not supported). An utterance with any problem is left out of the
        returned list and its problem is in the returned problems.
        """
        self._check_data_dir()
        problems: list[CorpusError] = []
        wav = _Table(self._file("wav.scp", True), problems)
        text = _Table(self._file("text", True), problems, empty_reason="empty transcript")
        utt2spk = _Table(self._file("utt2spk", True), problems)
        optional = {
            name: _Table(path, problems)
            for name in ("spk2gender", "spk2age", "utt2dur")
            if (path := self._file(name, False)) is not None
        }
        word_phones, bad_phones = self._read_text_phone(problems)
        _ = self.lexicon  # a bad lexicon line stops the scan, not every utterance
        speaker_facts = self._speaker_facts(optional, problems)

        refs = []
        for utt_id, (audio_line, audio) in sorted(wav.rows.items()):
            if utt_id in text.bad | utt2spk.bad | bad_phones:
                continue
            missing = _missing_line(utt_id, text, utt2spk)
            if missing is not None:
                problems.append(missing)
                continue
            text_line, words = text.rows[utt_id]
            speaker = utt2spk.rows[utt_id][1]
            gender, age = speaker_facts.get(speaker, (None, None))
            dur_line, duration = self._duration(optional.get("utt2dur"), utt_id, problems)
            if dur_line is not None and duration is None:
                continue
            refs.append(
                KaldiUtterance(
                    utt_id=utt_id,
                    speaker=speaker,
                    audio=audio,
                    audio_line=audio_line,
                    text=words,
                    text_line=text_line,
                    gender=gender,
                    age=age,
                    duration=duration,
                    duration_line=dur_line,
                    word_phones=tuple(word_phones.get(utt_id, ())),
                )
            )
        _report_missing_audio(wav, (text, utt2spk), problems)
        _report_speakers_without_utterances(refs, utt2spk, optional, problems)
        return refs, problems

    def _speaker_facts(
        self, optional: dict[str, _Table], problems: list[CorpusError]
    ) -> dict[str, tuple[str | None, int | None]]:
        """``{speaker: (gender, age)}`` from ``spk2gender`` / ``spk2age``; bad values reported."""
        facts: dict[str, tuple[str | None, int | None]] = {}
        if "spk2gender" in optional:
            table = optional["spk2gender"]
            for spk, (lineno, value) in table.rows.items():
                if value.lower() not in ("m", "f"):
                    problems.append(
                        CorpusError(
                            table.path, "bad line", f"gender {value!r} is not m or f", line=lineno
                        )
                    )
                    continue
                facts[spk] = (value.lower(), None)
        if "spk2age" in optional:
            table = optional["spk2age"]
            for spk, (lineno, value) in table.rows.items():
                if not value.isdigit():
                    problems.append(
                        CorpusError(
                            table.path,
                            "bad line",
                            f"age {value!r} is not a whole number",
                            line=lineno,
                        )
                    )
                    continue
                facts[spk] = (facts.get(spk, (None, None))[0], int(value))
        return facts

    @staticmethod
    def _duration(
        table: _Table | None, utt_id: str, problems: list[CorpusError]
    ) -> tuple[int | None, float | None]:
        """``(line, seconds)`` from ``utt2dur``; ``(line, None)`` after reporting a bad value."""
        if table is None or utt_id not in table.rows:
            return None, None
        lineno, value = table.rows[utt_id]
        try:
            return lineno, float(value)
        except ValueError:
            problems.append(
                CorpusError(
                    table.path,
                    "bad line",
                    f"duration {value!r} is not a number",
                    line=lineno,
                    utt_id=utt_id,
                )
            )
            return lineno, None

    def _read_text_phone(
        self, problems: list[CorpusError]
    ) -> tuple[dict[str, list[tuple[int, tuple[str, ...]]]], set[str]]:
        """``text-phone`` grouped per utterance in word order, and the utterances with bad lines."""
        path = self._file("text-phone", False)
        by_utt: dict[str, dict[int, tuple[int, tuple[str, ...]]]] = {}
        bad: set[str] = set()
        if path is None:
            return {}, bad
        with path.open(encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line:
                    continue
                key, _, phones = line.partition("\t") if "\t" in line else line.partition(" ")
                utt_id, _, index = key.rpartition(".")
                if not utt_id or not index.isdigit() or not phones.split():
                    problems.append(
                        CorpusError(
                            path,
                            "bad line",
                            f"expected '<utt>.<word index> PHONES', got {line!r}",
                            line=lineno,
                            utt_id=utt_id or None,
                        )
                    )
                    bad.add(utt_id)
                    continue
                words = by_utt.setdefault(utt_id, {})
                if int(index) in words:
                    problems.append(
                        CorpusError(
                            path,
                            "duplicate id",
                            f"word {key} also on line {words[int(index)][0]}",
                            line=lineno,
                            utt_id=utt_id,
                        )
                    )
                    bad.add(utt_id)
                words[int(index)] = (lineno, tuple(phones.split()))
        return {u: [w[i] for i in sorted(w)] for u, w in by_utt.items()}, bad

    @cached_property
    def lexicon(self) -> Lexicon:
        """``lexicon.txt`` (empty when absent) with the G2P fallback; a bad line is fatal."""
        path = self._file("lexicon.txt", False)
        if path is None:
            return Lexicon({}, g2p=self.g2p, voice=self.voice)
        try:
            return Lexicon.read(path, g2p=self.g2p, voice=self.voice)
        except LexiconError as e:
            raise CorpusError(e.path, "bad line", e.reason, line=e.line) from e

    def load(self, ref: KaldiUtterance) -> Utterance:
        """Check one utterance's audio and derive its phones; raises :class:`CorpusError`."""
        wav_scp = self.data_dir / "wav.scp"
        if ref.audio.rstrip().endswith("|"):
            raise CorpusError(
                wav_scp,
                "unsupported audio",
                "piped wav.scp commands ('cmd |') are not supported; write the audio to WAV/FLAC files",
                line=ref.audio_line,
                utt_id=ref.utt_id,
            )
        audio = Path(ref.audio)
        audio = audio if audio.is_absolute() else self.data_dir / audio
        if not audio.is_file():
            raise CorpusError(
                wav_scp,
                "missing audio",
                f"audio file {audio} not found",
                line=ref.audio_line,
                utt_id=ref.utt_id,
            )
        try:
            info = sf.info(str(audio))  # header only, no decoding
        except (sf.LibsndfileError, RuntimeError) as e:
            raise CorpusError(
                audio, "corrupt audio", f"cannot read the audio header ({e})", utt_id=ref.utt_id
            ) from e
        if info.frames <= 0:
            raise CorpusError(audio, "corrupt audio", "audio has no samples", utt_id=ref.utt_id)
        header_duration = info.frames / info.samplerate
        duration = header_duration
        if ref.duration is not None:
            if abs(ref.duration - header_duration) > DURATION_TOLERANCE_S:
                raise CorpusError(
                    self.data_dir / "utt2dur",
                    "duration mismatch",
                    f"utt2dur says {ref.duration} s but the audio holds {header_duration:.4f} s",
                    line=ref.duration_line,
                    utt_id=ref.utt_id,
                )
            duration = ref.duration
        phones, source = self._phones(ref)
        meta: dict = {"phones_from": source}
        if ref.age is not None:
            meta["age"] = ref.age
        return Utterance(
            utt_id=ref.utt_id,
            speaker=ref.speaker,
            path=str(audio.resolve()),
            duration=duration,
            text=ref.text,
            phones=tuple(phones),
            alignment=None,
            sample_rate=int(info.samplerate),
            gender=ref.gender,
            meta=meta,
        )

    def _phones(self, ref: KaldiUtterance) -> tuple[list[str], str]:
        """Reference phones (48 set, ``sil`` ends) and where they came from."""
        words = transcript_words(ref.text)
        if ref.word_phones:
            text_phone = self.data_dir / "text-phone"
            if len(ref.word_phones) != len(words):
                raise CorpusError(
                    text_phone,
                    "phone count mismatch",
                    f"{len(ref.word_phones)} text-phone words for a {len(words)}-word transcript",
                    line=ref.word_phones[0][0],
                    utt_id=ref.utt_id,
                )
            per_word = []
            for lineno, arpabet in ref.word_phones:
                try:
                    per_word.append(pronunciation_to_48(arpabet))
                except UnknownPhoneError as e:
                    raise CorpusError(
                        text_phone, "unknown phone", str(e), line=lineno, utt_id=ref.utt_id
                    ) from e
            return utterance_phones(per_word), "text-phone"
        lexicon = self.lexicon
        try:
            phones = lexicon.phones_for_text(ref.text)
        except NoPronunciationError as e:
            raise CorpusError(
                self.data_dir / "text",
                "no pronunciation",
                str(e),
                line=ref.text_line,
                utt_id=ref.utt_id,
            ) from e
        source = "lexicon" if all(w in lexicon for w in words) else "lexicon+g2p"
        return phones, source
