"""Evaluation of a recognizer on manifest utterances: PER overall, per speaker, per utterance.

Used by ``device-sim eval`` and the benchmark. Audio that the recognizer refuses and
references with phones outside the 48 set are skipped and listed with their reason. In
``speaker`` CMVN mode the statistics are pooled over each speaker's evaluated utterances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from corpora.audio import read_audio
from corpora.manifest import Utterance
from corpora.phones import UnknownPhoneError, fold_48_to_39
from models.asr.features import cmvn_stats
from models.asr.recognizer import Recognizer
from models.asr.scoring import per, per_by_speaker, sum_counts


def evaluate_recognizer(
    recognizer: Recognizer,
    utterances: Sequence[Utterance],
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Decode ``utterances`` and score them on the 39-phone folding.

    Parameters
    ----------
    recognizer : the model to evaluate.
    utterances : manifest records (reference phones in the 48 set).
    batch_size : utterances per network call / batched Viterbi.
    progress : show a progress bar.

    Returns
    -------
    ``{"overall": {...per, subs, dels, ins, ref_len, errors, mean_log_like_per_frame},
    "per_speaker": {speaker: {...}}, "utterances": [{utt_id, speaker, per..., log_like_per_frame,
    frames, hyp39}], "skipped": [{utt_id, reason}]}``
    """
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    rows: list[dict] = []
    skipped: list[dict] = []
    bar = tqdm(total=len(utterances), desc="decoding", disable=not progress, leave=False)
    for speaker in sorted(by_speaker):
        feats, kept = [], []
        for u in by_speaker[speaker]:
            try:
                ref39 = fold_48_to_39(u.phones)
                samples, sr = read_audio(u.path)
                feats.append(recognizer.raw_features(samples, sr))  # (frames, mel)
                kept.append((u, ref39))
            except (UnknownPhoneError, OSError, ValueError) as e:
                skipped.append({"utt_id": u.utt_id, "reason": f"{u.path}: {e}"})
                bar.update()
        stats = cmvn_stats(feats) if feats else None
        for b in range(0, len(kept), batch_size):
            chunk = feats[b : b + batch_size]
            normalised = [recognizer.normalise(f, stats) for f in chunk]
            hyps = recognizer.decode_log_posteriors(recognizer.log_posteriors(normalised))
            for (u, ref39), h in zip(kept[b : b + batch_size], hyps, strict=True):
                rows.append(
                    {"utt_id": u.utt_id, "speaker": u.speaker}
                    | per(ref39, h.phones39)
                    | {
                        "log_like_per_frame": h.log_like_per_frame,
                        "frames": h.frames,
                        "hyp39": h.phones39,
                    }
                )
            bar.update(len(chunk))
    bar.close()
    per_speaker = per_by_speaker((r["speaker"], r) for r in rows)
    for spk, d in per_speaker.items():
        d["mean_log_like_per_frame"] = float(
            np.mean([r["log_like_per_frame"] for r in rows if r["speaker"] == spk])
        )
    overall = sum_counts(rows)
    overall["mean_log_like_per_frame"] = (
        float(np.mean([r["log_like_per_frame"] for r in rows])) if rows else float("nan")
    )
    overall["utterances"] = len(rows)
    return {"overall": overall, "per_speaker": per_speaker, "utterances": rows, "skipped": skipped}
