"""corpora.phones: the 61/48/39 foldings against Kaldi's map, ARPAbet mapping, closures."""

from __future__ import annotations

import pytest

from corpora.phones import (
    ARPABET_TO_48,
    FOLD_48_TO_39,
    FOLD_61_TO_48,
    PHONES39,
    PHONES48,
    TIMIT61,
    UnknownPhoneError,
    arpabet_to_48,
    fold_48_to_39,
    fold_61_to_48,
    pronunciation_to_48,
    utterance_phones,
    with_closures,
)

#: Kaldi egs/timit/s5/conf/phones.60-48-39.map (kaldi-asr/kaldi), one "61 48 39" row per phone.
KALDI_MAP = """
aa aa aa|ae ae ae|ah ah ah|ao ao aa|aw aw aw|ax ax ah|ax-h ax ah|axr er er|ay ay ay|b b b
bcl vcl sil|ch ch ch|d d d|dcl vcl sil|dh dh dh|dx dx dx|eh eh eh|el el l|em m m|en en n
eng ng ng|epi epi sil|er er er|ey ey ey|f f f|g g g|gcl vcl sil|h# sil sil|hh hh hh|hv hh hh
ih ih ih|ix ix ih|iy iy iy|jh jh jh|k k k|kcl cl sil|l l l|m m m|n n n|ng ng ng|nx n n|ow ow ow
oy oy oy|p p p|pau sil sil|pcl cl sil|q|r r r|s s s|sh sh sh|t t t|tcl cl sil|th th th|uh uh uh
uw uw uw|ux uw uw|v v v|w w w|y y y|z z z|zh zh sh
"""


def kaldi_rows() -> list[list[str]]:
    return [row.split() for row in KALDI_MAP.replace("\n", "|").split("|") if row.strip()]


def test_foldings_equal_kaldis_map():
    rows = kaldi_rows()
    assert sorted(r[0] for r in rows) == sorted(TIMIT61) and len(TIMIT61) == 61
    for row in rows:
        if len(row) == 1:  # q: dropped
            assert FOLD_61_TO_48[row[0]] is None
        else:
            assert (FOLD_61_TO_48[row[0]], FOLD_48_TO_39[row[1]]) == (row[1], row[2]), row


def test_set_sizes():
    assert len(PHONES48) == len(set(PHONES48)) == 48
    assert {p for p in FOLD_61_TO_48.values() if p} == set(PHONES48)
    assert len(PHONES39) == 39 and set(FOLD_48_TO_39) == set(PHONES48)


def test_fold_drops_q_and_refuses_unknown_phones():
    assert fold_61_to_48(["h#", "q", "bcl", "b", "ax-h", "h#"]) == ["sil", "vcl", "b", "ax", "sil"]
    with pytest.raises(UnknownPhoneError, match="'xx'"):
        fold_61_to_48(["h#", "xx"])
    assert fold_48_to_39(["cl", "zh", "ix"]) == ["sil", "sh", "ih"]
    with pytest.raises(UnknownPhoneError, match="'q'"):
        fold_48_to_39(["q"])


def test_arpabet_mapping():
    assert len(ARPABET_TO_48) == 39 and set(ARPABET_TO_48.values()) <= set(PHONES48)
    assert arpabet_to_48("AH0") == "ax" and arpabet_to_48("AH1") == "ah"
    assert arpabet_to_48("AH0_E") == "ax" and arpabet_to_48("ih1_B") == "ih"
    assert arpabet_to_48("K_S") == "k"
    with pytest.raises(UnknownPhoneError, match="'DX'"):
        arpabet_to_48("DX")


def test_closures_and_utterance_phones():
    assert with_closures(["b", "iy", "cl", "t"]) == ["vcl", "b", "iy", "cl", "t"]
    assert pronunciation_to_48(["CH", "IY1", "Z"]) == ["cl", "ch", "iy", "z"]
    assert pronunciation_to_48(["JH", "AH0", "M", "P"]) == ["vcl", "jh", "ax", "m", "cl", "p"]
    assert utterance_phones([["iy"], ["vcl", "b"]]) == ["sil", "iy", "vcl", "b", "sil"]
    assert utterance_phones([]) == ["sil", "sil"]
