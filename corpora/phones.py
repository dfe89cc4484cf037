"""Phone sets shared by every corpus reader, the recognizer and the scorer.

TIMIT's 61 phones are folded to 48 for training and to 39 for scoring (Lee & Hon 1989,
as in Kaldi's ``egs/timit/s5/conf/phones.60-48-39.map``); ``q`` is dropped. Every manifest
stores reference phones in the 48-phone set. ARPAbet (CMU lexicon) phones map onto the same
set so that lexicon-based corpora share one convention with TIMIT-layout corpora: a stop or
affricate is preceded by its closure (``vcl`` for voiced, ``cl`` for voiceless) and an
utterance starts and ends with ``sil``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: TIMIT's 61-phone label set (``q`` included; it folds to nothing).
TIMIT61: tuple[str, ...] = (
    "aa",
    "ae",
    "ah",
    "ao",
    "aw",
    "ax",
    "ax-h",
    "axr",
    "ay",
    "b",
    "bcl",
    "ch",
    "d",
    "dcl",
    "dh",
    "dx",
    "eh",
    "el",
    "em",
    "en",
    "eng",
    "epi",
    "er",
    "ey",
    "f",
    "g",
    "gcl",
    "h#",
    "hh",
    "hv",
    "ih",
    "ix",
    "iy",
    "jh",
    "k",
    "kcl",
    "l",
    "m",
    "n",
    "ng",
    "nx",
    "ow",
    "oy",
    "p",
    "pau",
    "pcl",
    "q",
    "r",
    "s",
    "sh",
    "t",
    "tcl",
    "th",
    "uh",
    "uw",
    "ux",
    "v",
    "w",
    "y",
    "z",
    "zh",
)

#: 61 -> 48 folding; ``None`` means the phone is dropped (only ``q``).
FOLD_61_TO_48: dict[str, str | None] = {
    "aa": "aa",
    "ae": "ae",
    "ah": "ah",
    "ao": "ao",
    "aw": "aw",
    "ax": "ax",
    "ax-h": "ax",
    "axr": "er",
    "ay": "ay",
    "b": "b",
    "bcl": "vcl",
    "ch": "ch",
    "d": "d",
    "dcl": "vcl",
    "dh": "dh",
    "dx": "dx",
    "eh": "eh",
    "el": "el",
    "em": "m",
    "en": "en",
    "eng": "ng",
    "epi": "epi",
    "er": "er",
    "ey": "ey",
    "f": "f",
    "g": "g",
    "gcl": "vcl",
    "h#": "sil",
    "hh": "hh",
    "hv": "hh",
    "ih": "ih",
    "ix": "ix",
    "iy": "iy",
    "jh": "jh",
    "k": "k",
    "kcl": "cl",
    "l": "l",
    "m": "m",
    "n": "n",
    "ng": "ng",
    "nx": "n",
    "ow": "ow",
    "oy": "oy",
    "p": "p",
    "pau": "sil",
    "pcl": "cl",
    "q": None,
    "r": "r",
    "s": "s",
    "sh": "sh",
    "t": "t",
    "tcl": "cl",
    "th": "th",
    "uh": "uh",
    "uw": "uw",
    "ux": "uw",
    "v": "v",
    "w": "w",
    "y": "y",
    "z": "z",
    "zh": "zh",
}

#: The 48-phone training set, in a fixed order (index = phone id in models and checkpoints).
PHONES48: tuple[str, ...] = (
    "aa",
    "ae",
    "ah",
    "ao",
    "aw",
    "ax",
    "ay",
    "b",
    "ch",
    "cl",
    "d",
    "dh",
    "dx",
    "eh",
    "el",
    "en",
    "epi",
    "er",
    "ey",
    "f",
    "g",
    "hh",
    "ih",
    "ix",
    "iy",
    "jh",
    "k",
    "l",
    "m",
    "n",
    "ng",
    "ow",
    "oy",
    "p",
    "r",
    "s",
    "sh",
    "sil",
    "t",
    "th",
    "uh",
    "uw",
    "v",
    "vcl",
    "w",
    "y",
    "z",
    "zh",
)

#: 48 -> 39 folding used for scoring.
FOLD_48_TO_39: dict[str, str] = {p: p for p in PHONES48} | {
    "ao": "aa",
    "ax": "ah",
    "cl": "sil",
    "vcl": "sil",
    "epi": "sil",
    "el": "l",
    "en": "n",
    "ix": "ih",
    "zh": "sh",
}

#: The 39-phone scoring set, sorted.
PHONES39: tuple[str, ...] = tuple(sorted(set(FOLD_48_TO_39.values())))

#: ARPAbet (CMU dictionary, stress digits stripped) -> 48 set. ``AH0`` is handled by
#: :func:`arpabet_to_48` (unstressed schwa -> ``ax``).
ARPABET_TO_48: dict[str, str] = {
    "AA": "aa",
    "AE": "ae",
    "AH": "ah",
    "AO": "ao",
    "AW": "aw",
    "AY": "ay",
    "B": "b",
    "CH": "ch",
    "D": "d",
    "DH": "dh",
    "EH": "eh",
    "ER": "er",
    "EY": "ey",
    "F": "f",
    "G": "g",
    "HH": "hh",
    "IH": "ih",
    "IY": "iy",
    "JH": "jh",
    "K": "k",
    "L": "l",
    "M": "m",
    "N": "n",
    "NG": "ng",
    "OW": "ow",
    "OY": "oy",
    "P": "p",
    "R": "r",
    "S": "s",
    "SH": "sh",
    "T": "t",
    "TH": "th",
    "UH": "uh",
    "UW": "uw",
    "V": "v",
    "W": "w",
    "Y": "y",
    "Z": "z",
    "ZH": "zh",
}

#: Closure that precedes each stop / affricate release in the 48 set.
CLOSURE_OF: dict[str, str] = {
    "b": "vcl",
    "d": "vcl",
    "g": "vcl",
    "jh": "vcl",
    "p": "cl",
    "t": "cl",
    "k": "cl",
    "ch": "cl",
}


class UnknownPhoneError(ValueError):
    """A phone label that is not in the phone set it was expected in."""


def fold_61_to_48(phones: Iterable[str]) -> list[str]:
    """Fold TIMIT 61-phone labels to the 48 set, dropping ``q``.

    Raises :class:`UnknownPhoneError` naming the first label that is not a TIMIT phone.
    """
    out = []
    for p in phones:
        if p not in FOLD_61_TO_48:
            raise UnknownPhoneError(f"unknown TIMIT phone {p!r}")
        folded = FOLD_61_TO_48[p]
        if folded is not None:
            out.append(folded)
    return out


def fold_48_to_39(phones: Iterable[str]) -> list[str]:
    """Fold 48-set labels to the 39 scoring set."""
    out = []
    for p in phones:
        if p not in FOLD_48_TO_39:
            raise UnknownPhoneError(f"unknown 48-set phone {p!r}")
        out.append(FOLD_48_TO_39[p])
    return out


def arpabet_to_48(phone: str) -> str:
    """Map one ARPAbet phone (stress digit, Kaldi ``_B/_I/_E/_S`` suffix allowed) to the 48 set."""
    base = phone.split("_", 1)[0].upper()
    stress = base[-1] if base[-1:].isdigit() else ""
    base = base.rstrip("012")
    if base == "AH" and stress == "0":
        return "ax"
    if base not in ARPABET_TO_48:
        raise UnknownPhoneError(f"unknown ARPAbet phone {phone!r}")
    return ARPABET_TO_48[base]


def with_closures(phones: Iterable[str]) -> list[str]:
    """Insert the closure before each stop / affricate that lacks one (48 set in, 48 set out)."""
    out: list[str] = []
    for p in phones:
        closure = CLOSURE_OF.get(p)
        if closure is not None and (not out or out[-1] != closure):
            out.append(closure)
        out.append(p)
    return out


def pronunciation_to_48(arpabet: Iterable[str]) -> list[str]:
    """A word's ARPAbet pronunciation as 48-set phones with closures (no silences added)."""
    return with_closures(arpabet_to_48(p) for p in arpabet)


def utterance_phones(words: Iterable[list[str]]) -> list[str]:
    """Concatenate per-word 48-set phone lists and add ``sil`` at both ends."""
    out = ["sil"]
    for w in words:
        out.extend(w)
    out.append("sil")
    return out
