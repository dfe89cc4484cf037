"""Reference-calibrated user scores: each audio judged against reference recognizers' answers.

The shadows double as reference recognizers: each trained on a random half of the auditor's
speaker pool, so every pool speaker is IN for some and OUT for the others, and every audited
user is OUT for all. Every audio the device is asked about is also transcribed by every
reference that did not train on its speaker. For each answer signal (:data:`SIGNALS`, oriented
so that larger is more member-like) the device's value is standardised against those
references' values *on the same audio*: ``z = sign * (x - mean) / sd`` (LiRA offline at the
audio level: "Membership Inference Attacks From First Principles", Carlini et al.). The sd is
the references' per-audio one when every calibrated audio has at least
:data:`PER_AUDIO_SD_MIN` OUT references, otherwise one global sd per signal (the root mean
per-audio variance), as LiRA does with few references. A user's statistic is the mean z over
their K audios, per signal, and ``combined`` (the mean of the signals' statistics).

The statistic and the verdict threshold are chosen on the references alone
(:class:`ReferenceCalibratedTest`): leave one reference out, it plays the target, its IN pool
speakers are the members and its OUT pool speakers the non-members, calibrated by the other
references that did not train on them. The statistic with the highest AUC there wins, the
threshold is the quantile of its non-member scores at the stated FPR, and a user's p-value is
the share of those reference non-member scores at least as high (the null: "not a member").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

#: Answer signals compared per audio, with the sign that makes larger more member-like.
SIGNALS = {"log_like_per_frame": 1.0, "mean_confidence": 1.0, "per": -1.0}
#: User statistics the test chooses from.
STATISTICS = (*SIGNALS, "combined")
#: Fewest references for the calibrated attack: leaving one out must leave every pool
#: speaker at least one OUT reference (with 2, complementary halves leave none).
MIN_REFERENCES = 4
#: OUT references per audio from which the per-audio sd is used instead of the global one.
PER_AUDIO_SD_MIN = 8
#: The FPR the verdict threshold is set for, on the references' non-members.
DEFAULT_FPR = 0.05

#: (utterance id, speaker, features) of one answered audio.
Row = tuple[str, str, Mapping[str, float]]
#: A model's (mean, sd) per signal, ``(n_signals,)`` each.
Norm = tuple[np.ndarray, np.ndarray]
IDENTITY: Norm = (np.zeros(len(SIGNALS)), np.ones(len(SIGNALS)))


def signal_norm(answers: Sequence[Mapping[str, float]]) -> Norm:
    """One model's mean and sd of each signal over its answers (features of audios it is OUT
    for), which put its signals on a common scale."""
    if len(answers) < 2:
        raise ReferenceError(f"{len(answers)} answers to put a model's signals on scale; 2 needed")
    values = np.array([[a[s] for s in SIGNALS] for a in answers])  # (n, n_signals)
    return values.mean(axis=0), np.maximum(values.std(axis=0, ddof=1), 1e-6)


class ReferenceError(ValueError):
    """Too few references, or no reference answer to calibrate an audio against."""


class ReferenceCalibration:
    """The references' answers per audio, and z-scores of any answer against them.

    Parameters
    ----------
    answers : reference name -> utterance id -> features (the device's output policy applied).
    trained_on : reference name -> the speakers it trained on (they are IN for it).
    common : audios every reference is OUT for (the audited ones). Each model's signals are
        put on one scale first (:func:`signal_norm`: a reference's over these audios, the
        device's over its population audios): recognizers differ in offset and scale (e.g. a
        tuned acoustic scale multiplies log-likelihoods), and a user's OUT references are a
        different subset for each pool speaker.
    """

    def __init__(
        self,
        answers: Mapping[str, Mapping[str, Mapping]],
        trained_on: Mapping[str, set[str]],
        common: Iterable[str] = (),
    ):
        if len(answers) < MIN_REFERENCES:
            raise ReferenceError(
                f"{len(answers)} references; the calibrated attack needs at least "
                f"{MIN_REFERENCES} (shadows.k)"
            )
        self.answers = answers
        self.trained_on = trained_on
        common = list(common)
        self.norm_ = {
            ref: signal_norm([a[u] for u in common if u in a]) if common else IDENTITY
            for ref, a in answers.items()
        }
        self.sd_: dict[str, float] | None = None  # global sd per signal (None: per audio)
        self.sd_note_ = ""

    def out_values(self, utt_id: str, speaker: str, skip: Iterable[str] = ()) -> np.ndarray:
        """``(n_refs, n_signals)``: the signals of the OUT references' answers on the audio."""
        skip = set(skip)
        rows = [
            (np.array([a[utt_id][s] for s in SIGNALS]) - self.norm_[ref][0]) / self.norm_[ref][1]
            for ref, a in self.answers.items()
            if ref not in skip and speaker not in self.trained_on[ref] and utt_id in a
        ]
        return np.asarray(rows, dtype=np.float64).reshape(-1, len(SIGNALS))

    def fit_sd(self, audios: Iterable[tuple[str, str, Iterable[str]]]) -> ReferenceCalibration:
        """Choose per-audio or global sd over ``(utt_id, speaker, skipped refs)`` audios.

        Per-audio when every audio has :data:`PER_AUDIO_SD_MIN` OUT references, otherwise the
        global sd per signal: the root mean of per-audio variances (audios with 2 or more).
        """
        values = [self.out_values(u, spk, skip) for u, spk, skip in audios]
        counts = [len(v) for v in values]
        if not counts or min(counts) == 0:
            raise ReferenceError("an audio has no OUT reference answer to calibrate against")
        if min(counts) >= PER_AUDIO_SD_MIN:
            self.sd_, self.sd_note_ = None, f"per audio ({min(counts)}+ OUT references)"
            return self
        variances = [v.var(axis=0, ddof=1) for v in values if len(v) >= 2]  # (n_signals,) each
        if not variances:
            raise ReferenceError("no audio has 2 OUT references: no sd can be estimated")
        sd = np.sqrt(np.mean(variances, axis=0))  # (n_signals,)
        self.sd_ = {s: max(float(x), 1e-6) for s, x in zip(SIGNALS, sd, strict=True)}
        self.sd_note_ = (
            f"global ({min(counts)} OUT references on some audio < {PER_AUDIO_SD_MIN}; "
            f"{len(variances)} audios)"
        )
        return self

    def audio_z(self, row: Row, skip: Iterable[str] = (), norm: Norm | None = None) -> np.ndarray:
        """``(n_signals,)`` oriented z-scores of one answer (of the model whose :func:`signal_norm`
        is ``norm``) against its audio's OUT references."""
        utt_id, speaker, feats = row
        ref = self.out_values(utt_id, speaker, skip)
        if len(ref) == 0:
            raise ReferenceError(f"{utt_id}: no OUT reference answered it")
        centre, scale = norm or IDENTITY
        x = (np.array([feats[s] for s in SIGNALS]) - centre) / scale
        if self.sd_ is None:
            sd = np.maximum(ref.std(axis=0, ddof=1), 1e-6)
        else:
            sd = np.array([self.sd_[s] for s in SIGNALS])
        sign = np.array(list(SIGNALS.values()))
        return sign * (x - ref.mean(axis=0)) / sd

    def user_statistics(
        self, rows: Sequence[Row], skip: Iterable[str] = (), norm: Norm | None = None
    ) -> dict[str, float]:
        """Each statistic of :data:`STATISTICS` for one user's answered audios."""
        z = np.mean([self.audio_z(r, skip, norm) for r in rows], axis=0)  # (n_signals,)
        stats = {s: float(v) for s, v in zip(SIGNALS, z, strict=True)}
        stats["combined"] = float(z.mean())
        return stats


def _out_of_group_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(n_users,)`` logistic-regression scores of each group's users from a fit on the
    other groups (a group without both classes elsewhere gets the all-data fit)."""
    scores = LogisticRegression().fit(X, y).decision_function(X)
    for g in np.unique(groups):
        rest = groups != g
        if len(set(y[rest].tolist())) == 2:
            scores[~rest] = LogisticRegression().fit(X[rest], y[rest]).decision_function(X[~rest])
    return scores


class ReferenceCalibratedTest(BaseEstimator):
    """Choose the statistic and the threshold on references' IN/OUT users; score users.

    The candidates are the statistics of :data:`STATISTICS` and ``weighted``: a logistic
    regression over the signals' statistics, fitted on the reference users, whose AUC and
    null scores come from fits that left the scored reference out (leave one group out).

    Parameters
    ----------
    fpr : float
        The FPR the threshold is set for on the references' non-members.
    """

    def __init__(self, fpr: float = DEFAULT_FPR):
        self.fpr = fpr

    def fit(
        self,
        statistics: Sequence[Mapping[str, float]],
        y: Sequence[int],
        groups: Sequence[str] | None = None,
    ):
        """``statistics``: one :meth:`ReferenceCalibration.user_statistics` per reference user;
        ``y``: 1 for a user IN the reference playing the target, 0 for OUT; ``groups``: which
        reference played the target (the ``weighted`` candidate is scored out of group)."""
        y = np.asarray(y)
        if len(set(y.tolist())) < 2:
            raise ReferenceError("the references' users lack members or non-members")
        table = {s: np.array([st[s] for st in statistics]) for s in STATISTICS}
        X = np.column_stack([table[s] for s in SIGNALS])  # (n_users, n_signals)
        self.weights_ = LogisticRegression().fit(X, y)
        if groups is not None and len(set(groups)) >= 2:
            table["weighted"] = _out_of_group_scores(X, y, np.asarray(groups))
        self.auc_by_statistic_ = {s: float(roc_auc_score(y, v)) for s, v in table.items()}
        self.statistic_ = max(table, key=lambda s: (self.auc_by_statistic_[s], s == "combined"))
        self.null_ = np.sort(table[self.statistic_][y == 0])  # (n_out,)
        self.threshold_ = float(np.quantile(self.null_, 1.0 - self.fpr))
        self.n_reference_users_ = {"in": int((y == 1).sum()), "out": int((y == 0).sum())}
        return self

    def score(self, statistics: Sequence[Mapping[str, float]]) -> np.ndarray:
        """``(n_users,)``: the chosen statistic of each user."""
        if self.statistic_ == "weighted":
            X = np.array([[st[s] for s in SIGNALS] for st in statistics])
            return self.weights_.decision_function(X)
        return np.array([st[self.statistic_] for st in statistics])

    def p_value(self, scores: np.ndarray) -> np.ndarray:
        """``(n_users,)``: share of reference non-members scoring at least as high (+1 each)."""
        above = len(self.null_) - np.searchsorted(self.null_, scores, side="left")
        return (1.0 + above) / (1.0 + len(self.null_))

    def describe(self) -> dict:
        """What ``metrics.json`` records of the choice."""
        return {
            "statistic": self.statistic_,
            "auc_by_statistic_on_references": self.auc_by_statistic_,
            "threshold": self.threshold_,
            "threshold_fpr_on_references": self.fpr,
            "reference_users": self.n_reference_users_,
        }
