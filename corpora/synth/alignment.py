"""TIMIT-style phone and word alignments from eSpeak's phoneme events.

eSpeak reports where each phoneme starts in its output. This module turns those events into
contiguous TIMIT-61 segments at the native rate: pauses become ``pau`` (``h#`` at the ends),
multi-label phonemes (``A@`` -> ``aa r``) share their time equally, and each stop or affricate
release gets its closure from the audio, because eSpeak times the two differently:

* a voiceless stop's event sits at its burst, and its closure is the stretch of silence
  (digital, or the breath noise of some variants: below :data:`SILENT_FRACTION` of the
  utterance's 99th-percentile amplitude) just before it, inside the previous phoneme's span
  -> that silence becomes the closure (at most :data:`MAX_CLOSURE_S`, or
  :data:`MAX_CLOSURE_AFTER_PAUSE_S` out of a pause; the previous phone keeps at least
  :data:`MIN_SEGMENT_S`);
* a voiced stop's event sits at the start of its voice bar -> the closure runs from the event
  to the burst, found as the first frame whose high-pass (first-difference) energy comes within
  :data:`BURST_DB` of the segment's maximum; without a clear burst the span is halved.

Used by :mod:`corpora.synth.corpus` on the clean signal, before any warp or noise.
"""

from __future__ import annotations

import numpy as np

from corpora.synth.espeak import Synthesis, text_to_phonemes
from corpora.synth.espeak_phonemes import (
    CLOSURE_OF_RELEASE,
    espeak_to_timit,
    is_pause,
    strip_stress,
    voice_family,
)
from corpora.synth.grammar import words_of

MAX_CLOSURE_S = 0.1  # s, longest closure carved out of a preceding phone's silent end
MAX_CLOSURE_AFTER_PAUSE_S = 0.05  # s, longest closure carved out of a pause or h#
MIN_SEGMENT_S = 0.01  # s, shortest span a phone keeps when a closure is carved from it
MIN_SILENCE_S = 0.008  # s, shortest silent run that counts as a closure
SILENT_FRACTION = 0.04  # of the 99th percentile of |x|: below it a sample counts as silent
BURST_FRAME_S = 0.002  # s
BURST_DB = 15.0  # dB below the segment's peak high-pass energy

Segment = tuple[int, int, str]  # (start sample, end sample exclusive, label)


class AlignmentError(ValueError):
    """eSpeak's events do not match the text (word count differs, no phonemes, ...)."""


def _silent_run_before(x: np.ndarray, end: int, limit: int, threshold: float) -> int:
    """Length of the run of samples with ``|x| <= threshold`` ending at ``end`` (at most ``limit``)."""
    start = max(0, end - limit)
    loud = np.flatnonzero(np.abs(x[start:end].astype(np.int32)) > threshold)
    return end - start if loud.size == 0 else end - (start + int(loud[-1]) + 1)


def _burst_offset(x: np.ndarray, start: int, end: int, sr: int) -> int | None:
    """Sample where the burst starts inside a voiced stop's span, or ``None`` when unclear."""
    hop = max(1, int(BURST_FRAME_S * sr))
    diff = np.diff(x[start:end].astype(np.float64))  # (n-1,) first difference ~ high-pass
    n_frames = len(diff) // hop
    if n_frames < 4:
        return None
    energy = (diff[: n_frames * hop].reshape(n_frames, hop) ** 2).mean(axis=1)  # (frames,)
    energy_db = 10 * np.log10(energy + 1e-3)
    loud = np.flatnonzero(energy_db >= energy_db.max() - BURST_DB)
    min_frames = int(MIN_SEGMENT_S * sr) // hop
    loud = loud[(loud >= min_frames) & (loud <= n_frames - 1)]
    return None if loud.size == 0 else start + int(loud[0]) * hop


def _phoneme_counts(tokens: list[str], voice: str) -> list[int]:
    """Non-pause phoneme count of each word said on its own (eSpeak's G2P)."""
    return [
        sum(not is_pause(p) for word in text_to_phonemes(token, voice) for p in word)
        for token in tokens
    ]


