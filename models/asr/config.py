"""The recognizer's configuration: defaults, YAML loading and checked overrides.

One nested dict drives features, HMM, network, training and decoding; it is stored in
``model.json`` with every checkpoint so that a loaded model decodes exactly as trained.
Unknown keys are refused with a clear error (a typo must never be silently ignored).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from common.config_merge import ConfigError, deep_merge
from models.privacy.registry import ADVREG_WITH_DPSGD

#: CMVN modes: ``utterance`` (each utterance its own mean/std), ``speaker`` (stats pooled over
#: a speaker's utterances in training and evaluation; a lone utterance on the device falls back
#: to its own stats), ``global`` (training-set stats stored in ``model.json``), ``none``.
CMVN_MODES = ("utterance", "speaker", "global", "none")

#: Target modes: ``auto`` (alignment when every utterance has one, else transcript),
#: ``alignment`` (states split evenly inside each aligned phone) or ``transcript`` (flat start).
TARGET_MODES = ("auto", "alignment", "transcript")

#: Where adversarial regularization takes its reference (non-member) frames from.
ADVREG_REFERENCES = ("dev", "speakers")

DEFAULT_CONFIG: dict = {
    "features": {
        "sample_rate": 16000,  # Hz; other rates are refused, not resampled
        "num_mel_bins": 40,
        "frame_length_ms": 25.0,
        "frame_shift_ms": 10.0,
        "cmvn": "utterance",
        "context": 5,  # frames of left and right context spliced for the MLP
    },
    "hmm": {
        "states_per_phone": 3,
        "lm_smoothing": 0.5,  # add-k smoothing of the bigram phone LM
    },
    "network": {
        # 4x1024 (PyTorch-Kaldi) is reachable via config; 4x512 keeps 60-speaker training on
        # two CPU cores well under 15 minutes (see BENCHMARKS.md).
        "hidden": [512, 512, 512, 512],
        "dropout": 0.15,
        "batch_norm": True,
    },
    "training": {
        "targets": "auto",
        "heldout_utterances_per_speaker": 2,  # never trained on; recorded in data.json
        "dev_utterances_per_speaker": 1,  # lr halving / early stopping; recorded in data.json
        "epochs": 12,  # max epochs of the final stage
        "realign_iterations": 1,  # forced re-alignments (alignment targets), each after
        "transcript_realign_iterations": 3,  # ... (flat-start targets) `epochs_per_realign`
        "epochs_per_realign": 2,
        "batch_size": 256,  # frames
        "learning_rate": 0.002,  # Adam
        "weight_decay": 0.0,
        "lr_halving_factor": 0.5,
        "min_improvement": 0.002,  # relative dev-loss gain below which the lr is halved
        "patience": 2,  # halvings without improvement before early stopping
        "tune_decoding": True,  # grid-search acoustic scale / insertion penalty on dev
        # Defenses against membership inference (see models/asr/defenses.py for the named
        # settings; L2 is `weight_decay` above, dropout is `network.dropout`).
        "advreg": {
            # Nasr et al. (2018) adversarial regularization at frame level: an inference model
            # sees the network's state posteriors and the target state of member (training)
            # frames and of reference frames; the network is trained on its loss plus
            # `lam` x the inference model's gain on the members. 0 turns the game off.
            "lam": 0.0,
            # reference (non-member) frames: `dev` = the dev utterances of the training
            # speakers (unseen audio of member speakers: needs no further data, but teaches
            # only "trained audio vs other audio of the same voices"); `speakers` = the
            # utterances of `reference_speakers` (other voices: the user-level question)
            "reference": "dev",
            "reference_speakers": [],
            "attack_lr": 0.001,  # Adam, inference model
            "k_steps": 1,  # inference-model steps per network step (k in Nasr et al.)
            "warmup_epochs": 1,  # plain epochs before the game starts
        },
        "dpsgd": {
            # DP-SGD through Opacus over mini-batches of spliced windows (Poisson sampling):
            # epsilon is per window of 2 * context + 1 frames, neither per frame nor per
            # speaker, and covers the network's SGD only (models/asr/trainer.py); batch norm is
            # replaced by group norm (ModuleValidator.fix). Refused with advreg.
            "enabled": False,
            "noise_multiplier": 1.0,  # sigma
            "max_grad_norm": 1.0,  # per-window gradient clipping norm C
            # epsilon is reported at delta = min(this, 1 / (10 n)), n = training windows
            "delta": 1e-5,
            # `ghost`: Opacus' fast gradient clipping (same clipping, ~10x faster here than
            # materialising per-window gradients, `hooks`)
            "grad_sample_mode": "ghost",
        },
    },
    "decoding": {
        "acoustic_scale": 0.3,
        "lm_weight": 1.0,
        "insertion_penalty": 0.0,  # log score added per phone entered (> 0 favours more phones)
        "min_frames": 10,  # shorter audio is refused as too_short
    },
}


def merge_config(base: dict, overrides: dict, where: str = "config") -> dict:
    """Return ``base`` updated by ``overrides``; every override key must exist in ``base``
    (:func:`common.config_merge.deep_merge`, strict; :class:`ConfigError` otherwise)."""
    return deep_merge(base, overrides, strict=True, where=where)


def validate_config(config: dict) -> dict:
    """Check values that have a closed set of choices; return the config unchanged."""
    if config["features"]["cmvn"] not in CMVN_MODES:
        raise ConfigError(
            f"features.cmvn: unknown mode {config['features']['cmvn']!r} "
            f"(known: {', '.join(CMVN_MODES)})"
        )
    if config["training"]["targets"] not in TARGET_MODES:
        raise ConfigError(
            f"training.targets: unknown mode {config['training']['targets']!r} "
            f"(known: {', '.join(TARGET_MODES)})"
        )
    adv = config["training"]["advreg"]
    if adv["reference"] not in ADVREG_REFERENCES:
        raise ConfigError(
            f"training.advreg.reference: unknown {adv['reference']!r} "
            f"(known: {', '.join(ADVREG_REFERENCES)})"
        )
    if float(adv["lam"]) < 0:
        raise ConfigError("training.advreg.lam: must be >= 0")
    dp = config["training"]["dpsgd"]
    if dp["enabled"] and (float(dp["noise_multiplier"]) < 0 or float(dp["max_grad_norm"]) <= 0):
        raise ConfigError("training.dpsgd: noise_multiplier must be >= 0 and max_grad_norm > 0")
    if dp["enabled"] and not 0.0 < float(dp["delta"]) < 1.0:
        raise ConfigError(f"training.dpsgd.delta: must be in (0, 1), got {dp['delta']!r}")
    if dp["enabled"] and float(adv["lam"]) > 0:
        raise ConfigError(f"training.advreg.lam > 0 with training.dpsgd: {ADVREG_WITH_DPSGD}")
    if dp["grad_sample_mode"] not in ("ghost", "hooks"):
        raise ConfigError(
            f"training.dpsgd.grad_sample_mode: {dp['grad_sample_mode']!r} is not ghost or hooks"
        )
    if int(config["hmm"]["states_per_phone"]) < 1:
        raise ConfigError("hmm.states_per_phone: must be >= 1")
    return config


def resolve_config(overrides: dict | None = None) -> dict:
    """Defaults updated by ``overrides`` (checked), validated."""
    return validate_config(merge_config(DEFAULT_CONFIG, overrides or {}))


def load_config(path: str | Path | None, overrides: dict | None = None) -> dict:
    """Read a YAML config of overrides (may be ``None``), apply ``overrides`` on top."""
    cfg = DEFAULT_CONFIG
    if path is not None:
        p = Path(path)
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError as e:
            raise ConfigError(f"{p}: config file not found") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from e
        if not isinstance(doc, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        cfg = merge_config(cfg, doc, str(p))
    return validate_config(merge_config(cfg, overrides or {}))
