"""eSpeak NG through ctypes: speech synthesis with phoneme timing, and grapheme-to-phoneme.

The shared library and its data come from the ``espeakng-loader`` wheel, so nothing is
downloaded. The synthetic corpus generator (:mod:`corpora.synth.corpus`) calls
:func:`synthesize`; lexicon-free corpora and recipes call :func:`text_to_phones48`.

eSpeak keeps global state and is not thread-safe: the library is initialised once per process
(synchronous output, phoneme events on) and every call goes through one lock. Voice parameters
persist across voice changes inside eSpeak, so :func:`synthesize` sets every one of them for
each utterance, and it seeds eSpeak's noise generators (its own and libc's ``rand``). Even so
the output depends on what the process synthesized before (the glottal-pulse phase carries
over, and neither seeds nor re-initialisation reset it): the same sequence of calls in a fresh
process gives the same samples, which is how the corpus generator gets byte-identical output.

Phoneme names map onto TIMIT labels in :mod:`corpora.synth.espeak_phonemes`.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass, field

import espeakng_loader
import numpy as np

from corpora.phones import fold_61_to_48, with_closures
from corpora.synth.espeak_phonemes import (
    espeak_to_timit,
    voice_family,
)

# --- C API constants (speak_lib.h) ---------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
PARAM_WORDGAP = 7


class EspeakError(RuntimeError):
    """eSpeak refused a call (initialisation, voice, synthesis)."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``.

    ``sample`` (called internal in speak_lib.h) is the event's index in the output samples;
    ``audio_position`` is the same instant in whole milliseconds. We use ``sample``: it is exact
    (a stop's event lands on its burst, tested against the audio).
    """

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class VoiceParams:
    """Everything eSpeak needs for one utterance.

    Parameters
    ----------
    voice : eSpeak voice name with optional variant, e.g. ``"en-us+m3"``.
    rate : speaking rate in words per minute (80-450; eSpeak's default 175).
    pitch : base pitch, 0-100 (default 50).
    pitch_range : pitch range, 0-100 (0 monotone, default 50).
    word_gap : extra pause between words, in units of 10 ms at the default rate.
    volume : amplitude, 0-200 (default 100).
    """

    voice: str = "en-us"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0
    volume: int = 100


@dataclass
class Synthesis:
    """One synthesized utterance at eSpeak's native rate.

    ``phonemes`` holds ``(start_sample, name)`` per phoneme event in order (names with stress
    marks, pauses included); ``words`` holds ``(start_sample, text_position, length)`` per
    word event, text positions 1-based in characters; a phoneme belongs to the last word
    event before it in the list.
    """

    samples: np.ndarray  # (n,) int16
    sample_rate: int  # Hz
    events: list[tuple[str, int, object]] = field(default_factory=list)

    @property
    def phonemes(self) -> list[tuple[int, str]]:
        return [(s, v) for kind, s, v in self.events if kind == "phoneme"]

    @property
    def words(self) -> list[tuple[int, int, int]]:
        return [(s, *v) for kind, s, v in self.events if kind == "word"]


class _Engine:
    """The process's one eSpeak instance (use :func:`_engine`)."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.libc = ctypes.CDLL(None)  # eSpeak's breath noise also draws from libc's rand()
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data, INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate}) with data at {data.decode()}")
        self.sample_rate = rate
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int, object]] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _on_audio(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8")
                self._events.append(("phoneme", ev.sample, name))
            elif ev.type == EVENT_WORD:
                self._events.append(("word", ev.sample, (ev.text_position, ev.length)))
            i += 1
        return 0

    def set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"eSpeak has no voice {voice!r}")
            self._voice = voice

    def set_params(self, params: VoiceParams) -> None:
        self.set_voice(params.voice)
        for key, value in (
            (PARAM_RATE, params.rate),
            (PARAM_VOLUME, params.volume),
            (PARAM_PITCH, params.pitch),
            (PARAM_RANGE, params.pitch_range),
            (PARAM_WORDGAP, params.word_gap),
        ):
            if self.lib.espeak_SetParameter(key, int(value), 0) != 0:
                raise EspeakError(f"espeak_SetParameter({key}, {value}) failed")

    def synthesize(self, text: str, params: VoiceParams) -> Synthesis:
        raw = text.encode("utf-8") + b"\0"
        with self.lock:
            self.set_params(params)
            self._chunks, self._events = [], []
            self.libc.srand(0)
            self.lib.espeak_ng_SetRandSeed(0)
            status = self.lib.espeak_Synth(
                raw, len(raw), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
            )
            if status != 0:
                raise EspeakError(f"espeak_Synth failed ({status}) for {text!r}")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return Synthesis(samples.astype(np.int16), self.sample_rate, self._events)

    def text_to_phonemes(self, text: str, voice: str) -> list[list[str]]:
        clauses: list[str] = []
        with self.lock:
            self.set_voice(voice)
            buf = ctypes.c_char_p(text.encode("utf-8"))
            ptr = ctypes.pointer(buf)
            while buf.value:  # eSpeak advances the pointer one clause per call, NULL at the end
                out = self.lib.espeak_TextToPhonemes(ptr, CHARS_UTF8, ord("|") << 8)
                if out:
                    clauses.append(out.decode("utf-8"))
        return [word.split("|") for clause in clauses for word in clause.split()]


_ENGINE: _Engine | None = None
_ENGINE_PID: int | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    """The process's eSpeak instance, initialised on first use (and again in a forked child)."""
    global _ENGINE, _ENGINE_PID
    with _ENGINE_LOCK:
        if _ENGINE is None or _ENGINE_PID != os.getpid():
            _ENGINE, _ENGINE_PID = _Engine(), os.getpid()
        return _ENGINE


def native_sample_rate() -> int:
    """eSpeak's output rate in Hz (22050 for the bundled voices)."""
    return _engine().sample_rate


def synthesize(text: str, params: VoiceParams | None = None) -> Synthesis:
    """Speak ``text`` with ``params``; int16 samples at eSpeak's native rate plus events."""
    return _engine().synthesize(text, params or VoiceParams())


def text_to_phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """eSpeak's grapheme-to-phoneme: one list of eSpeak phoneme names (stress kept) per word."""
    return _engine().text_to_phonemes(text, voice)


def text_to_timit(text: str, voice: str = "en-us") -> list[str]:
    """TIMIT-61 labels (releases only, no closures, no pauses) of ``text`` spoken by ``voice``."""
    family = voice_family(voice)
    return [
        label
        for word in text_to_phonemes(text, voice)
        for name in word
        for label in espeak_to_timit(name, family)
    ]


def text_to_phones48(text: str, voice: str = "en-us") -> list[str]:
    """Grapheme-to-phoneme into the 48 set, closures inserted, no ``sil`` at the ends.

    Raises ``ValueError`` naming the text when eSpeak gives no phonemes for it, and
    :class:`~corpora.synth.espeak_phonemes.UnmappedPhonemeError` for an eSpeak phoneme without a
    mapping.

    Examples
    --------
    >>> text_to_phones48("big cat")
    ['vcl', 'b', 'ih', 'vcl', 'g', 'cl', 'k', 'ae', 'cl', 't']
    """
    phones = with_closures(fold_61_to_48(text_to_timit(text, voice)))
    if not phones:
        raise ValueError(f"eSpeak gives no phonemes for the text {text!r}")
    return phones