def _share(n: int, counts: list[int]) -> list[int]:
    """Split ``n`` items over words in proportion to ``counts``, at least one each."""
    if sum(counts) == n:
        return counts
    edges = np.round(np.cumsum([0, *counts]) * n / max(sum(counts), 1)).astype(int)
    shares = np.diff(edges).clip(min=1)
    shares[-1] = n - shares[:-1].sum()
    if shares[-1] < 1:
        raise ValueError(f"cannot share {n} phonemes over {len(counts)} words")
    return shares.tolist()


def _split_merged_words(
    spans: list[tuple[int, str, int | None]], text: str, voice: str
) -> list[tuple[int, str, int | None]]:
    """Give each word its phonemes where eSpeak sent one word event for several words.

    eSpeak sometimes speaks two words as one (``on the``); their phonemes are shared out in
    order by the phoneme counts of each word said alone (eSpeak's G2P). When context changed
    the count (rare), the split is proportional to those counts, so a boundary may be off by
    a phoneme.
    """
    tokens = words_of(text)
    firsts = sorted({w for _, _, w in spans if w is not None})
    ends = firsts[1:] + [len(tokens)]
    out = list(spans)
    for first, end in zip(firsts, ends, strict=True):
        if end - first == 1:
            continue
        members = [i for i, (_, _, w) in enumerate(spans) if w == first]
        if len(members) < end - first:
            raise AlignmentError(
                f"{text!r}: eSpeak spoke words {tokens[first:end]} with only {len(members)} phonemes"
            )
        shares = _share(len(members), _phoneme_counts(tokens[first:end], voice))
        owners = [first + k for k, c in enumerate(shares) for _ in range(c)]
        for i, owner in zip(members, owners, strict=True):
            out[i] = (spans[i][0], spans[i][1], owner)
    return out


def _raw_segments(
    synth: Synthesis, text: str, voice: str
) -> list[tuple[int, int, str, int | None]]:
    """Phoneme spans ``(start, end, eSpeak name, word index or None)`` with zero-length dropped."""
    family = voice_family(voice)
    starts = []  # 1-based character position where each token starts
    pos = 0
    for raw in text.split():
        pos = text.index(raw, pos)
        if raw.strip(".,?!"):
            starts.append(pos + 1 + (len(raw) - len(raw.lstrip(".,?!"))))
        pos += len(raw)
    word_of_position = {p: i for i, p in enumerate(starts)}
    n = len(synth.samples)
    spans: list[tuple[int, str, int | None]] = []
    word: int | None = None
    for kind, sample, value in synth.events:
        if kind == "word":
            text_position = value[0]
            if text_position not in word_of_position:
                raise AlignmentError(
                    f"{text!r}: eSpeak word at character {text_position} is not a word start"
                )
            word = word_of_position[text_position]
        else:
            name = strip_stress(value)
            espeak_to_timit(name, family)  # raises on an unmapped phoneme
            spans.append((min(sample, n), name, None if is_pause(name) else word))
    spans = _split_merged_words(spans, text, voice)
    return _share_zero_length(spans, n)


def _share_zero_length(
    spans: list[tuple[int, str, int | None]], n: int
) -> list[tuple[int, int, str, int | None]]:
    """Spans -> segments; a phoneme eSpeak gave no time (a post-vocalic ``l`` folded into
    the vowel) shares the time of its neighbour (the previous phoneme, or the next one after a
    pause) in equal parts. Zero-length pauses are dropped."""
    groups: list[list[tuple[str, int | None]]] = []  # phonemes sharing one span
    bounds: list[tuple[int, int]] = []
    waiting: list[tuple[str, int | None]] = []  # zero-length phonemes after a pause
    for i, (start, name, w) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else n
        pause = is_pause(name)
        if end > start:
            groups.append([(name, w)] if pause else [*waiting, (name, w)])
            bounds.append((start, end))
            waiting = waiting if pause else []
        elif not pause:
            if groups and not is_pause(groups[-1][0][0]):
                groups[-1].append((name, w))
            else:
                waiting.append((name, w))
    if waiting:
        raise AlignmentError(f"phonemes {[p for p, _ in waiting]} got no time at the end")
    out = []
    for (start, end), members in zip(bounds, groups, strict=True):
        edges = np.linspace(start, end, len(members) + 1).round().astype(int)
        for (name, w), a, b in zip(members, edges[:-1], edges[1:], strict=True):
            if b > a:
                out.append((int(a), int(b), name, w))
    return out


