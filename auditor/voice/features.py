"""Membership features from black-box recognizer answers.

One answer of the device (or of a shadow recognizer, queried in-process with the same record
format, see :mod:`auditor.voice.query`) plus the reference phones of what was said give the
per-utterance features of :data:`UTTERANCE_FEATURES`. A user's K audios are summarised by
:func:`user_features` into the statistics of :data:`AGGREGATES` over each of them: the
random forest of :mod:`auditor.voice.attack` works on those per-user vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from corpora.phones import fold_48_to_39
from models.asr.scoring import per
from models.privacy.serving import FULL, parse_output_policy

#: Per-utterance features, in vector order.
UTTERANCE_FEATURES = (
    "per",
    "subs",
    "ins",
    "dels",
    "log_like_per_frame",
    "mean_confidence",
    "min_confidence",
    "frames",
    "frames_per_ref_phone",
)

#: Statistics over a user's K audios, in vector order (numpy, population std / variance).
AGGREGATES = {
    "sum": np.sum,
    "max": np.max,
    "min": np.min,
    "mean": np.mean,
    "median": np.median,
    "std": np.std,
    "var": np.var,
}


#: Features a ``label_only`` answer withholds; set to 0.0 for every user (no information).
SCORE_FEATURES = (
    "log_like_per_frame",
    "mean_confidence",
    "min_confidence",
    "frames",
    "frames_per_ref_phone",
)


class FeatureError(ValueError):
    """An answer or reference that features cannot be computed from; the message says which."""


def utterance_features(answer: Mapping, reference_phones: Sequence[str], utt_id: str = "?") -> dict:
    """Features of one recognizer answer against the reference phones (48 set).

    Parameters
    ----------
    answer : the device's answer (``phones``, ``log_like_per_frame``, ``frames``,
        ``phone_confidences``), as :class:`~device_sim.client.DeviceClient` returns it or as
        :meth:`models.asr.recognizer.Hypothesis.to_dict` gives it.
    reference_phones : what was said, in the 48-phone set (a manifest's ``phones``).
    utt_id : named in error messages.

    Returns
    -------
    dict keyed by :data:`UTTERANCE_FEATURES` (PER and its edit counts on the 39 folding).

    A hardened answer that declares ``"output": "label_only"``
    (:class:`models.privacy.serving.OutputPolicy`) gives the edit features only;
    :data:`SCORE_FEATURES` are then 0.0 (the same for every user, so they carry nothing and the
    attack works from the transcript alone).

    Raises
    ------
    FeatureError
        For an empty reference, an answer declaring an output policy that is not one, or an
        answer that lacks a field its policy keeps.

    Examples
    --------
    >>> f = utterance_features({"phones": ["sil", "aa", "sil"], "log_like_per_frame": -2.0,
    ...     "frames": 30, "phone_confidences": [0.9, 0.5, 0.8]}, ["sil", "aa", "b", "sil"])
    >>> f["dels"], f["min_confidence"]
    (1, 0.5)
    """
    if not reference_phones:
        raise FeatureError(f"{utt_id}: no reference phones (missing reference text)")
    try:
        label_only = not parse_output_policy(answer.get("output", FULL)).reveals_scores
    except ValueError as e:
        raise FeatureError(f"{utt_id}: {e}") from None
    needed = ("phones",) if label_only else ("phones", "log_like_per_frame", "frames")
    missing = [k for k in needed if k not in answer]
    if missing:
        raise FeatureError(f"{utt_id}: answer lacks {', '.join(missing)}")
    ref39 = fold_48_to_39(reference_phones)
    hyp39 = fold_48_to_39(answer["phones"])
    edits = per(ref39, hyp39)
    if label_only:
        return {
            "per": float(edits["per"]),
            "subs": int(edits["subs"]),
            "ins": int(edits["ins"]),
            "dels": int(edits["dels"]),
        } | dict.fromkeys(SCORE_FEATURES, 0.0)
    confidences = np.asarray(answer.get("phone_confidences") or [np.nan], dtype=np.float64)
    frames = float(answer["frames"])
    return {
        "per": float(edits["per"]),
        "subs": int(edits["subs"]),
        "ins": int(edits["ins"]),
        "dels": int(edits["dels"]),
        "log_like_per_frame": float(answer["log_like_per_frame"]),
        "mean_confidence": float(np.mean(confidences)),
        "min_confidence": float(np.min(confidences)),
        "frames": frames,
        "frames_per_ref_phone": frames / len(ref39),
    }


def user_feature_names() -> list[str]:
    """Names of the per-user vector entries: ``<aggregate>_<feature>``."""
    return [f"{agg}_{name}" for name in UTTERANCE_FEATURES for agg in AGGREGATES]


def user_features(rows: Sequence[Mapping]) -> np.ndarray:
    """Aggregate a user's per-utterance feature dicts into one vector.

    Parameters
    ----------
    rows : the user's K per-utterance feature dicts (K >= 1).

    Returns
    -------
    ndarray of shape (len(UTTERANCE_FEATURES) * len(AGGREGATES),), ordered as
    :func:`user_feature_names`.
    """
    if not rows:
        raise FeatureError("a user needs at least one answered audio")
    values = np.array(
        [[float(r[name]) for name in UTTERANCE_FEATURES] for r in rows]
    )  # (K, n_features)
    out = [fn(values[:, j]) for j in range(values.shape[1]) for fn in AGGREGATES.values()]
    return np.asarray(out, dtype=np.float64)  # (n_features * n_aggregates,)
