"""Adversarial regularization (Nasr, Shokri, Houmansadr, CCS 2018), generic over logits.

The classifier ``f`` and an inference model ``h`` play a min-max game. ``h`` sees a record's
prediction vector ``f(x)`` and its one-hot label ``y`` and outputs a membership logit. Each
round:

- **max step** (:meth:`AdversarialRegularizer.max_steps`, ``k_steps`` times): ``h`` is
  trained to tell a batch of training members from a batch of a reference set of non-members,
  maximising the gain
  ``G = mean log h(f(x), y) over members + mean log(1 - h(f(x'), y')) over references``.
  ``h`` sees the classifier's *eval-mode* outputs without gradient (:func:`inference_input`:
  dropout off, batch norm on its running statistics), the deterministic answers an attacker
  gets from the served model;
- **min step**: the classifier minimises ``CE(f(x), y) + lam * mean -log(1 - h(f(x), y))`` over
  a member batch (:meth:`AdversarialRegularizer.penalty` gives the second term). Its privacy
  term is computed on the classifier's *training* forward pass, the same logits as its
  cross-entropy (train mode: dropout on), so that its gradient flows into the classifier
  through ``f(x)``: it is pushed to make its members look like non-members to the best current
  attacker. Nasr et al. write the member part of the gain,
  ``log h``; we use its non-saturating counterpart ``-log(1 - h)`` (Goodfellow et al.'s GAN
  trick): both fall as ``h`` on members falls, but the gradient of ``log h`` vanishes exactly
  when the attacker is confident (``h -> 1``), where ``-log(1 - h)`` pushes hardest (measured
  here: with ``log h`` the leak of a CIFAR-10 CNN did not move at lam = 1).

``lam`` (lambda) trades accuracy for privacy; ``lam = 0`` is plain training. The inference
model is Nasr et al.'s three-branch network scaled down: the prediction vector (softmax,
optionally sorted descending) through 64 -> 32 units, the one-hot label through 32 units,
their concatenation through 32 -> 1, ReLU activations. Both trainers, the CIFAR-10 CNN's
(:mod:`models.vision.train`) and the voice recognizer's (:mod:`models.asr.train`), play the game
through this module: ``max_steps`` then ``penalty``.

Examples
--------
>>> reg = AdversarialRegularizer(n_classes=10, lam=1.0, seed=0)  # doctest: +SKIP
>>> logits = f(xb)  # training forward pass (train mode)  # doctest: +SKIP
>>> reg.max_steps(f, xb, yb, draw_reference, k_steps=1)  # max step  # doctest: +SKIP
>>> loss = ce(logits, yb) + reg.penalty(logits, yb)  # min step  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def inference_input(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The classifier's logits ``(n, C)`` on records ``x`` as the inference model sees them.

    Eval mode (dropout off, batch norm on its running statistics) and no gradient: what an
    attacker gets from the served model. The classifier's train / eval mode is restored.
    """
    training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            return classifier(x)
    finally:
        classifier.train(training)