def align(synth: Synthesis, text: str, voice: str) -> tuple[list[Segment], list[Segment]]:
    """TIMIT-61 phone segments and word segments of one synthesized utterance.

    Parameters
    ----------
    synth : the eSpeak output (int16 samples at ``synth.sample_rate`` and its events); it should
        start and end with silence so that ``h#`` has room.
    text : the text that was spoken (words as in :func:`corpora.synth.grammar.words_of`).
    voice : the eSpeak voice that spoke it (selects the phoneme mapping family).

    Returns
    -------
    phones : ``(start, end, label)`` in native samples, contiguous over the whole signal,
        ``h#`` first and last.
    words : ``(start, end, word)`` in native samples, in text order.
    """
    x, sr = synth.samples, synth.sample_rate
    family = voice_family(voice)
    raw = _raw_segments(synth, text, voice)
    if {w for *_, w in raw if w is not None} != set(range(len(words_of(text)))):
        raise AlignmentError(f"{text!r}: some words got no phonemes from eSpeak")
    min_keep, max_closure = int(MIN_SEGMENT_S * sr), int(MAX_CLOSURE_S * sr)
    max_pause_closure = int(MAX_CLOSURE_AFTER_PAUSE_S * sr)
    # eSpeak's closures are digital silence, or breath noise for voices with "breath" set
    threshold = max(1.0, SILENT_FRACTION * float(np.percentile(np.abs(x.astype(np.int32)), 99)))
    # (start, end, label, word) with stops split into closure + release
    segs: list[list] = [[0, raw[0][0], "pau", None]] if raw[0][0] > 0 else []
    for start, end, name, word in raw:
        labels = espeak_to_timit(name, family) or ("pau",)
        bounds = np.linspace(start, end, len(labels) + 1).round().astype(int)
        for label, a, b in zip(labels, bounds[:-1], bounds[1:], strict=True):
            closure = CLOSURE_OF_RELEASE.get(label)
            if closure is None or b - a < 2:
                segs.append([int(a), int(b), label, word])
                continue
            prev = segs[-1] if segs else None
            limit = max_closure if prev is None or prev[2] != "pau" else max_pause_closure
            silence = _silent_run_before(x, int(a), limit, threshold) if prev else 0
            if prev is not None and silence >= int(MIN_SILENCE_S * sr):
                cut = max(int(a) - silence, prev[0] + min_keep)
                if cut < a:
                    prev[1] = cut
                    segs.append([cut, int(a), closure, word])
                segs.append([int(a), int(b), label, word])
                continue
            burst = _burst_offset(x, int(a), int(b), sr)
            split = burst if burst is not None else (int(a) + int(b)) // 2
            segs.append([int(a), split, closure, word])
            segs.append([split, int(b), label, word])
    segs = [s for s in segs if s[1] > s[0]]
    # pauses: merge neighbours, h# at both ends
    merged: list[list] = []
    for s in segs:
        if merged and s[2] == "pau" and merged[-1][2] == "pau":
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    if merged[0][2] != "pau" or merged[-1][2] != "pau":
        raise AlignmentError(f"{text!r}: the audio does not start and end with silence")
    merged[0][2] = merged[-1][2] = "h#"
    phones = [(s[0], s[1], s[2]) for s in merged]
    tokens = words_of(text)
    words = []
    for i, token in enumerate(tokens):
        own = [s for s in merged if s[3] == i]
        words.append((own[0][0], own[-1][1], token))
    return phones, words
