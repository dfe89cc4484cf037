"""PER arithmetic on hand-made examples."""

from __future__ import annotations

import pytest

from models.asr.scoring import per, per_by_speaker, sum_counts


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
