"""The trained recognizer: audio in, phones with scores out; saved and loaded without pickle.

A :class:`Recognizer` bundles the acoustic network, the HMM parameters, the CMVN statistics
and the config it was trained with. ``transcribe`` checks the audio, computes features
(:mod:`models.asr.features`), runs the network once over all frames, turns posteriors into
scaled log-likelihoods (log posterior - log prior) and decodes them with the phone-loop
Viterbi (:mod:`models.asr.viterbi`). The smart speaker (``device_sim``) and the auditor's
shadow models use this class; a checkpoint directory holds ``model.safetensors`` (network
weights) and ``model.json`` (everything else, as JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from common.hashing import arrays_digest, digest
from corpora.phones import PHONES48, fold_48_to_39
from models.asr.features import (
    RecognizerInputError,
    apply_cmvn,
    check_audio,
    cmvn_stats,
    fbank,
    splice,
)
from models.asr.hmm import HmmParams
from models.asr.network import build_network
from models.asr.targets import states_to_phone_segments
from models.asr.viterbi import decode_phone_loop

__all__ = [
    "CheckpointError",
    "Hypothesis",
    "Recognizer",
    "RecognizerInputError",
    "load_recognizer",
    "save_recognizer",
]

CHECKPOINT_FORMAT = "iot-privacy-auditor/asr-dnn-hmm"
CHECKPOINT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
MODEL_JSON_NAME = "model.json"


class CheckpointError(ValueError):
    """A checkpoint directory that is missing files or holds an unknown format."""


@dataclass
class Hypothesis:
    """Decoding result of one utterance.

    Attributes
    ----------
    phones : best-path phones in the 48 set.
    phones39 : the same folded to the 39 scoring set.
    log_like_per_frame : best-path total score (scaled acoustic + transitions + LM) / frames.
    frames : number of 10 ms frames.
    phone_confidences : per phone, the mean posterior of the path's state over its frames.
    segments : per phone, ``(start_frame, end_frame)`` with the end exclusive.
    top_k : per frame, the ``k`` most probable ``(state, posterior)`` pairs, or ``None``.
    """

    phones: list[str]
    phones39: list[str]
    log_like_per_frame: float
    frames: int
    phone_confidences: list[float]
    segments: list[tuple[int, int]]
    top_k: list[list[tuple[int, float]]] | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segments"] = [list(s) for s in self.segments]
        if self.top_k is not None:
            d["top_k"] = [[list(p) for p in frame] for frame in self.top_k]
        return d


class Recognizer:
    """A trained DNN-HMM phone recognizer.

    Parameters
    ----------
    network : frame MLP (any module mapping (frames, input_dim) to (frames, S) logits; the
        device may replace it, e.g. by a dynamically quantised copy).
    config : the full resolved config (see :mod:`models.asr.config`).
    hmm : transitions, priors and LM.
    cmvn_mean, cmvn_std : (mel,) training-set statistics for ``cmvn: global``, else ``None``.
    meta : training facts stored in ``model.json`` (seed, speaker fingerprint, ...).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        config: dict,
        hmm: HmmParams,
        cmvn_mean: torch.Tensor | None = None,
        cmvn_std: torch.Tensor | None = None,
        meta: dict | None = None,
    ):
        self.network = network.eval()
        self.config = config
        self.hmm = hmm
        self.cmvn_mean = cmvn_mean
        self.cmvn_std = cmvn_std
        self.meta = dict(meta or {})
        self.phones: tuple[str, ...] = PHONES48
        if config["features"]["cmvn"] == "global" and cmvn_mean is None:
            raise ValueError("cmvn mode 'global' needs cmvn_mean and cmvn_std")
        doc = json.dumps(self.model_doc(), sort_keys=True)
        self.model_id = digest(bytes.fromhex(_weights_digest(network)), doc)[:12]

    def model_doc(self) -> dict:
        """Everything ``model.json`` holds except ``model_id`` (JSON-serialisable)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "architecture": getattr(self.network, "arch", None),
            "config": self.config,
            "phones": list(self.phones),
            "hmm": self.hmm.to_dict(),
            "cmvn": {
                "mode": self.config["features"]["cmvn"],
                "mean": None if self.cmvn_mean is None else self.cmvn_mean.tolist(),
                "std": None if self.cmvn_std is None else self.cmvn_std.tolist(),
            },
            "training": self.meta,
        }

    # -- features ---------------------------------------------------------------------------

    def normalise(
        self, feats: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Apply the configured CMVN to raw fbanks (frames, mel).

        ``stats`` overrides the statistics for ``speaker`` mode (pooled over a speaker's
        utterances); without it, ``speaker`` and ``utterance`` modes use the utterance itself.
        """
        mode = self.config["features"]["cmvn"]
        if mode == "none":
            return feats
        if mode == "global":
            return apply_cmvn(feats, self.cmvn_mean, self.cmvn_std)
        if mode == "speaker" and stats is not None:
            return apply_cmvn(feats, *stats)
        return apply_cmvn(feats, *cmvn_stats([feats]))

    def raw_features(self, samples: np.ndarray, sample_rate: int) -> torch.Tensor:
        """The audio's fbank (frames, mel), checked; raises :class:`RecognizerInputError`."""
        feat_cfg = self.config["features"]
        check_audio(samples, sample_rate, feat_cfg, int(self.config["decoding"]["min_frames"]))
        return fbank(samples, feat_cfg)

    # -- scoring ----------------------------------------------------------------------------

    @torch.no_grad()
    def log_posteriors(self, normalised: list[torch.Tensor]) -> list[np.ndarray]:
        """Normalised features per utterance -> (frames, S) float64 log state posteriors.

        One network call per utterance, so an utterance's result never depends on what it was
        batched with (a single GEMM over a concatenation may round differently).
        """
        context = int(self.config["features"]["context"])
        out = []
        for f in normalised:
            logits = self.network(splice(f, context)).float()  # (frames, S)
            out.append(torch.log_softmax(logits, dim=-1).double().numpy())
        return out

    def decode_log_posteriors(
        self,
        log_post: list[np.ndarray],
        *,
        top_k: int | None = None,
        decoding: dict | None = None,
    ) -> list[Hypothesis]:
        """Viterbi-decode per-utterance log posteriors; ``decoding`` overrides config values."""
        dec = self.config["decoding"] | (decoding or {})
        s = self.hmm.n_states
        lengths = np.array([lp.shape[0] for lp in log_post])
        loglikes = np.zeros((len(log_post), int(lengths.max()), s))  # (B, T, S), zero padded
        for i, lp in enumerate(log_post):
            loglikes[i, : lp.shape[0]] = lp - self.hmm.log_priors
        paths = decode_phone_loop(
            loglikes,
            lengths,
            self.hmm,
            acoustic_scale=float(dec["acoustic_scale"]),
            lm_weight=float(dec["lm_weight"]),
            insertion_penalty=float(dec["insertion_penalty"]),
        )
        return [
            self._hypothesis(path.states, path.score, lp, top_k)
            for path, lp in zip(paths, log_post, strict=True)
        ]

    def _hypothesis(
        self, states: np.ndarray, score: float, log_post: np.ndarray, top_k: int | None
    ) -> Hypothesis:
        k = self.hmm.states_per_phone
        segs = states_to_phone_segments(states, k)
        post_on_path = np.exp(log_post[np.arange(states.size), states])  # (frames,)
        phones = [self.phones[p] for p, _, _ in segs]
        topk = None
        if top_k:
            idx = np.argsort(-log_post, axis=1, kind="stable")[:, :top_k]  # (frames, k)
            probs = np.exp(np.take_along_axis(log_post, idx, axis=1))
            topk = [
                [(int(i), float(p)) for i, p in zip(ri, rp, strict=True)]
                for ri, rp in zip(idx, probs, strict=True)
            ]
        return Hypothesis(
            phones=phones,
            phones39=fold_48_to_39(phones),
            log_like_per_frame=score / states.size,
            frames=int(states.size),
            phone_confidences=[float(post_on_path[b:e].mean()) for _, b, e in segs],
            segments=[(b, e) for _, b, e in segs],
            top_k=topk,
        )

    # -- public API -------------------------------------------------------------------------

    def transcribe(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        top_k: int | None = None,
        cmvn: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Hypothesis:
        """Decode one utterance (mono float samples in [-1, 1] at ``sample_rate`` Hz)."""
        return self.transcribe_batch([(samples, sample_rate)], top_k=top_k, cmvn=cmvn)[0]

    def transcribe_batch(
        self,
        batch: list[tuple[np.ndarray, int]],
        *,
        top_k: int | None = None,
        cmvn: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[Hypothesis]:
        """Decode several utterances with one batched Viterbi (same results as one by one).

        ``cmvn`` (mean, std) is used only in ``speaker`` CMVN mode (see :meth:`normalise`).
        Raises :class:`RecognizerInputError` (naming the batch position) for refused audio.
        """
        if not batch:
            return []
        feats = []
        for i, (samples, sr) in enumerate(batch):
            try:
                feats.append(self.normalise(self.raw_features(samples, sr), cmvn))
            except RecognizerInputError as e:
                if len(batch) == 1:
                    raise
                raise RecognizerInputError(e.code, f"batch item {i}: {e}") from e
        return self.decode_log_posteriors(self.log_posteriors(feats), top_k=top_k)


def _weights_digest(network: torch.nn.Module) -> str:
    """Digest of the network's tensors (:func:`common.hashing.arrays_digest`; other state
    entries, e.g. packed parameters of a quantised copy, are left out)."""
    state = network.state_dict()
    return arrays_digest(
        {n: t.detach().cpu().numpy() for n, t in state.items() if isinstance(t, torch.Tensor)}
    )


def save_recognizer(recognizer: Recognizer, path: str | Path) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into directory ``path``; returns it."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in recognizer.network.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME))
    doc = recognizer.model_doc() | {"model_id": recognizer.model_id}
    (out / MODEL_JSON_NAME).write_text(json.dumps(doc, indent=1, sort_keys=True))
    return out


def load_recognizer(path: str | Path, *, threads: int | None = None) -> Recognizer:
    """Load a checkpoint directory (never unpickles); ``threads`` sets torch's intra-op threads."""
    p = Path(path)
    for name in (WEIGHTS_NAME, MODEL_JSON_NAME):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: not a recognizer checkpoint ({name} missing)")
    try:
        doc = json.loads((p / MODEL_JSON_NAME).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p / MODEL_JSON_NAME}: not valid JSON ({e})") from e
    if doc.get("format") != CHECKPOINT_FORMAT or doc.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p / MODEL_JSON_NAME}: format {doc.get('format')!r} v{doc.get('version')!r}, "
            f"expected {CHECKPOINT_FORMAT!r} v{CHECKPOINT_VERSION}"
        )
    if threads is not None:
        torch.set_num_threads(int(threads))
    network = build_network(doc["architecture"])
    network.load_state_dict(load_file(str(p / WEIGHTS_NAME)))
    cmvn = doc["cmvn"]
    rec = Recognizer(
        network,
        doc["config"],
        HmmParams.from_dict(doc["hmm"]),
        cmvn_mean=None if cmvn["mean"] is None else torch.tensor(cmvn["mean"], dtype=torch.float32),
        cmvn_std=None if cmvn["std"] is None else torch.tensor(cmvn["std"], dtype=torch.float32),
        meta=doc["training"],
    )
    if rec.model_id != doc.get("model_id"):
        raise CheckpointError(
            f"{p}: weights or model.json changed since saving (model_id mismatch)"
        )
    return rec
