"""eSpeak NG binding: grapheme-to-phoneme, synthesis events, the eSpeak -> TIMIT phone map."""

from __future__ import annotations

import struct
from pathlib import Path

import espeakng_loader
import numpy as np
import pytest

from corpora.phones import PHONES48, TIMIT61
from corpora.synth import espeak, espeak_phonemes
from corpora.synth.grammar import SLOTS, TEMPLATES

#: eSpeak phoneme tables of the English voices the corpus uses.
ENGLISH_TABLES = ("en", "en-us", "en-us-nyc", "en-rp", "en-sc", "en-n", "en-wm", "en-wi")
#: The English consonants the ``en`` table inherits from eSpeak's shared ``base1`` table.
BASE_CONSONANTS = "p b t d k g m n N f v T D s z S Z h tS dZ l r w j ?".split()


def english_table_phonemes() -> set[str]:
    """Names of every vowel/consonant defined in eSpeak's English phoneme tables (phontab)."""
    raw = Path(espeakng_loader.get_data_path(), "phontab").read_bytes()
    names, pos = set(), 4
    for _ in range(raw[0]):
        n_phonemes = raw[pos]
        table = raw[pos + 4 : pos + 36].split(b"\0", 1)[0].decode()
        pos += 36
        for _ in range(n_phonemes):
            mnemonic, _flags, program, _code, kind = struct.unpack_from("<IIHBB", raw, pos)
            pos += 16
            name = mnemonic.to_bytes(4, "little").rstrip(b"\0").decode("latin-1")
            if table in ENGLISH_TABLES and program and kind >= 2:  # 0 pause, 1 stress
                names.add(name)
    return names


def test_every_english_phoneme_is_mapped_in_every_family():
    names = english_table_phonemes() | set(BASE_CONSONANTS)
    assert len(names) > 60
    for family in espeak_phonemes.FAMILY_OVERRIDES:
        for name in sorted(names):
            labels = espeak_phonemes.espeak_to_timit(name, family)
            assert labels and all(lab in TIMIT61 for lab in labels), (family, name, labels)


def test_unmapped_phoneme_is_an_error_naming_it():
    with pytest.raises(espeak_phonemes.UnmappedPhonemeError, match="'C'"):
        espeak_phonemes.espeak_to_timit("C")


def test_stress_marks_and_pauses():
    assert espeak_phonemes.espeak_to_timit("'aI") == ("ay",)
    assert espeak_phonemes.espeak_to_timit(",A@") == ("aa", "r")
    assert espeak_phonemes.espeak_to_timit("A@", "non_rhotic") == ("aa",)
    assert espeak_phonemes.espeak_to_timit("_:") == ()


def test_text_to_phones48_with_closures():
    assert espeak.text_to_phones48("big cat") == [
        "vcl",
        "b",
        "ih",
        "vcl",
        "g",
        "cl",
        "k",
        "ae",
        "cl",
        "t",
    ]
    phones = espeak.text_to_phones48("Could you turn the kitchen lights off?")
    assert set(phones) <= set(PHONES48)
    assert phones[0] != "sil" and phones[-1] != "sil"
    assert phones[:3] == ["cl", "k", "uh"]


def test_text_to_phones48_rejects_text_without_speech():
    with pytest.raises(ValueError, match="'  '"):
        espeak.text_to_phones48("  ")
    with pytest.raises(ValueError, match="language"):
        espeak.text_to_phones48("hello", voice="de")


@pytest.mark.parametrize(
    "voice",
    [
        "en-us",
        "en-us-nyc",
        "en",
        "en-gb-x-rp",
        "en-gb-scotland",
        "en-029",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
    ],
)
def test_grammar_vocabulary_maps_for_every_voice(voice):
    words = {w for fillers in SLOTS.values() for f in fillers for w in f.split()}
    words |= {w.strip(".,?!") for t in TEMPLATES for w in t.split() if "{" not in w}
    text = " ".join(sorted(w for w in words if w))
    phones = espeak.text_to_phones48(text, voice)
    assert set(phones) <= set(PHONES48)


def test_synthesis_events_are_monotone_and_inside_the_audio():
    synth = espeak.synthesize(
        "Turn off the kitchen lights, please.", espeak.VoiceParams("en-us+m3")
    )
    assert synth.sample_rate == 22050
    x = synth.samples
    assert x.dtype == np.int16 and 1.0 < len(x) / synth.sample_rate < 5.0
    starts = [s for s, _ in synth.phonemes]
    assert starts == sorted(starts)
    assert 0 <= starts[0] and starts[-1] <= len(x)
    names = [espeak_phonemes.strip_stress(n) for _, n in synth.phonemes]
    assert names[:3] == ["t", "3:", "n"]
    assert [pos for _, pos, _ in synth.words][:2] == [1, 6]  # "Turn", "off"
    # the event of "Turn"'s t sits on its burst: silence (the closure) before, sound after
    rms = lambda a, b: np.sqrt(np.mean(x[a:b].astype(float) ** 2))  # noqa: E731
    t_start = starts[0]
    assert rms(t_start - 40, t_start) < 50 < 500 < rms(t_start, t_start + 110)
    # a vowel's span carries sound: "kitchen"'s stressed I
    i = names.index("I")
    span = x[starts[i] : starts[i + 1]].astype(float)
    assert np.sqrt(np.mean(span**2)) > 1000


def test_every_parameter_is_set_per_utterance():
    # (samples themselves differ from call to call: eSpeak's glottal phase carries over)
    plain = espeak.VoiceParams("en-us+f2")
    first = espeak.synthesize("Hello there.", plain)
    other = espeak.synthesize("Hello there.", espeak.VoiceParams("en-us+m1", 300, 90, 90, 5, 150))
    again = espeak.synthesize("Hello there.", plain)
    assert len(other.samples) < 0.8 * len(first.samples)
    assert len(again.samples) == len(first.samples)
    assert [n for _, n in again.phonemes] == [n for _, n in first.phonemes]


def test_unknown_voice_is_refused():
    with pytest.raises(espeak.EspeakError, match="no-such-voice"):
        espeak.synthesize("hello", espeak.VoiceParams("no-such-voice"))
