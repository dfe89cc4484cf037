"""Frame-level HMM-state training targets: from phone alignments or by flat start.

A phone segment of ``n`` frames gives its ``K`` states ``floor(i * K / n)`` for frame ``i``
(states split evenly inside the phone). Segments come either from a manifest alignment
(samples -> frames by each frame's centre) or, in transcript-only mode, from cutting the
utterance into equal parts, one per phone (flat start). Both are then refined by forced
re-alignment with the network (:func:`models.asr.viterbi.forced_align`, driven by
:mod:`models.asr.train`).
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


def flat_start_states(phones: np.ndarray, n_frames: int, states_per_phone: int) -> np.ndarray:
    """States per frame from cutting ``n_frames`` into equal parts, one per phone id."""
    n = len(phones)
    if n_frames < n * states_per_phone:
        raise AlignmentError(
            f"{n_frames} frames cannot hold {n} phones x {states_per_phone} states"
        )
    seg = (np.arange(n_frames) * n) // n_frames  # (frames,) equal parts
    return split_states(seg, np.asarray(phones, dtype=np.int64), states_per_phone)


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
