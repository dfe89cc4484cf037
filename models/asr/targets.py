"""Frame-level HMM-state training targets: from phone alignments or by flat start.

A phone segment of ``n`` frames gives its ``K`` states ``floor(i * K / n)`` for frame ``i``
(states split evenly inside the phone). Segments come either from a manifest alignment
(samples -> frames by each frame's centre) or, in transcript-only mode, from a flat start:
leading and trailing low-energy frames go to the silences at both ends and the rest is cut
into equal parts, one per inner phone. Both are then refined by forced
re-alignment with the network (:func:`models.asr.viterbi.forced_align`, driven by
:mod:`models.asr.schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.asr.hmm import phone_ids
from models.asr.viterbi import AlignmentError


def split_states(
    segment_of_frame: np.ndarray, segment_phones: np.ndarray, states_per_phone: int
) -> np.ndarray:
    """State id per frame from each frame's segment index.

    Parameters
    ----------
    segment_of_frame : (frames,) non-decreasing segment index of each frame.
    segment_phones : (segments,) phone id of each segment.
    states_per_phone : K.

    Returns
    -------
    (frames,) int64 state ids ``phone * K + k``.
    """
    t = segment_of_frame.size
    starts = np.flatnonzero(np.r_[True, segment_of_frame[1:] != segment_of_frame[:-1]])  # (runs,)
    lengths = np.diff(np.r_[starts, t])  # (runs,)
    run_of_frame = np.repeat(np.arange(starts.size), lengths)  # (frames,)
    pos = np.arange(t) - starts[run_of_frame]  # (frames,) frame index inside its run
    k = (pos * states_per_phone) // lengths[run_of_frame]
    return segment_phones[segment_of_frame] * states_per_phone + k


def alignment_states(
    alignment: Sequence[tuple[int, int, str]],
    n_frames: int,
    feat_cfg: dict,
    states_per_phone: int,
) -> np.ndarray:
    """States per frame from a ``[(begin_sample, end_sample, phone48), ...]`` alignment.

    Each frame belongs to the phone whose span holds the frame's centre sample (frames in a
    gap go to the phone before it; frames past the end to the last phone).
    """
    sr = feat_cfg["sample_rate"]
    shift = int(sr * feat_cfg["frame_shift_ms"] / 1000)
    length = int(sr * feat_cfg["frame_length_ms"] / 1000)
    begins = np.array([a[0] for a in alignment], dtype=np.int64)
    centers = np.arange(n_frames) * shift + length // 2  # (frames,) samples
    seg = np.clip(np.searchsorted(begins, centers, side="right") - 1, 0, len(alignment) - 1)
    return split_states(seg, phone_ids([a[2] for a in alignment]), states_per_phone)


def speech_span(log_energy: np.ndarray, floor_fraction: float = 0.3) -> tuple[int, int]:
    """First and last frame (inclusive) whose log energy clears a per-utterance threshold.

    The threshold is ``floor_fraction`` of the way from the 10th to the 90th percentile of
    the utterance's frame log energies (robust to clicks and to a constant noise floor).
    """
    lo, hi = np.percentile(log_energy, [10, 90])
    loud = np.flatnonzero(log_energy > lo + floor_fraction * (hi - lo))
    if loud.size == 0:
        return 0, log_energy.size - 1
    return int(loud[0]), int(loud[-1])


def flat_start_states(
    phones: np.ndarray,
    n_frames: int,
    states_per_phone: int,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """States per frame from cutting the utterance into equal parts, one per phone id.

    With ``span`` (first, last speech frame, e.g. from :func:`speech_span`) and a phone
    sequence that starts and ends with the same silence phone, the frames before and after
    the span go to those silences and only the span is cut evenly among the inner phones
    (if every part still gets ``states_per_phone`` frames; otherwise the plain cut is used).
    """
    n, k = len(phones), states_per_phone
    if n_frames < n * k:
        raise AlignmentError(f"{n_frames} frames cannot hold {n} phones x {k} states")
    seg = (np.arange(n_frames) * n) // n_frames  # (frames,) equal parts
    if span is not None and n >= 3 and phones[0] == phones[-1]:
        first, last = max(span[0], k), min(span[1], n_frames - 1 - k)
        inner = last - first + 1
        if inner >= (n - 2) * k:
            seg = np.empty(n_frames, dtype=np.int64)
            seg[:first] = 0
            seg[first : last + 1] = 1 + (np.arange(inner) * (n - 2)) // inner
            seg[last + 1 :] = n - 1
    return split_states(seg, np.asarray(phones, dtype=np.int64), k)


def states_to_phone_segments(
    states: np.ndarray, states_per_phone: int
) -> list[tuple[int, int, int]]:
    """Collapse a state path into ``(phone_id, start_frame, end_frame)`` (end exclusive).

    A new phone starts wherever the path enters a phone's first state from another state.
    """
    k = states % states_per_phone
    new = np.r_[True, (k[1:] == 0) & (states[1:] != states[:-1])]  # (frames,)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], states.size]
    return [
        (int(states[s] // states_per_phone), int(s), int(e))
        for s, e in zip(starts, ends, strict=True)
    ]
