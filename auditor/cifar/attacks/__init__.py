"""Record-level membership attacks on a black-box image classifier (the CIFAR-10 path).

Every attack is a scikit-learn style estimator: ``__init__`` stores parameters (among them
``target``, the black box: a callable mapping records to class probabilities), ``fit`` trains
whatever the attack needs from the auditor's own data and returns ``self``, learned state ends
in ``_``, and ``score_samples(x, y)`` gives one membership score per record (higher = more
likely a member), ready for :func:`auditor.metrics.membership_metrics`.

- :class:`ShokriAttack`: shadow models + one attack model per class (:mod:`.shokri`), with
  shadow data from real, synthesized (:mod:`.synthesis`) or noisy records.
- :class:`MLLeaksAttack`: ML-Leaks adversary 1 / data transferring (:mod:`.mlleaks`).
- :class:`ThresholdAttack`: training-free max-posterior / entropy thresholds (:mod:`.threshold`).
- :class:`LiRA`: the likelihood-ratio attack, offline and online (:mod:`.lira`).
"""

from auditor.cifar.attacks.blackbox import BlackBox, QueryBudgetExceeded
from auditor.cifar.attacks.lira import LiRA
from auditor.cifar.attacks.mlleaks import MLLeaksAttack
from auditor.cifar.attacks.shadow import CnnRecipe
from auditor.cifar.attacks.shokri import ShokriAttack
from auditor.cifar.attacks.threshold import ThresholdAttack

ATTACKS = {
    "shokri": ShokriAttack,
    "mlleaks": MLLeaksAttack,
    "threshold": ThresholdAttack,
    "lira": LiRA,
}

__all__ = [
    "ATTACKS",
    "BlackBox",
    "CnnRecipe",
    "LiRA",
    "MLLeaksAttack",
    "QueryBudgetExceeded",
    "ShokriAttack",
    "ThresholdAttack",
]
