"""Run one membership attack against a CIFAR-10 target and score it.

The attack gets black-box access to the target (:meth:`CifarTarget.predict_proba`), the
auditor's own records (the split's ``shadow_pool``) and, for training shadow / reference
models, the target's training recipe (its ``model.json`` config: Shokri's "known learning
algorithm" assumption). It is scored on the target's members against as many non-members
(the reference paper's balanced evaluation) with :func:`auditor.metrics.membership_metrics`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from auditor.cifar.attacks import ATTACKS, CnnRecipe
from auditor.cifar.target import CifarTarget, load_target
from auditor.config import save_metrics
from auditor.executor import as_executor, get_executor
from auditor.metrics import membership_metrics
from auditor.plots import save_roc_plots

log = logging.getLogger(__name__)

#: Default percentile of the target's max posterior on the auditor's own (non-member) records
#: above which the threshold attack calls a record a member.
THRESHOLD_PERCENTILE = 90.0


def shadow_recipe(target: CifarTarget, epochs: int | None = None) -> CnnRecipe:
    """The target's training recipe for shadow / reference models.

    ``num_threads`` is dropped so that the executor decides the threads of each job; ``epochs``
    optionally overrides the target's. The target's training defenses are in its config; its
    serving defense (if any) hardens the shadow answers too. Under ``advreg`` every shadow
    learns from the split's ``shadow_reference`` records, outside the attacker's pool and so
    outside its training data, as the target learns from ``defender_reference``.
    """
    cfg = dict(target.info["config"])
    cfg["num_threads"] = None
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    reference = None
    if cfg.get("advreg") is not None:
        if "shadow_reference" not in target.split:
            raise ValueError(
                "the target was trained with advreg but its split has no "
                "shadow_reference (an older target folder): train it again"
            )
        reference = target.records("shadow_reference")
    return CnnRecipe(cfg, serving=target.serving, reference=reference)


def evaluation_records(target: CifarTarget, n_eval: int | None, seed: int):
    """Members then non-members (``n_eval`` of each, all when None): ``x, y, membership``."""
    rng = np.random.default_rng(seed)
    parts = []
    for name in ("target_members", "target_nonmembers"):
        idx = target.split[name]
        if n_eval is not None and n_eval < len(idx):
            idx = np.sort(rng.choice(idx, n_eval, replace=False))
        parts.append(idx)
    idx = np.concatenate(parts)
    membership = np.r_[np.ones(len(parts[0]), int), np.zeros(len(parts[1]), int)]
    return target.x[idx], target.y[idx], membership


def attack_target(
    target: CifarTarget,
    attack: str,
    *,
    seed: int,
    params: dict | None = None,
    shadow_epochs: int | None = None,
    executor="local",
    n_eval: int | None = None,
    n_bootstrap: int = 1000,
) -> dict:
    """Fit ``attack`` on the auditor's records and score it on the target's members/non-members.

    Parameters
    ----------
    target : CifarTarget
        The audited model with its data and split.
    attack : {"shokri", "mlleaks", "threshold", "lira"}
        Which estimator of :data:`auditor.cifar.attacks.ATTACKS`.
    seed : int
        Seeds the attack and the evaluation subsample.
    params : dict, optional
        Constructor parameters of the attack (e.g. ``n_shadows``, ``n_reference``, ``mode``,
        ``percentile``); a parameter the attack does not have is refused.
    shadow_epochs : int, optional
        Epochs of shadow / reference models (default: the target's).
    executor : str or executor
        Where shadow / reference models train.
    n_eval : int, optional
        Members and non-members scored (default: all the target's members and as many
        non-members).
    n_bootstrap : int
        Bootstrap resamples for the 95% intervals.

    Returns
    -------
    dict
        :func:`~auditor.metrics.membership_metrics` output plus ``attack``, ``params``,
        ``n_queries`` (records the attack asked the target about, the scoring and decision
        passes over the evaluation records included) and ``seconds`` (fit + score).
    """
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; expected one of {sorted(ATTACKS)}")
    params = dict(params or {})
    cls = ATTACKS[attack]
    defaults = cls().get_params()
    given = {"target", "recipe", "executor", "seed"}
    unknown = sorted(set(params) - (set(defaults) - given))
    if unknown:
        raise ValueError(
            f"{attack} has no parameter(s) {unknown}; it takes {sorted(set(defaults) - given)}"
        )
    if attack == "threshold":  # training-free: a percentile of the answers on auditor records
        params.setdefault("percentile", THRESHOLD_PERCENTILE)
    kwargs = {
        "recipe": shadow_recipe(target, shadow_epochs),
        "executor": as_executor(executor),
        "seed": seed,
    }
    estimator = cls(
        target.predict_proba, **{k: v for k, v in kwargs.items() if k in defaults}, **params
    )
    x_pool, y_pool = target.records("shadow_pool")
    x_eval, y_eval, membership = evaluation_records(target, n_eval, seed)
    t0 = time.perf_counter()
    log.info("%s: fitting on %d auditor records", attack, len(x_pool))
    if attack == "shokri":
        estimator.fit(x_pool, y_pool, n_classes=len(target.classes))
    elif attack == "lira":
        estimator.fit(x_pool, y_pool, x_candidates=x_eval, y_candidates=y_eval)
    elif attack == "threshold":
        estimator.fit(x_pool)
    else:
        estimator.fit(x_pool, y_pool)
    scores = estimator.score_samples(x_eval, y_eval)
    decisions = estimator.predict(x_eval, y_eval)
    seconds = time.perf_counter() - t0
    metrics = membership_metrics(
        membership, scores, y_pred=decisions, n_bootstrap=n_bootstrap, seed=seed
    )
    metrics.update(
        attack=attack,
        params=params,
        n_queries=int(estimator.blackbox_.n_queries),
        seconds=seconds,
    )
    return metrics


def run_attack(
    target_dir: str | Path,
    attack: str,
    out: str | Path,
    *,
    seed: int,
    data: str | Path | None = None,
    cache_dir: str | Path | None = None,
    params: dict | None = None,
    shadow_epochs: int | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    n_eval: int | None = None,
    n_bootstrap: int = 1000,
) -> dict:
    """Load the target in ``target_dir``, run :func:`attack_target`, write ``out``.

    ``out`` receives ``metrics.json`` (``{attack: metrics}``) and ``roc_linear.png`` /
    ``roc_log.png``. ``executor`` / ``workers`` / ``address`` build the executor
    (:func:`auditor.executor.get_executor`); ``data`` / ``cache_dir`` go to
    :func:`~auditor.cifar.target.load_target`; the other parameters are :func:`attack_target`'s.
    """
    target = load_target(target_dir, data=data, cache_dir=cache_dir)
    pool = get_executor(executor, max_workers=workers, address=address)
    metrics = attack_target(
        target,
        attack,
        seed=seed,
        params=params,
        shadow_epochs=shadow_epochs,
        executor=pool,
        n_eval=n_eval,
        n_bootstrap=n_bootstrap,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_metrics(out, {attack: metrics})
    save_roc_plots({attack: metrics}, out, title=f"{attack} on {Path(target_dir).name}")
    return metrics
