"""Membership-privacy defenses shared by the image and the voice paths.

- :mod:`.registry`: every defense as a registered name with its stage, parameters and paths;
  :func:`~.registry.parse_defense` reads ``"name:key=value,..."`` specs and
  :func:`~.registry.parse_defenses` combinations of them (``"dropout:p=0.5+augment"``).
- :mod:`.dpsgd`: DP-SGD through Opacus (validate / fix the module, wrap, epsilon at a delta
  below 1/n, and what that epsilon covers).
- :mod:`.advreg`: adversarial regularization (Nasr et al. 2018), generic over logits.
- :mod:`.serving`: the output policy (``full`` or a serving defense: top-k, rounding,
  label-only) that hardens the device's voice answers and CIFAR-10 probability answers.

Third-party imports only: ``models/`` imports no project package but ``models``.
"""
