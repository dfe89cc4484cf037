"""Phone error rate: edit-distance alignment with substitution, deletion and insertion counts.

Scoring is on the 39-phone folding (:func:`corpora.phones.fold_48_to_39`). PER is
``(subs + dels + ins) / ref_len``; corpus and per-speaker figures sum the counts first (not an
average of per-utterance rates), as sclite does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

COUNT_KEYS = ("errors", "subs", "dels", "ins", "ref_len")


def per(ref39: Sequence[str], hyp39: Sequence[str]) -> dict:
    """Align ``hyp39`` to ``ref39`` with unit costs and count the edits.

    Among alignments of minimal cost, the one with the fewest substitutions is chosen
    (deterministic tie-breaking: substitution, then deletion, then insertion on the backtrace).
    This is why the alignment is not SpeechBrain's (``speechbrain.utils.edit_distance``): its
    cell-by-cell tie-breaking (insertion, deletion, substitution) finds the same edit distance
    but may end on more substitutions (``ab`` -> ``cca``: 2 subs + 1 ins where this gives
    1 del + 2 ins), and the sub/del/ins counts are attack features
    (``tests/models/asr/test_scoring.py`` compares both).

    Returns
    -------
    ``{"errors", "subs", "dels", "ins", "ref_len", "per"}``; ``per`` is ``errors / ref_len``
    (``0.0`` for an empty reference and empty hypothesis, ``inf`` if only the reference is empty).

    Examples
    --------
    >>> per(["a", "b", "c"], ["a", "x", "c", "d"])["per"]
    0.6666666666666666
    """
    n, m = len(ref39), len(hyp39)
    # cost[i][j] = (edits, subs) of aligning ref[:i] with hyp[:j]
    cost = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = (i, 0)
    for j in range(1, m + 1):
        cost[0][j] = (j, 0)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            e, s = cost[i - 1][j - 1]
            diag = (e, s) if ref39[i - 1] == hyp39[j - 1] else (e + 1, s + 1)
            up = (cost[i - 1][j][0] + 1, cost[i - 1][j][1])
            left = (cost[i][j - 1][0] + 1, cost[i][j - 1][1])
            cost[i][j] = min(diag, up, left)
    subs = dels = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        here = cost[i][j]
        if i > 0 and j > 0:
            same = ref39[i - 1] == hyp39[j - 1]
            e, s = cost[i - 1][j - 1]
            if (e, s) == here and same:
                i, j = i - 1, j - 1
                continue
            if (e + 1, s + 1) == here and not same:
                subs += 1
                i, j = i - 1, j - 1
                continue
        if i > 0 and (cost[i - 1][j][0] + 1, cost[i - 1][j][1]) == here:
            dels += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return with_rate(
        {"errors": subs + dels + ins, "subs": subs, "dels": dels, "ins": ins, "ref_len": n}
    )


def with_rate(counts: dict) -> dict:
    """Add ``per`` = errors / ref_len to a dict of edit counts."""
    if counts["ref_len"]:
        rate = counts["errors"] / counts["ref_len"]
    else:
        rate = 0.0 if counts["errors"] == 0 else float("inf")
    return {**{k: counts[k] for k in COUNT_KEYS}, "per": rate}


def sum_counts(results: Iterable[dict]) -> dict:
    """Pool per-utterance results (summed counts, then the rate)."""
    total = dict.fromkeys(COUNT_KEYS, 0)
    for r in results:
        for k in COUNT_KEYS:
            total[k] += r[k]
    return with_rate(total)


def per_by_speaker(results: Iterable[tuple[str, dict]]) -> dict[str, dict]:
    """``[(speaker, per_result), ...]`` -> ``{speaker: pooled result}`` (sorted by speaker)."""
    groups: dict[str, list[dict]] = {}
    for speaker, r in results:
        groups.setdefault(speaker, []).append(r)
    return {s: sum_counts(groups[s]) for s in sorted(groups)}
