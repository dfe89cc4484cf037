"""The reference-calibrated attack inside the audit: reference queries and per-setting scores.

:func:`reference_answers` has every reference (shadow) transcribe, in-process, the audios the
device is asked about and the audios the other references' audits use for the pool speakers it
did not train on, so that each of those audios has OUT answers to be calibrated against.
:class:`ReferenceScores` then fits :class:`auditor.voice.reference.ReferenceCalibratedTest` per
setting (condition, K audios) by leaving one reference out, and scores the audited users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from auditor.voice.features import FeatureError, utterance_features
from auditor.voice.query import query_recognizer
from auditor.voice.reference import (
    DEFAULT_FPR,
    STATISTICS,
    ReferenceCalibratedTest,
    ReferenceCalibration,
    ReferenceError,
    signal_norm,
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
    population: Mapping[str, Sequence[Utterance]],
    *,
    record,
    harden: Callable[[dict], dict],
    failures: list,
    progress: bool,
) -> ReferenceCalibration:
    """Every reference's features on what it must calibrate (answers through ``harden``):
    the audited audios, the population audios (pool speakers the device was also asked
    about) of the speakers it did not train on, and the other references' audit audios of
    those speakers."""
    audited = {u.utt_id: u for users in target_chosen.values() for us in users.values() for u in us}
    answers: dict[str, dict[str, dict]] = {}
    for s in shadows:
        ask = dict(audited)
        for spk in set(population) & set(s.speakers_out):
            ask.update((u.utt_id, u) for u in population[spk])
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
    return ReferenceCalibration(
        answers, {s.name: set(s.speakers_in) for s in shadows}, common=sorted(audited)
    )


class ReferenceScores:
    """Per setting: the test chosen on the references and the audited users' scores.

    ``shadow_feats`` are ``(shadow, {condition: {speaker: [(utt, answer, features)]}})`` of
    each reference's own audit (its IN and OUT pool speakers); ``population`` the device's
    ``{speaker: [(utt, answer, features)]}`` on pool speakers (known non-members of it).

    Each model's statistics are standardised by its own known non-members (a reference's OUT
    pool speakers, the device's population speakers): every recognizer has its own offset and
    scale on these signals (e.g. its tuned acoustic scale multiplies log-likelihoods), which a
    threshold must not carry from the references to the device.
    """

    def __init__(
        self,
        calibration: ReferenceCalibration,
        shadow_feats: Sequence[tuple[ShadowModel, dict]],
        population: Mapping[str, list],
        fpr: float = DEFAULT_FPR,
    ):
        self.calibration, self.shadow_feats, self.fpr = calibration, shadow_feats, fpr
        self.population = population

    def _reference_users(self, cond: str, k: int):
        """``(shadow, [(rows, label)])`` of the pool users of each reference as the target."""
        for shadow, feats in self.shadow_feats:
            users = [
                ([(u.utt_id, spk, f) for u, _, f in rows[:k]], int(spk in set(shadow.speakers_in)))
                for spk, rows in feats[cond].items()
                if len(rows) >= k
            ]
            yield shadow, users

    def fit_sd(self, cond: str, k: int, target_rows: Mapping[str, list]) -> None:
        """Choose the sd mode over every audio the setting calibrates."""
        audios = [
            (u, spk, {shadow.name})
            for shadow, users in self._reference_users(cond, k)
            for rows, _ in users
            for u, spk, _ in rows
        ]
        audios += [(u.utt_id, spk, ()) for spk, rows in target_rows.items() for u, _, _ in rows[:k]]
        self.calibration.fit_sd(audios)

    def fit_score(self, cond: str, k: int, target_rows: Mapping[str, list], kept: Sequence[str]):
        """``(test, standardised statistics of each kept audited user)``;
        :class:`ReferenceError` if the setting cannot be calibrated."""
        self.fit_sd(cond, k, {spk: target_rows[spk] for spk in kept} | self.population)
        stats, labels, groups = [], [], []
        for shadow, users in self._reference_users(cond, k):
            norm = self.calibration.norm_[shadow.name]
            raw = [self.calibration.user_statistics(rows, {shadow.name}, norm) for rows, _ in users]
            out = [st for st, (_, y) in zip(raw, users, strict=True) if y == 0]
            stats += standardised(raw, out, f"{shadow.name} as the target")
            labels += [y for _, y in users]
            groups += [shadow.name] * len(users)
        if not stats:
            raise ReferenceError(f"{cond}, {k} audios: no reference user has {k} audios")
        test = ReferenceCalibratedTest(fpr=self.fpr).fit(stats, labels, groups)
        norm = signal_norm([f for rows in self.population.values() for _, _, f in rows])
        target = [self._target_statistics(target_rows[spk][:k], spk, norm) for spk in kept]
        population = [
            self._target_statistics(rows[:k], spk, norm)
            for spk, rows in self.population.items()
            if len(rows) >= k
        ]
        return test, standardised(target, population, "the device's population speakers")

    def _target_statistics(self, rows: list, speaker: str, norm) -> dict[str, float]:
        rows = [(u.utt_id, speaker, f) for u, _, f in rows]
        return self.calibration.user_statistics(rows, norm=norm)


def standardised(
    stats: Sequence[Mapping[str, float]], nonmembers: Sequence[Mapping[str, float]], what: str
) -> list[dict[str, float]]:
    """``stats`` less the mean and over the sd of the known non-members', per statistic."""
    if len(nonmembers) < 2:
        raise ReferenceError(f"{what}: {len(nonmembers)} known non-members; 2 are needed")
    out = []
    table = {s: np.array([st[s] for st in nonmembers]) for s in STATISTICS}
    centre = {s: (v.mean(), max(float(v.std(ddof=1)), 1e-6)) for s, v in table.items()}
    for st in stats:
        out.append({s: (st[s] - centre[s][0]) / centre[s][1] for s in STATISTICS})
    return out
