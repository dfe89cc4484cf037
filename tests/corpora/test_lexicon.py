"""corpora.lexicon: reading lexicons, case-insensitive lookup, eSpeak fallback, clear errors."""

from __future__ import annotations

import pytest

from corpora.lexicon import Lexicon, LexiconError, NoPronunciationError, transcript_words


@pytest.fixture
def lexicon_file(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text(
        ";;; a CMUdict-style comment\n"
        "A\tAH0\n"
        "A\tEY1\n"
        "CAT K AE1 T\n"  # space-separated form
        "don't\tD OW1 N T\n"
        "!SIL\tSIL\n"
        "<UNK>\tSPN\n"
    )
    return path


def test_reads_tab_and_space_forms_and_keeps_every_pronunciation(lexicon_file):
    lex = Lexicon.read(lexicon_file, g2p=False)
    assert len(lex) == 3 and "cat" in lex and "DON'T" in lex and "!SIL" not in lex
    assert lex.pronunciations("a") == [["ax"], ["ey"]]
    assert lex.pronounce("A") == ["ax"]  # the first pronunciation
    assert lex.pronounce("Cat") == ["cl", "k", "ae", "cl", "t"]


def test_phones_for_text_adds_silences_and_strips_punctuation(lexicon_file):
    lex = Lexicon.read(lexicon_file, g2p=False)
    assert transcript_words('"A cat, don\'t!"') == ["A", "cat", "don't"]
    assert lex.phones_for_text("A cat.") == ["sil", "ax", "cl", "k", "ae", "cl", "t", "sil"]


def test_unknown_words_without_g2p_raise_naming_the_word(lexicon_file):
    lex = Lexicon.read(lexicon_file, g2p=False)
    with pytest.raises(NoPronunciationError, match="'DOG'") as e:
        lex.phones_for_text("A DOG")
    assert e.value.word == "DOG"


def test_espeak_fallback_pronounces_unknown_words(lexicon_file):
    lex = Lexicon.read(lexicon_file)
    phones = lex.pronounce("big")
    assert phones == ["vcl", "b", "ih", "vcl", "g"]
    assert lex.phones_for_text("a big cat")[:2] == ["sil", "ax"]


def test_words_without_letters_have_no_pronunciation(lexicon_file):
    with pytest.raises(NoPronunciationError, match="'1984'"):
        Lexicon.read(lexicon_file).pronounce("1984")


@pytest.mark.parametrize(
    ("line", "message"),
    [("DOG\n", "'DOG' has no phones"), ("DOG D AO1 GX\n", "unknown ARPAbet phone 'GX'")],
)
def test_bad_lexicon_lines_are_named(tmp_path, line, message):
    path = tmp_path / "lex.txt"
    path.write_text("CAT K AE1 T\n" + line)
    with pytest.raises(LexiconError, match=message) as e:
        Lexicon.read(path)
    assert (e.value.path, e.value.line) == (str(path), 2)
    assert f"{path}:2" in str(e.value)
