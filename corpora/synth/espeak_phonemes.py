"""eSpeak NG phoneme names onto TIMIT labels: the mapping tables and their lookups.

eSpeak phoneme names (its ASCII mnemonics, e.g. ``'aI``, ``tS``, ``@L``) map onto TIMIT's 61
labels through :data:`ESPEAK_TO_TIMIT` (rhotic American voices) with overrides for the
non-rhotic and Scottish voice families (:data:`FAMILY_OVERRIDES`); stress and length marks are
stripped first. A stop or affricate maps to its release label only; the corpus generator
finds the closure in the audio, and :func:`corpora.synth.espeak.text_to_phones48` inserts it with
:func:`corpora.phones.with_closures`. An eSpeak phoneme that is not in the table raises
:class:`UnmappedPhonemeError` naming it.
"""

from __future__ import annotations

from corpora.phones import UnknownPhoneError

#: Characters eSpeak prefixes to a phoneme name for stress (``'`` primary, ``,`` secondary,
#: ``%`` unstressed, ``=`` syllabic stress) or appends for length; they are not phonemes.
STRESS_MARKS = "'',%=;"

#: eSpeak pause names that do not start with ``_`` (every name starting with ``_`` is a pause:
#: ``_`` short, ``_:`` clause, ``_!`` glottal, ``_|`` word boundary, ...).
OTHER_PAUSES = frozenset({"||", "|", ""})


def is_pause(name: str) -> bool:
    """Whether an eSpeak phoneme name (stress marks allowed) is a pause."""
    base = strip_stress(name)
    return base.startswith("_") or base in OTHER_PAUSES


#: eSpeak phoneme (stress marks stripped) -> TIMIT-61 labels, for the rhotic American
#: voices (``en-us``, ``en-us-nyc``). Stops and affricates give the release label only.
#: Diphthongs with r (``A@`` = [ɑɹ]) give two labels; the generator splits their time.
#: The glottal stop ``?`` (``button``) is labelled ``t`` as in a lexicon transcription.
ESPEAK_TO_TIMIT: dict[str, tuple[str, ...]] = {
    # reduced vowels
    "@": ("ax",),
    "@2": ("ax",),
    "@5": ("ax",),
    "@#": ("ax",),
    "@-": ("ax",),
    "a#": ("ax",),
    "a#2": ("ax",),
    "a2": ("ax",),
    "I#": ("ix",),
    "I2": ("ix",),
    "I2#": ("ix",),
    "3": ("axr",),
    "@L": ("el",),
    # monophthongs
    "a": ("ae",),
    "aa": ("ae",),
    "a/": ("ae",),
    "A:": ("aa",),
    "A#": ("aa",),
    "0": ("aa",),
    "0#": ("aa",),
    "02": ("ao",),
    "O2": ("ao",),
    "O": ("ao",),
    "O:": ("ao",),
    "E": ("eh",),
    "E#": ("eh",),
    "E2": ("ih",),
    "e#": ("eh",),
    "e": ("eh",),
    "I": ("ih",),
    "i": ("iy",),
    "i:": ("iy",),
    "V": ("ah",),
    "U": ("uh",),
    "u:": ("uw",),
    "u": ("uw",),
    "3:": ("er",),
    "o": ("ow",),
    "o:": ("ow",),
    "e:": ("ey",),
    "A~": ("aa",),
    "O~": ("ao",),
    # diphthongs
    "aI": ("ay",),
    "aI2": ("ay",),
    "aU": ("aw",),
    "oU": ("ow",),
    "oU#": ("ow",),
    "eI": ("ey",),
    "OI": ("oy",),
    # vowel + r (rhotic realisation)
    "A@": ("aa", "r"),
    "O@": ("ao", "r"),
    "o@": ("ao", "r"),
    "U@": ("uh", "r"),
    "e@": ("eh", "r"),
    "i@3": ("ih", "r"),
    "i@": ("iy", "ax"),
    "aI@": ("ay", "axr"),
    "aI3": ("ay", "axr"),
    "aU@": ("aw", "axr"),
    "IR": ("ih", "r"),
    "VR": ("ah", "r"),
    # stops, flaps, affricates (release label; closures come from the audio)
    "p": ("p",),
    "b": ("b",),
    "t": ("t",),
    "t2": ("t",),
    "t[": ("t",),
    "?": ("t",),
    "d": ("d",),
    "d[": ("d",),
    "k": ("k",),
    "g": ("g",),
    "t#": ("dx",),
    "d#": ("dx",),
    "tS": ("ch",),
    "dZ": ("jh",),
    # fricatives
    "f": ("f",),
    "v": ("v",),
    "T": ("th",),
    "D": ("dh",),
    "s": ("s",),
    "z": ("z",),
    "z#": ("z",),
    "z/2": ("z",),
    "S": ("sh",),
    "Z": ("zh",),
    "h": ("hh",),
    "x": ("hh",),
    # nasals (syllabic ones as TIMIT's en/em/eng)
    "m": ("m",),
    "n": ("n",),
    "N": ("ng",),
    "m-": ("em",),
    "n-": ("en",),
    "N-": ("eng",),
    # liquids and glides
    "l": ("l",),
    "l/": ("l",),
    "l/2": ("l",),
    "l-": ("el",),
    "r": ("r",),
    "r-": ("axr",),
    "r/": ("r",),
    "w": ("w",),
    "w#": ("w",),
    "j": ("y",),
}

