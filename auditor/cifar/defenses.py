"""Attacking a defended CIFAR-10 target with several attacks that share shadow models.

The attacker knows the training recipe, defense included (Shokri et al.'s assumption carried
over to defenses): shadow models are trained with the target's defended config, and their
answers are hardened with the target's serving defense. One set of ``n_shadows`` shadow models
(each trained on a random half of the attacker's pool, :func:`~auditor.cifar.attacks.shadow.
in_out_splits`, exactly as :class:`~auditor.cifar.attacks.ShokriAttack` draws them) serves the
attacks :func:`attack_suite` is asked for, among :data:`ATTACK_NAMES`:

- ``shokri``: Shokri et al.'s per-class attack models (:class:`ShokriAttack`, fed the shadows'
  answers through :class:`ReplayExecutor` instead of retraining them; attack features
  ``shokri_features``, class-ordered log-probabilities by default);
- ``loss``: the loss threshold attack (Yeom et al.): the score is LiRA's scaled confidence
  ``log p_y - log(1 - p_y)`` (monotone in the cross-entropy loss), thresholded where it best
  separates the shadows' members from their non-members;
- ``threshold``: ML-Leaks' max-posterior threshold (:class:`ThresholdAttack`, threshold at a
  percentile of the answers on the attacker's own records);
- ``lira``: offline LiRA (Carlini et al. 2022) with the shadows as OUT reference models (the
  candidates are in none of them) and one global variance: score ``-log P[Z >= phi]`` under
  ``N(mean_out(candidate), s_out)``. It needs at least two shadows and is refused with fewer:
  with one reference the fitted spread is zero, every record scoring below its reference gets
  exactly 0 and the attack is a one-model loss difference with half the records tied;
- ``loss_mirror`` and ``lira_mirror``: the same two attacks querying each record twice, as is
  and mirrored left-right (:func:`~auditor.cifar.attacks.lira.views`), the views the
  ``augment`` defense trains on: the loss attack thresholds the mean scaled confidence of the
  two views, LiRA sums the two views' scores (a Gaussian and a global variance per view). Under
  ``label_only`` they count the correct views: Choquette-Choo et al.'s (ICML 2021)
  data-augmentation label-only attack.

:func:`attack_suite` also names the attack with the highest AUC, ``max_auc_attack``. It is
picked with the evaluation labels, so its AUC is an upper bound over the attacks run, not the
result of an attack an auditor could have chosen in advance. Hardened answers hold zeros; their
logs are floored (:data:`~auditor.cifar.attacks.signals.PROBA_FLOOR`), so under ``label_only``
every probability-based score collapses to "correct or not" (the gap attack) and the
max-posterior threshold sees a constant (AUC 0.5).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from dataclasses import replace as dc_replace

import numpy as np
from scipy.stats import norm

from auditor.cifar.attacks import CnnRecipe, ShokriAttack, ThresholdAttack
from auditor.cifar.attacks.lira import MIN_PER_GAUSSIAN, MIN_STD, views
from auditor.cifar.attacks.mlleaks import default_attack_model
from auditor.cifar.attacks.shadow import harden_log_proba, in_out_splits, train_and_query
from auditor.cifar.attacks.signals import log_proba, scaled_confidence
from auditor.cifar.attacks.threshold import best_threshold
from auditor.cifar.target import CifarTarget
from auditor.executor import as_executor
from auditor.metrics import membership_metrics
from common.hashing import records_digest
from models.privacy.serving import OutputPolicy

log = logging.getLogger(__name__)

ATTACK_NAMES = ("shokri", "loss", "threshold", "lira", "loss_mirror", "lira_mirror")
#: The attacks that fit a Gaussian on the shadows' answers (need ``MIN_PER_GAUSSIAN`` shadows).
LIRA_ATTACKS = ("lira", "lira_mirror")


@dataclass
class Shadows:
    """Shadow models' raw (unhardened) answers.

    Attributes
    ----------
    splits : list of (np.ndarray, np.ndarray)
        Per shadow, its ``in`` and ``out`` indices into the attacker's pool.
    answers : list of dict
        Per shadow, ``{"in", "out", "eval"}`` and their mirrored views ``{"in_mirror", ...}``
        -> float64 log-probabilities ``(n, C)``.
    seeds : list of int
        Training seed of each shadow (``seed + 1 + s``, as ShokriAttack uses).
    fingerprints : list of str
        Digest of each shadow's training records.
    seconds : float
        Wall time of training and querying them.
    """

    splits: list
    answers: list
    seeds: list
    fingerprints: list
    seconds: float


def train_shadows(
    target: CifarTarget,
    recipe: CnnRecipe,
    n_shadows: int,
    *,
    seed: int,
    x_eval: np.ndarray,
    executor="serial",
) -> Shadows:
    """Train ``n_shadows`` models with ``recipe`` on halves of the attacker's pool.

    ``recipe.serving`` is ignored here (answers are stored raw and hardened per setting by
    :func:`attack_suite`), so one set of shadows serves every serving defense of a recipe.
    """
    x_pool, y_pool = target.records("shadow_pool")
    raw = dc_replace(recipe, serving=None)
    splits = in_out_splits(len(x_pool), len(x_pool) // 2, n_shadows, seed)
    jobs = []
    for s, (i, o) in enumerate(splits):
        queries = {"in": x_pool[i], "out": x_pool[o], "eval": x_eval}
        queries |= {f"{k}_mirror": mirror(v) for k, v in queries.items()}
        jobs.append(
            {
                "recipe": raw,
                "x_train": x_pool[i],
                "y_train": y_pool[i],
                "queries": queries,
                "seed": seed + 1 + s,
            }
        )
    t0 = time.perf_counter()
    answers = as_executor(executor).map(train_and_query, jobs, desc="shadows")
    return Shadows(
        splits,
        answers,
        [j["seed"] for j in jobs],
        [records_digest(j["x_train"], j["y_train"]) for j in jobs],
        time.perf_counter() - t0,
    )


class ReplayExecutor:
    """An executor that answers ``train_and_query`` jobs from already trained shadows.

    A job is matched by its seed and its training records (refused when they differ, so an
    attack can never be handed a shadow trained on other data); its answers are hardened by
    ``policy`` (the target's output policy; None: ``full``).
    """

    def __init__(self, shadows: Shadows, policy: OutputPolicy | None = None):
        self.shadows = shadows
        self.policy = policy or OutputPolicy()

    def map(self, fn, jobs, *, desc=None) -> list:
        """The stored answers of each job's shadow, in job order."""
        out = []
        for job in jobs:
            try:
                s = self.shadows.seeds.index(job["seed"])
            except ValueError:
                raise ValueError(f"no trained shadow with seed {job['seed']}") from None
            if records_digest(job["x_train"], job["y_train"]) != self.shadows.fingerprints[s]:
                raise ValueError(f"shadow {s}: the job's training records differ from its own")
            out.append(
                {
                    q: harden_log_proba(self.shadows.answers[s][q], self.policy)
                    for q in job["queries"]
                }
            )
        return out


def mirror(x: np.ndarray) -> np.ndarray:
    """Images ``(n, H, W, C)`` mirrored left-right (the second of :func:`views`)."""
    return views(x, augment=True)[1]


class AnswerCache:
    """The target model's raw softmax answers, computed once per distinct set of records.

    The attacks query the same records several times (the evaluation records by three attacks,
    settings that differ only in their serving defense share one model); a forward pass over
    5000 CIFAR images costs seconds on one core. Keyed by a digest of the records' bytes;
    :meth:`predict_proba` applies the target's serving defense to the cached raw answer, so
    what the attacks see is exactly :meth:`CifarTarget.predict_proba`.
    """

    def __init__(self, target: CifarTarget):
        self.target = target
        self.raw_: dict[str, np.ndarray] = {}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Hardened answers ``(n, C)`` of records ``x``, from the cache when seen before."""
        key = f"{x.shape}:{records_digest(x, np.zeros(0))}"
        if key not in self.raw_:
            self.raw_[key] = self.target.raw_proba(x)
        return self.target.policy.harden_proba(self.raw_[key])


def check_attacks(attacks, n_shadows: int) -> tuple[str, ...]:
    """The names in ``attacks`` as a tuple, refused unless :func:`attack_suite` can run them.

    Raises
    ------
    ValueError
        No attack, an unknown or repeated name, or a LiRA attack with fewer than two shadows.
    """
    attacks = tuple(attacks)
    unknown = [a for a in attacks if a not in ATTACK_NAMES]
    if not attacks or unknown or len(set(attacks)) != len(attacks):
        raise ValueError(f"attacks must be distinct names of {ATTACK_NAMES}, got {list(attacks)}")
    lira = [a for a in attacks if a in LIRA_ATTACKS]
    if lira and n_shadows < MIN_PER_GAUSSIAN:
        raise ValueError(
            f"{lira} need >= {MIN_PER_GAUSSIAN} shadow models as OUT references, got "
            f"{n_shadows}: with one the fitted spread is zero and LiRA is a one-model loss "
            "difference; train more shadows or leave LiRA out"
        )
    return attacks


def attack_suite(
    target: CifarTarget,
    shadows: Shadows,
    *,
    attacks,
    seed: int,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    membership: np.ndarray,
    threshold_percentile: float = 90.0,
    shokri_max_iter: int = 200,
    shokri_features: str = "class_order",
    n_bootstrap: int = 200,
    cache: AnswerCache | None = None,
) -> dict:
    """Run ``attacks`` (names of :data:`ATTACK_NAMES`, module docstring) on the target's answers.

    ``attacks`` is checked by :func:`check_attacks` (LiRA needs two shadows or more).
    ``shokri_max_iter`` caps the epochs of Shokri's per-class MLP attack models (ML-Leaks'
    MLP, :func:`~auditor.cifar.attacks.mlleaks.default_attack_model`; 500 by default there,
    which dominated the cost of a setting); ``shokri_features`` are their input features
    (:data:`~auditor.cifar.attacks.shokri.FEATURES`).

    The target's serving defense (``target.serving``) applies to its answers and to the
    shadows'. ``cache`` (an :class:`AnswerCache` of the same model, its ``target`` replaced by
    this one) lets settings that share a model share its forward passes. Returns
    ``{attack: membership_metrics(...) + seconds}`` for each of ``attacks`` plus
    ``max_auc_attack``: the attack with the highest AUC, picked with the evaluation labels (an
    upper bound over the attacks, not an attack chosen in advance).
    """
    attacks = check_attacks(attacks, len(shadows.splits))
    policy = target.policy
    if cache is None:
        cache = AnswerCache(target)
    cache.target = target  # same model, this setting's serving defense
    black_box = cache.predict_proba
    x_pool, y_pool = target.records("shadow_pool")
    n_classes = len(target.classes)
    results = {}

    def score(name, scores, decisions, t0):
        m = membership_metrics(
            membership, scores, y_pred=decisions, n_bootstrap=n_bootstrap, seed=seed
        )
        m["seconds"] = time.perf_counter() - t0
        results[name] = m

    if "shokri" in attacks:
        t0 = time.perf_counter()
        attack_model = default_attack_model(seed).set_params(
            mlpclassifier__max_iter=shokri_max_iter
        )
        shokri = ShokriAttack(
            black_box,
            None,
            n_shadows=len(shadows.splits),
            features=shokri_features,
            attack_model=attack_model,
            executor=ReplayExecutor(shadows, policy),
            seed=seed,
        )
        shokri.fit(x_pool, y_pool, n_classes=n_classes)
        s = shokri.score_samples(x_eval, y_eval)
        score("shokri", s, (s >= 0.5).astype(int), t0)

    if "threshold" in attacks:
        t0 = time.perf_counter()
        thr = ThresholdAttack(black_box, percentile=threshold_percentile).fit(x_pool)
        score("threshold", thr.score_samples(x_eval), thr.predict(x_eval), t0)

    views_of = {"": [""], "_mirror": ["", "_mirror"]}  # as is; as is + mirrored
    queried = {
        v
        for suffix, vs in views_of.items()
        for v in vs
        if {"loss" + suffix, "lira" + suffix} & set(attacks)
    }
    target_phi = {
        v: scaled_confidence(log_proba(black_box(mirror(x_eval) if v else x_eval)), y_eval)
        for v in queried
    }  # (n_eval,) per view

    def shadow_phi(answers: dict, part: str, labels: np.ndarray) -> np.ndarray:  # (n,)
        return scaled_confidence(harden_log_proba(answers[part], policy), labels)

    for suffix, view_names in views_of.items():
        if "loss" + suffix in attacks:
            t0 = time.perf_counter()
            phi = np.mean([target_phi[v] for v in view_names], axis=0)  # (n_eval,) view mean
            calib, calib_member = [], []
            for (i, o), a in zip(shadows.splits, shadows.answers, strict=True):
                for part, idx, member in (("in", i, 1), ("out", o, 0)):
                    calib.append(
                        np.mean([shadow_phi(a, part + v, y_pool[idx]) for v in view_names], axis=0)
                    )
                    calib_member.append(np.full(len(idx), member))
            cut = best_threshold(np.concatenate(calib), np.concatenate(calib_member))
            score("loss" + suffix, phi, (phi >= cut).astype(int), t0)

        if "lira" + suffix in attacks:
            t0 = time.perf_counter()
            lira = np.zeros(len(y_eval))  # (n_eval,) summed over views
            for v in view_names:
                ref = np.stack(
                    [shadow_phi(a, "eval" + v, y_eval) for a in shadows.answers], axis=1
                )  # (n_eval, K) OUT confidences
                mean = ref.mean(axis=1)  # (n_eval,)
                std = max(float(np.sqrt(((ref - mean[:, None]) ** 2).mean())), MIN_STD)  # global
                lira += -norm.logsf(target_phi[v], mean, std)
            member = -np.expm1(-lira / len(view_names)) >= 0.5  # P[Z < phi] >= 1/2 (geo. mean)
            score("lira" + suffix, lira, member.astype(int), t0)

    results["max_auc_attack"] = max(attacks, key=lambda a: results[a]["auc"])
    return results
