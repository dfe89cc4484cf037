"""Pronunciation lexicon: words -> reference phones in the 48 set.

Corpora without phone alignments (Kaldi data dirs such as speechocean762) get their
reference phones from a lexicon of ARPAbet pronunciations (CMU style, stress digits and
Kaldi ``_B/_I/_E/_S`` suffixes allowed), mapped by :mod:`corpora.phones` onto the
48-phone set with stop closures. Words the lexicon lacks fall back to eSpeak NG's
grapheme-to-phoneme conversion (:func:`corpora.synth.espeak.text_to_phones48`), imported only
when needed.
"""

from __future__ import annotations

import re
from pathlib import Path

from corpora.phones import UnknownPhoneError, pronunciation_to_48, utterance_phones

#: Characters stripped from both ends of a transcript token before lookup.
_PUNCTUATION = "\"'.,;:!?()[]{}"


class LexiconError(ValueError):
    """A lexicon file line that cannot be read; the message names the file and line."""

    def __init__(self, path: str | Path, line: int, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")


class NoPronunciationError(ValueError):
    """A word that neither the lexicon nor grapheme-to-phoneme conversion can pronounce."""

    def __init__(self, word: str, why: str):
        self.word = word
        super().__init__(f"no pronunciation for word {word!r}: {why}")


def transcript_words(text: str) -> list[str]:
    """Split a transcript into words: whitespace tokens, outer punctuation stripped.

    Inner apostrophes and hyphens stay (``DON'T``, ``TWENTY-ONE``).
    """
    words = (tok.strip(_PUNCTUATION) for tok in text.split())
    return [w for w in words if w]


def _is_non_speech_token(word: str) -> bool:
    """Kaldi lexicon markers such as ``!SIL``, ``<UNK>``, ``<SPOKEN_NOISE>``."""
    return word.startswith("!") or (word.startswith("<") and word.endswith(">"))


class Lexicon:
    """Word -> 48-set pronunciations, case-insensitive, with an optional G2P fallback.

    Parameters
    ----------
    entries : ``{WORD: [pronunciation, ...]}`` with pronunciations already in the 48 set
        (closures included); keys are matched case-insensitively. The first pronunciation
        of a word is the one :meth:`pronounce` returns.
    g2p : fall back to eSpeak NG grapheme-to-phoneme for words not in ``entries``.
    voice : eSpeak voice used by the fallback (e.g. ``"en-us"``).

    Examples
    --------
    >>> lex = Lexicon({"LIKE": [["l", "ay", "cl", "k"]]}, g2p=False)
    >>> lex.phones_for_text("like")
    ['sil', 'l', 'ay', 'cl', 'k', 'sil']
    """

    def __init__(
        self, entries: dict[str, list[list[str]]], *, g2p: bool = True, voice: str = "en-us"
    ):
        self.entries = {w.upper(): [list(p) for p in prons] for w, prons in entries.items()}
        self.g2p = g2p
        self.voice = voice

    @classmethod
    def read(cls, path: str | Path, *, g2p: bool = True, voice: str = "en-us") -> Lexicon:
        """Load ``WORD<TAB>PHONES`` or ``WORD PHONES`` lines of ARPAbet phones.

        Repeated words keep every pronunciation in file order. Kaldi non-speech markers
        (``!SIL``, ``<UNK>``, ...) are skipped: they have no phones in the 48 set. A line with
        no phones or an unknown phone raises :class:`LexiconError` naming the file and line.
        """
        path = Path(path)
        entries: dict[str, list[list[str]]] = {}
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith(";;;"):  # blank or CMUdict comment
                    continue
                word, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
                word = word.strip()
                if _is_non_speech_token(word):
                    continue
                arpabet = rest.split()
                if not arpabet:
                    raise LexiconError(path, lineno, f"word {word!r} has no phones")
                try:
                    pron = pronunciation_to_48(arpabet)
                except UnknownPhoneError as e:
                    raise LexiconError(path, lineno, str(e)) from e
                entries.setdefault(word.upper(), []).append(pron)
        return cls(entries, g2p=g2p, voice=voice)

    def __contains__(self, word: str) -> bool:
        return word.upper() in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def pronunciations(self, word: str) -> list[list[str]]:
        """Every lexicon pronunciation of ``word`` (48 set), empty when it is not listed."""
        return [list(p) for p in self.entries.get(word.upper(), [])]

    def pronounce(self, word: str) -> list[str]:
        """The first lexicon pronunciation of ``word``, else eSpeak G2P (48 set, no ``sil``).

        Raises :class:`NoPronunciationError` when neither gives phones. Tokens without
        letters (``1984``) are not guessed by G2P (year or count?): spell them out in the
        transcript.
        """
        prons = self.entries.get(word.upper())
        if prons:
            return list(prons[0])
        if not self.g2p:
            raise NoPronunciationError(word, "not in the lexicon and G2P fallback is off")
        return self._g2p(word)

    def phones_for_text(self, text: str) -> list[str]:
        """Reference phones of a transcript: each word pronounced, ``sil`` at both ends."""
        return utterance_phones(self.pronounce(w) for w in transcript_words(text))

    def _g2p(self, word: str) -> list[str]:
        if not re.search(r"[A-Za-z]", word):
            raise NoPronunciationError(word, "not in the lexicon and has no letters for G2P")
        try:
            from corpora.synth.espeak import text_to_phones48
        except ImportError as e:
            raise NoPronunciationError(
                word, f"not in the lexicon; eSpeak G2P unavailable ({e})"
            ) from e
        try:
            return list(text_to_phones48(word.lower(), voice=self.voice))
        except ValueError as e:  # no phonemes, or an eSpeak phoneme without a 48-set mapping
            raise NoPronunciationError(word, f"not in the lexicon; eSpeak G2P failed ({e})") from e
