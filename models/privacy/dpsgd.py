"""DP-SGD through Opacus: validate and fix the module, wrap model / optimizer / loader, epsilon.

A thin wrapper over :class:`opacus.PrivacyEngine` (Abadi et al. 2016): every per-sample
gradient is clipped to L2 norm ``max_grad_norm``, the clipped gradients are summed, Gaussian
noise of standard deviation ``noise_multiplier * max_grad_norm`` is added and the sum is divided
by the expected batch size. With Poisson sampling (the default) each batch takes every record
independently with probability ``batch_size / n``, which is what the accountant assumes.

The module is first checked by :class:`opacus.validators.ModuleValidator`; layers that cannot
have per-sample gradients with DP guarantees are replaced by :meth:`ModuleValidator.fix`
(BatchNorm -> GroupNorm, ...). A module whose problems fix cannot solve is refused with the
validator's errors. Whatever was fixed is reported in :attr:`PrivateTraining.fixed` so that
checkpoints can record the changed architecture.

What epsilon covers: the accountant bounds, at ``delta``, what the *SGD steps* reveal about one
*record* (one item of the loader's dataset: a training image on the CIFAR path, a spliced
window of frames on the voice path), record-level and add/remove-one. It says nothing about
anything estimated from the training data outside these steps, nor about a person who
contributes many records. :func:`guarantee` writes that statement next to epsilon and delta;
:func:`default_delta` keeps delta well below ``1 / n``.

Examples
--------
>>> dp = make_private(net, torch.optim.SGD(net.parameters(), lr=0.1), loader,
...                   noise_multiplier=1.0, max_grad_norm=1.0, seed=0)  # doctest: +SKIP
>>> for xb, yb in dp.data_loader: ...  # train dp.module with dp.optimizer  # doctest: +SKIP
>>> epsilon(dp.engine, default_delta(len(loader.dataset)))  # doctest: +SKIP
>>> default_delta(60_000)
1.6666666666666667e-06
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader

#: Accountant used by :func:`make_private` (Renyi DP, Mironov 2017).
ACCOUNTANT = "rdp"
#: The largest delta epsilon is reported at (:func:`default_delta`).
DELTA_MAX = 1e-5


@dataclass
class PrivateTraining:
    """What :func:`make_private` returns.

    Attributes
    ----------
    module : torch.nn.Module
        The wrapped module (an Opacus ``GradSampleModule``; its ``_module`` is the network).
    optimizer : torch.optim.Optimizer
        The DP optimizer (clips, noises, then steps the given optimizer).
    data_loader : torch.utils.data.DataLoader
        The loader (Poisson-sampled unless ``poisson_sampling=False``).
    engine : opacus.PrivacyEngine
        Holds the accountant (:func:`epsilon`).
    fixed : bool
        True when :meth:`ModuleValidator.fix` changed the module (e.g. BatchNorm -> GroupNorm).
    criterion : callable or None
        With ``grad_sample_mode="ghost"``: the loss to call (``criterion(output, target)``;
        its ``backward`` runs Opacus' two-pass fast gradient clipping); else ``None``.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    data_loader: DataLoader
    engine: PrivacyEngine
    fixed: bool
    criterion: object = None

    @property
    def network(self) -> nn.Module:
        """The underlying (unwrapped) network, whose state dict checkpoints save."""
        return unwrap(self.module)


def fix_module(module: nn.Module) -> tuple[nn.Module, bool]:
    """``(module, changed)``: ``module`` fixed for DP-SGD, or itself when already valid.

    Raises
    ------
    ValueError
        When the module has problems :meth:`ModuleValidator.fix` cannot solve (the message
        lists the validator's errors).
    """
    if not ModuleValidator.validate(module, strict=False):
        return module, False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fix() warns about every replaced layer
        fixed = ModuleValidator.fix(module)
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ValueError(
            "module cannot be trained with DP-SGD even after ModuleValidator.fix: "
            + "; ".join(str(e) for e in errors)
        )
    return fixed, True


def make_private(
    module: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    data_loader: DataLoader,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    seed: int | None = None,
    poisson_sampling: bool = True,
    optimizer_factory=None,
    grad_sample_mode: str = "hooks",
    criterion: nn.Module | None = None,
) -> PrivateTraining:
    """Wrap ``module``, ``optimizer`` and ``data_loader`` for DP-SGD.

    Parameters
    ----------
    module : torch.nn.Module
        The network; validated and, when needed, fixed first (:func:`fix_module`).
    optimizer : torch.optim.Optimizer or None
        Its optimizer. When the module had to be fixed the optimizer would hold the old
        parameters: pass ``optimizer_factory`` (parameters -> optimizer) instead, or a module
        that needs no fix.
    data_loader : torch.utils.data.DataLoader
        The training loader; its ``batch_size`` sets the expected batch size.
    noise_multiplier : float
        Noise standard deviation relative to ``max_grad_norm`` (sigma, >= 0).
    max_grad_norm : float
        Per-sample gradient clipping bound C (L2 norm over all parameters, > 0).
    seed : int, optional
        Seeds the noise and the Poisson sampling (not secure randomness; for reproducibility).
    poisson_sampling : bool
        Poisson-sampled batches (needed for the accountant's guarantee).
    optimizer_factory : callable, optional
        ``parameters -> optimizer``, used instead of ``optimizer`` (required when the module
        is fixed).
    grad_sample_mode : {"hooks", "ghost"}
        ``"hooks"``: per-sample gradients materialised, then clipped. ``"ghost"``: Opacus'
        fast gradient clipping (per-sample gradient norms without the per-sample gradients,
        then a second, reweighted backward; the same clipping, about 10x faster for a wide
        MLP on CPU). Needs ``criterion``; use the returned ``criterion``.
    criterion : torch.nn.Module, optional
        The loss (``reduction="mean"``), required with ``grad_sample_mode="ghost"``.

    Returns
    -------
    PrivateTraining
    """
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
    if max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")
    fixed_module, changed = fix_module(module)
    if optimizer_factory is not None:
        optimizer = optimizer_factory(fixed_module.parameters())
    elif optimizer is None:
        raise ValueError("make_private needs an optimizer or an optimizer_factory")
    elif changed:
        raise ValueError(
            "ModuleValidator.fix replaced layers of the module, so the optimizer holds stale "
            "parameters; pass optimizer_factory instead"
        )
    # Opacus warns that its RNG is not cryptographically secure (we seed it for
    # reproducibility) and, on every backward, that inputs do not require gradients; both are
    # expected here.
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    engine = PrivacyEngine(accountant=ACCOUNTANT)
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    if grad_sample_mode not in ("hooks", "ghost"):
        raise ValueError(f"grad_sample_mode must be 'hooks' or 'ghost', got {grad_sample_mode!r}")
    if (grad_sample_mode == "ghost") != (criterion is not None):
        raise ValueError("grad_sample_mode='ghost' needs a criterion (and only it takes one)")
    made = engine.make_private(
        module=fixed_module,
        optimizer=optimizer,
        data_loader=data_loader,
        noise_multiplier=float(noise_multiplier),
        max_grad_norm=float(max_grad_norm),
        poisson_sampling=poisson_sampling,
        noise_generator=generator,
        grad_sample_mode=grad_sample_mode,
        **({"criterion": criterion} if criterion is not None else {}),
    )
    if criterion is not None:
        wrapped, dp_optimizer, dp_criterion, loader = made
        return PrivateTraining(wrapped, dp_optimizer, loader, engine, changed, dp_criterion)
    wrapped, dp_optimizer, loader = made
    return PrivateTraining(wrapped, dp_optimizer, loader, engine, changed)


def default_delta(n_records: int, delta_max: float = DELTA_MAX) -> float:
    """The delta to report epsilon at for ``n_records`` training records.

    ``min(delta_max, 1 / (10 n))``: well below ``1 / n`` (a mechanism that publishes one random
    record whole is ``(0, 1/n)``-DP, so a delta near ``1 / n`` promises nothing). ``delta_max``
    is the explicit override: a smaller value is used as given.
    """
    if isinstance(n_records, bool) or not isinstance(n_records, int) or n_records < 1:
        raise ValueError(f"n_records must be a positive integer, got {n_records!r}")
    if not 0.0 < delta_max < 1.0:
        raise ValueError(f"delta_max must be in (0, 1), got {delta_max}")
    return min(float(delta_max), 1.0 / (10 * n_records))


def epsilon(engine: PrivacyEngine, delta: float) -> float:
    """The accountant's epsilon at ``delta`` for the steps taken so far.

    0.0 before the first step; ``inf`` when the noise multiplier is 0 (no privacy).
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not engine.accountant.history:
        return 0.0
    return float(engine.get_epsilon(delta))


def guarantee(
    eps: float, delta: float, n_records: int, covers: str, not_covered: list[str]
) -> dict:
    """The DP-SGD statement to store next to epsilon: what it covers and what it does not.

    Parameters
    ----------
    eps, delta : the accountant's epsilon and the delta it is reported at.
    n_records : training records the loader samples from (delta's ``n``).
    covers : the privacy unit, e.g. ``"per training image (record-level)"``.
    not_covered : what else is learnt from the training data without noise.
    """
    return {
        "epsilon": eps,
        "delta": delta,
        "n_records": n_records,
        "accountant": ACCOUNTANT,
        "epsilon_covers": covers,
        "not_covered": list(not_covered),
    }


def describe_guarantee(dp: dict) -> str:
    """One paragraph of a :func:`guarantee` dict for people: epsilon, delta, n, the coverage."""
    text = (
        f"DP-SGD: epsilon {dp['epsilon']:.3g} at delta {dp['delta']:.3g} "
        f"({dp['accountant']} accountant, n = {dp['n_records']} records); "
        f"covers: {dp['epsilon_covers']}"
    )
    if dp["not_covered"]:
        text += "; not covered (learnt from the training data without noise): " + "; ".join(
            dp["not_covered"]
        )
    return text


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside an Opacus ``GradSampleModule`` (the module itself otherwise)."""
    return getattr(module, "_module", module)


def release(module: nn.Module) -> nn.Module:
    """The plain network after DP training: Opacus' hooks and ``grad_sample`` removed.

    The wrapped module must not be used afterwards.
    """
    close = getattr(module, "to_standard_module", None)
    return close() if close is not None else module