class InferenceModel(nn.Module):
    """Nasr et al.'s membership inference network (scaled down): ``h(f(x), y) -> logit``.

    Parameters
    ----------
    n_classes : int
        Length of the prediction vector and of the one-hot label.
    hidden : int
        Width of the prediction branch's first layer (the other layers use ``hidden // 2``).
    sort : bool
        Sort the prediction vector descending before use (label-agnostic features); the label
        branch still receives the label.
    """

    def __init__(self, n_classes: int, hidden: int = 64, sort: bool = False):
        super().__init__()
        half = hidden // 2
        self.sort = sort
        self.pred_branch = nn.Sequential(
            nn.Linear(n_classes, hidden), nn.ReLU(), nn.Linear(hidden, half), nn.ReLU()
        )
        self.label_branch = nn.Sequential(nn.Linear(n_classes, half), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * half, half), nn.ReLU(), nn.Linear(half, 1))

    def forward(self, probs: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Membership logits ``(n,)`` from probabilities ``(n, C)`` and one-hot labels ``(n, C)``."""
        if self.sort:
            probs = probs.sort(dim=1, descending=True).values  # (n, C)
        a = self.pred_branch(probs)  # (n, hidden // 2)
        b = self.label_branch(onehot)  # (n, hidden // 2)
        return self.head(torch.cat([a, b], dim=1)).squeeze(1)  # (n,)


class AdversarialRegularizer:
    """The inference model ``h`` of the min-max game, its optimizer and the classifier penalty.

    Parameters
    ----------
    n_classes : int
        Classes of the defended classifier.
    lam : float
        Trade-off weight lambda of the min step (>= 0; 0 = no regularization).
    attack_lr : float
        Adam learning rate of the inference model.
    hidden : int
        Width of :class:`InferenceModel`.
    sort : bool
        Sort prediction vectors inside the inference model.
    seed : int
        Seeds the inference model's initialisation.

    Attributes
    ----------
    model : InferenceModel
        ``h``.
    last_gain : float or None
        The attacker's gain ``G`` (nats, see module docstring) at its last :meth:`attack_step`.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        lam: float = 1.0,
        attack_lr: float = 0.001,
        hidden: int = 64,
        sort: bool = False,
        seed: int = 0,
    ):
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.n_classes = int(n_classes)
        self.lam = float(lam)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.model = InferenceModel(self.n_classes, hidden, sort)
        torch.random.set_rng_state(gen_state)  # the classifier's random stream is untouched
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=attack_lr)
        self.last_gain: float | None = None

    def _logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, dim=1)  # (n, C)
        onehot = F.one_hot(labels.long(), self.n_classes).to(probs.dtype)  # (n, C)
        return self.model(probs, onehot)  # (n,)

    def inference_loss(self, member_logits, member_labels, ref_logits, ref_labels) -> torch.Tensor:
        """Binary cross-entropy of ``h`` on members (label 1) and references (label 0) = -G."""
        m = self._logits(member_logits, member_labels)  # (b,)
        r = self._logits(ref_logits, ref_labels)  # (b_ref,)
        return 0.5 * (
            F.binary_cross_entropy_with_logits(m, torch.ones_like(m))
            + F.binary_cross_entropy_with_logits(r, torch.zeros_like(r))
        )

    def attack_step(
        self,
        member_logits: torch.Tensor,
        member_labels: torch.Tensor,
        ref_logits: torch.Tensor,
        ref_labels: torch.Tensor,
    ) -> float:
        """One max step: train ``h`` on detached outputs; returns the loss before the step.

        Parameters
        ----------
        member_logits : torch.Tensor
            Classifier logits ``(b, C)`` on a batch of training members.
        member_labels : torch.Tensor
            Their labels ``(b,)``.
        ref_logits : torch.Tensor
            Classifier logits ``(b_ref, C)`` on a batch of the reference (non-member) set.
        ref_labels : torch.Tensor
            Their labels ``(b_ref,)``.
        """
        self.model.train()
        loss = self.inference_loss(
            member_logits.detach(), member_labels, ref_logits.detach(), ref_labels
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = loss.item()
        self.last_gain = -value
        return value

    def max_steps(
        self,
        classifier: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        draw_reference: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        k_steps: int,
    ) -> float:
        """``k_steps`` max steps on a member batch; returns the mean loss before each step.

        Parameters
        ----------
        classifier : torch.nn.Module
            The defended classifier (records -> logits ``(n, C)``), queried through
            :func:`inference_input` on the members and on each reference batch.
        x, y : torch.Tensor
            A batch of training members ``(b, ...)`` and their labels ``(b,)``.
        draw_reference : callable
            ``() -> (x_ref (b_ref, ...), y_ref (b_ref,))``: a fresh reference batch per step.
        k_steps : int
            Max steps (>= 1).
        """
        member_logits = inference_input(classifier, x)  # (b, C)
        losses = []
        for _ in range(k_steps):
            x_ref, y_ref = draw_reference()
            ref_logits = inference_input(classifier, x_ref)  # (b_ref, C)
            losses.append(self.attack_step(member_logits, y, ref_logits, y_ref))
        return sum(losses) / len(losses)

    def penalty(self, member_logits: torch.Tensor, member_labels: torch.Tensor) -> torch.Tensor:
        """``lam * mean -log(1 - h(f(x), y))`` over a member batch (add it to the classifier's loss).

        The gradient flows into the classifier through ``member_logits (b, C)``; ``h``'s own
        parameters receive gradients too but are only stepped by :meth:`attack_step` (which
        zeroes them first).
        """
        if self.lam == 0.0:
            return member_logits.sum() * 0.0  # keeps the graph; plain cross-entropy
        m = self._logits(member_logits, member_labels)  # (b,)
        return self.lam * F.softplus(m).mean()  # -log(1 - sigmoid(m)) = softplus(m)