#: Per voice family overrides of :data:`ESPEAK_TO_TIMIT`. Non-rhotic voices (British,
#: Caribbean) realise ``A@`` as [ɑː] without r; the Scottish voice writes its r as a separate
#: ``r`` phoneme, so the vowel alone is labelled.
FAMILY_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    "rhotic": {},
    "non_rhotic": {
        "3": ("ax",),
        "A@": ("aa",),
        "O@": ("ao",),
        "o@": ("ao",),
        "U@": ("uh", "ax"),
        "e@": ("eh",),
        "i@3": ("ih", "ax"),
        "aI@": ("ay", "ax"),
        "aI3": ("ay", "ax"),
        "aU@": ("aw", "ax"),
    },
    "scottish": {
        "A@": ("aa",),
        "O@": ("ao",),
        "o@": ("ow",),
        "U@": ("uh", "ax"),
        "e@": ("eh",),
        "i@3": ("ih",),
        "IR": ("ih",),
        "VR": ("ah",),
    },
}

#: eSpeak language (the part of a voice name before ``+``) -> voice family.
LANGUAGE_FAMILY: dict[str, str] = {
    "en-us": "rhotic",
    "en-us-nyc": "rhotic",
    "en": "non_rhotic",
    "en-gb": "non_rhotic",
    "en-gb-x-rp": "non_rhotic",
    "en-gb-x-gbclan": "non_rhotic",
    "en-gb-x-gbcwmd": "non_rhotic",
    "en-029": "non_rhotic",
    "en-gb-scotland": "scottish",
}

#: Releases that the generator and :func:`text_to_phones48` give a closure, with its TIMIT label.
CLOSURE_OF_RELEASE: dict[str, str] = {
    "b": "bcl",
    "d": "dcl",
    "g": "gcl",
    "p": "pcl",
    "t": "tcl",
    "k": "kcl",
    "jh": "dcl",
    "ch": "tcl",
}


class UnmappedPhonemeError(UnknownPhoneError):
    """An eSpeak phoneme with no entry in :data:`ESPEAK_TO_TIMIT`."""


def voice_family(voice: str) -> str:
    """Voice family (a key of :data:`FAMILY_OVERRIDES`) of an eSpeak voice like ``en-us+m3``."""
    language = voice.split("+", 1)[0].lower()
    if language not in LANGUAGE_FAMILY:
        raise ValueError(
            f"voice {voice!r}: language {language!r} has no phoneme mapping; "
            f"known: {sorted(LANGUAGE_FAMILY)}"
        )
    return LANGUAGE_FAMILY[language]


def strip_stress(name: str) -> str:
    """An eSpeak phoneme name without its stress prefix (``'aI`` -> ``aI``)."""
    return name.lstrip(STRESS_MARKS)


def espeak_to_timit(name: str, family: str = "rhotic") -> tuple[str, ...]:
    """TIMIT-61 labels of one eSpeak phoneme (stress marks allowed); ``()`` for a pause.

    Raises :class:`UnmappedPhonemeError` naming the phoneme when it has no mapping.
    """
    if is_pause(name):
        return ()
    base = strip_stress(name)
    overrides = FAMILY_OVERRIDES[family]
    if base in overrides:
        return overrides[base]
    if base not in ESPEAK_TO_TIMIT:
        raise UnmappedPhonemeError(f"eSpeak phoneme {name!r} has no TIMIT mapping")
    return ESPEAK_TO_TIMIT[base]


# --- ctypes binding -------------------------------------------------------------------------
