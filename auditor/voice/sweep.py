"""The attacks fitted on shadow users and scored on the audited users, setting by setting.

:class:`AuditSweep` is the evaluation half of :func:`auditor.voice.audit.audit_users`: for a
condition (``seen`` / ``unseen``) and a number of audios per user it builds per-user feature
vectors (:func:`user_matrix`), fits the random forest and the calibrated test on the shadows'
IN and OUT users, scores the audited users, and records metrics for every user count of the
sweep, each user's verdict and the calibration document of the main setting.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from auditor.metrics import fpr_key, membership_metrics
from auditor.voice.attack import CalibratedUserTest, make_forest_attack
from auditor.voice.features import user_feature_names, user_features
from auditor.voice.reference import ReferenceError
from auditor.voice.reference_audit import ReferenceScores
from auditor.voice.shadow import ShadowModel

#: Attack names in ``metrics.json`` (the last only with enough references).
ATTACKS = ("random_forest", "calibrated_test", "reference_calibrated")


class NotEnoughShadowUsers(ValueError):
    """The shadows lack IN or OUT users with enough answered audios for a setting."""


def user_matrix(feats: dict[str, list], speakers: Sequence[str], k: int):
    """Per-user vectors from the first ``k`` answered audios; users with fewer are skipped."""
    X, kept, short = [], [], []
    for s in speakers:
        rows = feats.get(s, [])
        if len(rows) < k:
            short.append((s, len(rows)))
            continue
        X.append(user_features([f for _, _, f in rows[:k]]))
        kept.append(s)
    return np.array(X), kept, short  # (n_users, n_user_features)


def shadow_training_set(shadow_feats: list[tuple[ShadowModel, dict]], cond: str, k: int):
    X, y = [], []
    for shadow, feats in shadow_feats:
        for label, speakers in ((1, shadow.speakers_in), (0, shadow.speakers_out)):
            m, _, _ = user_matrix(feats[cond], speakers, k)
            if len(m):
                X.append(m)
                y += [label] * len(m)
    if not X or len(set(y)) < 2:
        raise NotEnoughShadowUsers(f"{cond}, {k} audios: shadow users lack IN or OUT examples")
    return np.vstack(X), np.array(y)


def balanced_subset(members: list[str], nonmembers: list[str], n: int, seed: int) -> list[str]:
    """``n - n // 2`` members and ``n // 2`` non-members, drawn with the seed."""
    rng = np.random.default_rng(seed)

    def pick(xs: list[str], count: int) -> list[str]:
        return [xs[i] for i in sorted(rng.permutation(len(xs))[:count])]

    return pick(sorted(members), n - n // 2) + pick(sorted(nonmembers), n // 2)


#: Score at or above which each attack says "member".
THRESHOLDS = {"random_forest": 0.5, "calibrated_test": 0.0}


class AuditSweep:
    """The attacks fitted on shadow users and scored on the audited ones, per setting.

    A setting is a condition and a number of audios per user; each run fills ``attacks`` (the
    main setting's metrics per ``condition/attack``), ``rows`` (every setting and user count),
    ``sweep_skipped``, ``skipped_users`` and, for the main setting, ``users`` (the
    ``users.json`` entries) and ``calibration`` (``calibration.json``).
    """

    def __init__(
        self,
        members: list[str],
        nonmembers: list[str],
        *,
        audios_per_user: int,
        users_sweep: Sequence[int],
        n_estimators: int,
        n_bootstrap: int,
        seed: int,
        reference: ReferenceScores | None = None,
    ):
        self.members, self.nonmembers = members, nonmembers
        self.reference = reference
        self.audios_per_user, self.users_sweep = audios_per_user, users_sweep
        self.n_estimators, self.n_bootstrap, self.seed = n_estimators, n_bootstrap, seed
        self.names = user_feature_names()
        self.attacks: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.sweep_skipped: list[dict] = []
        self.skipped_users: list[dict] = []
        self.users: dict[str, dict] = {
            s: {"speaker": s, "member": s in set(members), "conditions": {}}
            for s in sorted(set(members) | set(nonmembers))
        }
        self.calibration: dict[str, dict] = {}
        self.reference_choice: dict[str, dict] = {}

    def _reference(self, cond: str, k: int, target_feats: dict[str, list], kept: list[str]):
        """``(test, scores)`` of the reference-calibrated attack, or ``None`` (noted why)."""
        if self.reference is None:
            return None
        try:
            test, stats = self.reference.fit_score(cond, k, target_feats, kept)
        except ReferenceError as e:
            self.sweep_skipped.append(
                {"condition": cond, "audios_per_user": k, "attack": "reference_calibrated"}
                | {"reason": str(e)}
            )
            return None
        return test, test.score(stats)

    def run(self, cond: str, k: int, shadow_feats: list, target_feats: dict[str, list]) -> None:
        """Fit, score and record the setting ``cond`` with ``k`` audios (skipped: noted why)."""
        try:
            X_sh, y_sh = shadow_training_set(shadow_feats, cond, k)
        except NotEnoughShadowUsers as e:
            self.sweep_skipped.append({"condition": cond, "audios_per_user": k, "reason": str(e)})
            return
        X, kept, short = user_matrix(target_feats, [*self.members, *self.nonmembers], k)
        if k == self.audios_per_user:
            self.skipped_users += [
                {"condition": cond, "speaker": s, "reason": f"{n} answered audios, {k} needed"}
                for s, n in short
            ]
        kept_m = [s for s in kept if s in set(self.members)]
        kept_n = [s for s in kept if s not in set(self.members)]
        if not kept_m or not kept_n:
            self.sweep_skipped.append(
                {
                    "condition": cond,
                    "audios_per_user": k,
                    "reason": f"{len(kept_m)} members / {len(kept_n)} non-members have {k} audios",
                }
            )
            return
        forest = make_forest_attack(self.n_estimators, random_state=self.seed).fit(X_sh, y_sh)
        test = CalibratedUserTest(feature_names=self.names).fit(X_sh, y_sh)
        scores = {
            "random_forest": forest.predict_proba(X)[:, 1],
            "calibrated_test": test.log_likelihood_ratio(X),
        }  # each (n_kept,)
        thresholds = dict(THRESHOLDS)
        ref_test = self._reference(cond, k, target_feats, kept)
        if ref_test is not None:
            ref_test, scores["reference_calibrated"] = ref_test
            thresholds["reference_calibrated"] = ref_test.threshold_
        self._sweep_users(cond, k, kept, kept_m, kept_n, scores, thresholds)
        if k != self.audios_per_user:
            return
        if ref_test is not None:
            member = np.array([s in set(self.members) for s in kept])
            said = scores["reference_calibrated"] >= ref_test.threshold_
            self.reference_choice[cond] = ref_test.describe() | {
                "sd": self.reference.calibration.sd_note_,
                "realised_on_audited_users": {  # evaluation only: uses their labels
                    "fpr": float(said[~member].mean()),
                    "tpr": float(said[member].mean()),
                },
            }
        self.calibration[cond] = calibration_doc(test, X_sh, y_sh)
        self._record_verdicts(cond, k, kept, scores, test, X, target_feats)
        if ref_test is not None:
            self._record_reference_verdicts(cond, kept, scores, ref_test)

    def _sweep_users(self, cond, k, kept, kept_m, kept_n, scores, thresholds) -> None:
        """The attacks' metrics on every user count of the sweep that the kept users allow."""
        index = {s: i for i, s in enumerate(kept)}
        for n_users in sorted(set(self.users_sweep) | {len(kept)}):
            if n_users != len(kept) and (
                n_users - n_users // 2 > len(kept_m) or n_users // 2 > len(kept_n)
            ):
                self.sweep_skipped.append(
                    {
                        "condition": cond,
                        "audios_per_user": k,
                        "users": n_users,
                        "reason": f"only {len(kept_m)} "
                        f"members / {len(kept_n)} non-members available",
                    }
                )
                continue
            subset = (
                kept
                if n_users == len(kept)
                else balanced_subset(kept_m, kept_n, n_users, self.seed)
            )
            main = n_users == len(kept) and k == self.audios_per_user
            idx = [index[s] for s in subset]
            self._score_users(cond, k, subset, idx, scores, thresholds, main)

    def _score_users(self, cond, k, subset, idx, scores, thresholds, main: bool) -> None:
        """Each attack's membership metrics on the users ``subset`` (rows ``idx`` of ``scores``)."""
        y = np.array([1 if s in set(self.members) else 0 for s in subset])
        for attack in scores:
            # 1%, 0.1% and 1/N (the lowest FPR that N non-members can measure)
            fprs = (0.01, 0.001, 1.0 / int((y == 0).sum()))
            m = membership_metrics(
                y,
                scores[attack][idx],
                threshold=thresholds[attack],
                fprs=fprs,
                n_bootstrap=self.n_bootstrap,
                seed=self.seed,
            )
            m["lowest_fpr"] = fpr_key(fprs[-1])
            if main:
                self.attacks[f"{cond}/{attack}"] = m
            self.rows.append(
                {"condition": cond, "attack": attack, "users": len(subset), "audios_per_user": k}
                | {key: v for key, v in m.items() if key != "roc"}
            )

    def _record_verdicts(self, cond, k, kept, scores, test, X, target_feats) -> None:
        """Each kept user's verdict, scores and first ``k`` audios under ``cond`` (``users``)."""
        p_vals, own = test.p_value(X), test.score_of(X)  # each (n_kept,)
        for i, s in enumerate(kept):
            self.users[s]["conditions"][cond] = {
                "verdict": "member" if scores["random_forest"][i] >= 0.5 else "non-member",
                "forest_score": float(scores["random_forest"][i]),
                "log_likelihood_ratio": float(scores["calibrated_test"][i]),
                "calibrated_score": float(own[i]),
                "p_value": float(p_vals[i]),
                "audios": [
                    {"utt_id": u.utt_id, "text": u.text, "phones": list(a.get("phones", []))} | f
                    for u, a, f in target_feats[s][:k]
                ],
            }

    def _record_reference_verdicts(self, cond, kept, scores, ref_test) -> None:
        """Each kept user's reference-calibrated score, p-value and verdict under ``cond``."""
        ref = scores["reference_calibrated"]  # (n_kept,)
        p_vals = ref_test.p_value(ref)
        for i, s in enumerate(kept):
            self.users[s]["conditions"][cond] |= {
                "reference_score": float(ref[i]),
                "reference_p_value": float(p_vals[i]),
                "reference_verdict": "member" if ref[i] >= ref_test.threshold_ else "non-member",
            }


def calibration_doc(test: CalibratedUserTest, X_sh: np.ndarray, y_sh: np.ndarray) -> dict:
    """``calibration.json``'s entry of a condition: the test's fitted IN / OUT score laws."""
    s_sh = test.score_of(X_sh)  # (n_shadow_users,)
    return {
        "score_name": test.score_name_,
        "direction": test.direction_,
        "in_scores": s_sh[y_sh == 1].tolist(),
        "out_scores": s_sh[y_sh == 0].tolist(),
        "in_mean": test.in_mean_,
        "in_std": test.in_std_,
        "out_mean": test.out_mean_,
        "out_std": test.out_std_,
    }
