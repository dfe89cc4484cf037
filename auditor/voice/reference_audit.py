"""The reference-calibrated attack inside the audit: reference queries and per-setting scores.

:func:`reference_answers` has every reference (shadow) transcribe, in-process, the audios the
device is asked about and the audios the other references' audits use for the pool speakers it
did not train on, so that each of those audios has OUT answers to be calibrated against.
:class:`ReferenceScores` then fits :class:`auditor.voice.reference.ReferenceCalibratedTest` per
setting (condition, K audios) by leaving one reference out, and scores the audited users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from auditor.voice.features import FeatureError, utterance_features
from auditor.voice.query import query_recognizer
from auditor.voice.reference import (
    DEFAULT_FPR,
    ReferenceCalibratedTest,
    ReferenceCalibration,
    ReferenceError,
)
from auditor.voice.shadow import ShadowModel
from corpora.manifest import Utterance
from models.asr.recognizer import load_recognizer

#: ``{condition: {speaker: [Utterance, ...]}}`` audios chosen for one model's audit.
Chosen = Mapping[str, Mapping[str, Sequence[Utterance]]]


def reference_answers(
    shadows: Sequence[ShadowModel],
    target_chosen: Chosen,
    shadow_chosen: Mapping[str, Chosen],
    *,
    record,
    harden: Callable[[dict], dict],
    failures: list,
    progress: bool,
) -> ReferenceCalibration:
    """Every reference's features on what it must calibrate (answers through ``harden``)."""
    answers: dict[str, dict[str, dict]] = {}
    for s in shadows:
        ask = {u.utt_id: u for users in target_chosen.values() for us in users.values() for u in us}
        for other, chosen in shadow_chosen.items():
            if other == s.name:
                continue
            for users in chosen.values():
                for spk in set(users) & set(s.speakers_out):
                    ask.update((u.utt_id, u) for u in users[spk])
        utts = sorted(ask.values(), key=lambda u: u.utt_id)
        res = query_recognizer(
            load_recognizer(s.path),
            utts,
            record,
            model=f"{s.name}@{s.path.name}",
            progress=progress,
        )
        feats = {}
        for u in utts:
            if (answer := res.answers.get(u.utt_id)) is None:
                failures.append({"model": s.name, "utt_id": u.utt_id, "reason": "no answer"})
                continue
            try:
                feats[u.utt_id] = utterance_features(harden(answer), u.phones, u.utt_id)
            except FeatureError as e:
                failures.append({"model": s.name, "utt_id": u.utt_id, "reason": str(e)})
        answers[s.name] = feats
    return ReferenceCalibration(answers, {s.name: set(s.speakers_in) for s in shadows})


class ReferenceScores:
    """Per setting: the test chosen on the references and the audited users' scores.

    ``shadow_feats`` are ``(shadow, {condition: {speaker: [(utt, answer, features)]}})`` of
    each reference's own audit (its IN and OUT pool speakers).
    """

    def __init__(
        self,
        calibration: ReferenceCalibration,
        shadow_feats: Sequence[tuple[ShadowModel, dict]],
        fpr: float = DEFAULT_FPR,
    ):
        self.calibration, self.shadow_feats, self.fpr = calibration, shadow_feats, fpr

    def _reference_users(self, cond: str, k: int):
        """``(rows, skip, label)`` of every pool user of every reference playing the target."""
        for shadow, feats in self.shadow_feats:
            for spk, rows in feats[cond].items():
                if len(rows) >= k:
                    rows_k = [(u.utt_id, spk, f) for u, _, f in rows[:k]]
                    yield rows_k, {shadow.name}, int(spk in set(shadow.speakers_in))

    def fit_sd(self, cond: str, k: int, target_rows: Mapping[str, list]) -> None:
        """Choose the sd mode over every audio the setting calibrates."""
        audios = [
            (u, spk, skip) for rows, skip, _ in self._reference_users(cond, k) for u, spk, _ in rows
        ]
        audios += [(u.utt_id, spk, ()) for spk, rows in target_rows.items() for u, _, _ in rows[:k]]
        self.calibration.fit_sd(audios)

    def fit_score(self, cond: str, k: int, target_rows: Mapping[str, list], kept: Sequence[str]):
        """``(test, statistics of each kept audited user)``; :class:`ReferenceError` if the
        setting cannot be calibrated."""
        self.fit_sd(cond, k, {spk: target_rows[spk] for spk in kept})
        cal = self.calibration
        users = [
            (cal.user_statistics(rows, skip), y) for rows, skip, y in self._reference_users(cond, k)
        ]
        if not users:
            raise ReferenceError(f"{cond}, {k} audios: no reference user has {k} audios")
        test = ReferenceCalibratedTest(fpr=self.fpr).fit(
            [s for s, _ in users], [y for _, y in users]
        )
        stats = [
            cal.user_statistics([(u.utt_id, spk, f) for u, _, f in target_rows[spk][:k]])
            for spk in kept
        ]
        return test, stats
