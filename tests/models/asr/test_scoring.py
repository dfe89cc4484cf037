"""PER arithmetic on hand-made examples; the alignment against SpeechBrain's and a brute force."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.asr.scoring import per, per_by_speaker, sum_counts

PHONES = st.lists(st.sampled_from(["sil", "aa", "b", "iy"]), max_size=12)


def load_speechbrain_edit_distance():
    """``speechbrain.utils.edit_distance`` (stdlib imports only) loaded from its file alone.

    Importing the ``speechbrain`` package leaves lazy proxies in ``sys.modules`` whose attribute
    access raises ImportError (k2 is not installed); hypothesis scans ``sys.modules`` and would
    fail every later property test of the session.
    """
    package = Path(importlib.util.find_spec("speechbrain").origin).parent
    spec = importlib.util.spec_from_file_location(
        "speechbrain_edit_distance", package / "utils" / "edit_distance.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SB_EDIT_DISTANCE = load_speechbrain_edit_distance()


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("a b c", "a b c", (0, 0, 0, 0)),
        ("a b c", "a x c", (1, 1, 0, 0)),
        ("a b c", "a c", (1, 0, 1, 0)),
        ("a b c", "a b c d", (1, 0, 0, 1)),
        ("a b c", "", (3, 0, 3, 0)),
        ("a b c d", "x a b c", (2, 0, 1, 1)),
        ("sil ah b sil", "sil b sil sil", (2, 0, 1, 1)),
    ],
)
def test_edit_counts(ref, hyp, expected):
    r = per(ref.split(), hyp.split())
    assert (r["errors"], r["subs"], r["dels"], r["ins"]) == expected
    assert r["per"] == expected[0] / len(ref.split())


def test_empty_reference():
    assert per([], [])["per"] == 0.0
    assert per([], ["a"])["per"] == float("inf")


def test_pooled_rates_sum_counts_first():
    a = per(["a"], ["b"])  # 1 / 1
    b = per(list("abcd"), list("abcd"))  # 0 / 4
    assert sum_counts([a, b])["per"] == pytest.approx(1 / 5)
    by = per_by_speaker([("s2", a), ("s1", b), ("s2", b)])
    assert list(by) == ["s1", "s2"]
    assert by["s2"]["ref_len"] == 5 and by["s2"]["errors"] == 1


def speechbrain_counts(ref: list[str], hyp: list[str]) -> tuple[int, int, int]:
    """(subs, dels, ins) of SpeechBrain's alignment."""
    ops = SB_EDIT_DISTANCE.count_ops(SB_EDIT_DISTANCE.op_table(ref, hyp))
    return ops["substitutions"], ops["deletions"], ops["insertions"]


def fewest_edits_then_subs(ref: tuple[str, ...], hyp: tuple[str, ...]) -> tuple[int, int]:
    """(edits, subs) minimised in that order over every alignment, by exhaustive recursion."""

    @functools.cache
    def best(i: int, j: int) -> tuple[int, int]:
        if i == len(ref) or j == len(hyp):
            return len(ref) - i + len(hyp) - j, 0
        e, s = best(i + 1, j + 1)
        diag = (e, s) if ref[i] == hyp[j] else (e + 1, s + 1)
        e_del, s_del = best(i + 1, j)
        e_ins, s_ins = best(i, j + 1)
        return min(diag, (e_del + 1, s_del), (e_ins + 1, s_ins))

    return best(0, 0)


@settings(max_examples=500, deadline=None)
@given(PHONES, PHONES)
def test_counts_are_speechbrains_edit_distance_with_the_fewest_substitutions(ref, hyp):
    r = per(ref, hyp)
    subs, dels, ins = speechbrain_counts(ref, hyp)
    assert r["errors"] == subs + dels + ins  # same edit distance
    assert (r["errors"], r["subs"]) == fewest_edits_then_subs(tuple(ref), tuple(hyp))
    assert r["subs"] <= subs and r["dels"] - r["ins"] == len(ref) - len(hyp)


def test_speechbrain_breaks_ties_towards_substitutions():
    """Why scoring keeps its own alignment: SpeechBrain's cell-by-cell tie-breaking (insertion,
    deletion, substitution) can end on an alignment of minimal cost with more substitutions,
    which would change the sub/del/ins counts the attacks use as features."""
    assert speechbrain_counts(["a", "b"], ["c", "c", "a"]) == (2, 0, 1)
    r = per(["a", "b"], ["c", "c", "a"])
    assert (r["subs"], r["dels"], r["ins"]) == (0, 1, 2)
