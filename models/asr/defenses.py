"""The registered defenses (:mod:`models.privacy.registry`) as settings of the voice path.

A defense spec ``"name[:key=value,...]"`` becomes either recognizer config overrides (training
defenses) or the device's ``--output`` policy (serving defenses: the output policy of
:mod:`models.privacy.serving`, spelled as the defense with its defaults filled in):

========== ======================================== ==================================
name       voice setting                            parameters
========== ======================================== ==================================
none       the undefended recipe
l2         ``training.weight_decay`` (Adam, coupled) ``weight_decay``
dropout    ``network.dropout``                      ``p``
advreg     ``training.advreg`` (frame-level Nasr)   ``lam``, ``k_steps``, ``attack_lr``,
                                                    ``warmup_epochs``
dpsgd      ``training.dpsgd`` (Opacus, per window)  ``noise_multiplier``,
                                                    ``max_grad_norm``, ``delta``
topk       ``--output topk:k=K``                    ``k``
rounding   ``--output rounding:decimals=D``         ``decimals``
label_only ``--output label_only``
========== ======================================== ==================================

Defenses combine with ``+`` (:func:`models.privacy.registry.parse_defenses`): the training
parts' overrides are merged and the serving part sets the output policy, e.g.
``"dpsgd:noise_multiplier=0.5+label_only"``. ``advreg`` with ``dpsgd`` is refused: the
inference model would learn from the training frames without noise.

``stacking`` and ``augment`` are refused (CIFAR-10 only); so is advreg's ``ref_fraction`` other
than its default: the voice path's reference frames are the dev utterances or other speakers
(``training.advreg.reference``), not a fraction of the training set.

Examples
--------
>>> d = voice_defense("l2:weight_decay=0.01")
>>> d.config, d.output
({'training': {'weight_decay': 0.01}}, 'full')
>>> voice_defense("rounding").output
'rounding:decimals=1'
>>> d = voice_defense("dropout:p=0.2+l2:weight_decay=0.01+topk:k=3")
>>> d.name, d.stage, d.output
('dropout+l2+topk', 'train+serve', 'topk:k=3')
>>> d.config
{'network': {'dropout': 0.2}, 'training': {'weight_decay': 0.01}}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.config_merge import deep_merge
from corpora.manifest import Utterance, read_manifest
from models.privacy.registry import check_path, describe, get_defense, parse_defenses
from models.privacy.serving import OutputPolicy


@dataclass(frozen=True)
class VoiceDefense:
    """A parsed defense setting of the voice path.

    Attributes
    ----------
    name : registry name (aliases resolved); a combination's names joined by ``+``.
    params : its parameters (defaults filled in); ``{name: params}`` for a combination.
    stage : ``train`` or ``serve``; a combination's distinct stages joined by ``+``.
    config : recognizer config overrides (``{}`` for serving defenses and ``none``).
    output : the device's output policy spec (:attr:`models.privacy.serving.OutputPolicy.spec`;
        ``full`` without a serving defense).
    """

    name: str
    params: dict = field(default_factory=dict)
    stage: str = "train"
    config: dict = field(default_factory=dict)
    output: str = "full"


def voice_defense(spec: str) -> VoiceDefense:
    """Parse ``"name[:key=value,...]"`` (or a ``+`` combination) into a :class:`VoiceDefense`.

    Raises
    ------
    models.privacy.registry.UnknownDefenseError
        For an unknown name (a ``ValueError`` listing the known ones).
    ValueError
        For a bad parameter or combination, or a defense the voice path does not implement.
    """
    parts = [_single(name, params) for name, params in parse_defenses(spec)]
    if len(parts) == 1:
        return parts[0]
    config: dict = {}
    for part in parts:
        config = deep_merge(config, part.config)  # lenient: resolve_config checks keys
    info = describe(spec)
    output = next((p.output for p in parts if p.stage == "serve"), "full")
    return VoiceDefense(info["name"], info["params"], info["stage"], config, output)


def _single(name: str, params: dict) -> VoiceDefense:
    """One registered defense as a :class:`VoiceDefense`."""
    check_path(name, "voice")
    stage = get_defense(name).stage
    if name == "none":
        return VoiceDefense(name, params)
    if stage == "serve":
        return VoiceDefense(name, params, stage, output=OutputPolicy(name, params).spec)
    if name == "l2":
        return VoiceDefense(
            name, params, config={"training": {"weight_decay": params["weight_decay"]}}
        )
    if name == "dropout":
        if not 0.0 <= params["p"] < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {params['p']}")
        return VoiceDefense(name, params, config={"network": {"dropout": params["p"]}})
    if name == "advreg":
        default_fraction = get_defense("advreg").defaults["ref_fraction"]
        if params["ref_fraction"] != default_fraction:
            raise ValueError(
                "advreg ref_fraction does not apply to the voice path: its reference frames are "
                "the dev utterances or other speakers (config training.advreg.reference)"
            )
        keys = ("lam", "k_steps", "attack_lr", "warmup_epochs")
        return VoiceDefense(
            name, params, config={"training": {"advreg": {k: params[k] for k in keys}}}
        )
    if name == "dpsgd":
        keys = ("noise_multiplier", "max_grad_norm", "delta")
        dp = {"enabled": True} | {k: params[k] for k in keys}
        return VoiceDefense(name, params, config={"training": {"dpsgd": dp}})
    raise ValueError(f"defense {name!r} has no voice implementation")  # a newly registered name


def reference_utterances(manifest: str | Path, config: dict) -> list[Utterance] | None:
    """The advreg reference utterances a config names (``reference: speakers``), else ``None``.

    ``config`` is a full or partial recognizer config; the speakers are read from ``manifest``.
    """
    from models.asr.config import resolve_config

    adv = resolve_config(config)["training"]["advreg"]
    if float(adv["lam"]) <= 0 or adv["reference"] != "speakers":
        return None
    speakers: Sequence[str] = adv["reference_speakers"]
    if not speakers:
        raise ValueError("training.advreg.reference is 'speakers' but reference_speakers is empty")
    return read_manifest(manifest, sorted(speakers))
