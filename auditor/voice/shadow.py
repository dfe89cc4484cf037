"""Shadow recognizers: the target's recipe trained on the auditor's own speakers.

The auditor's shadow pool (a split disjoint from every target speaker, see
:mod:`corpora.splits`) is divided per shadow into IN speakers (trained on) and OUT speakers
(never seen by that shadow). With an even ``k`` shadows come in complementary pairs, so each
pool speaker is IN for exactly half of them; that gives the attack balanced IN/OUT examples of
every speaker and lets :class:`auditor.voice.attack.CalibratedUserTest` fit both distributions.
Shadows (and, in the demo, the target itself) train in parallel through one executor
(:mod:`auditor.executor`); a trained shadow is cached under a hash of its (config, speakers,
seed, manifest, training code) and reused when nothing changed.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auditor.executor import as_executor
from common.hashing import file_digest, json_digest
from corpora.manifest import manifest_path, read_manifest
from corpora.splits import draw_splits

log = logging.getLogger(__name__)

SHADOW_JSON_NAME = "shadow.json"


@dataclass(frozen=True)
class ShadowModel:
    """A trained shadow: checkpoint folder, IN and OUT speakers, seed."""

    name: str
    path: Path
    speakers_in: tuple[str, ...]
    speakers_out: tuple[str, ...]
    seed: int

    def data(self) -> dict:
        """The checkpoint's ``data.json`` (train / dev / heldout utterance ids)."""
        return json.loads((self.path / "data.json").read_text())


def shadow_splits(pool: Sequence[str], k: int, seed: int) -> list[dict[str, list[str]]]:
    """Divide ``pool`` into IN/OUT halves for ``k`` shadows (disjoint within each shadow).

    Shadows ``2m`` and ``2m + 1`` use complementary halves of one seeded draw
    (:func:`corpora.splits.draw_splits`, successive draws of one generator); an odd last shadow
    gets a fresh random half.

    Returns
    -------
    list of ``{"in": [...], "out": [...]}``, each list sorted.

    Examples
    --------
    >>> s = shadow_splits(["a", "b", "c", "d"], 2, seed=0)
    >>> sorted(s[0]["in"] + s[1]["in"]) == ["a", "b", "c", "d"]
    True
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 shadow, got {k}")
    pool = sorted(set(pool))
    if len(pool) < 2:
        raise ValueError(f"the shadow pool needs at least 2 speakers, has {len(pool)}")
    rng = np.random.default_rng(seed)
    halves = {"in": len(pool) // 2, "out": len(pool) - len(pool) // 2}
    out: list[dict[str, list[str]]] = []
    for j in range(k):
        if j % 2 == 0:  # sorted indices into the sorted pool: sorted speakers
            drawn = draw_splits(len(pool), halves, rng, unit="speakers", where="the shadow pool")
            out.append({name: [pool[i] for i in idx] for name, idx in drawn.items()})
        else:
            prev = out[-1]
            out.append({"in": prev["out"], "out": prev["in"]})
    return out


def cache_key(config: dict, speakers: Sequence[str], seed: int, manifest: str | Path) -> str:
    """Hash of what determines a trained model: resolved config, speakers, seed, manifest, code.

    The config is resolved first (defaults filled in), so overrides and a full config that mean
    the same training give the same key. The code is the source of the packages that train a
    recognizer (:func:`training_code_digest`): a model trained by older code is never reused.
    """
    from models.asr.config import resolve_config

    doc = {
        "config": resolve_config(config),
        "speakers": sorted(speakers),
        "seed": int(seed),
        "manifest": file_digest(manifest_path(manifest)),
        "code": training_code_digest(),
    }
    return json_digest(doc)[:16]


@functools.cache
def training_code_digest() -> str:
    """SHA-256 over the source of the layers a recognizer is trained with.

    ``models`` (recognizer, features, defenses), ``corpora`` (audio, manifests, phones,
    lexicon) and ``common``.
    """
    import common
    import corpora
    import models

    return json_digest(
        {
            p.__name__: file_digest(Path(p.__file__).parent, "*.py")
            for p in (common, corpora, models)
        }
    )


class ShadowTrainingError(RuntimeError):
    """No shadow could be trained."""


def train_job(tolerate: bool, **job) -> str | dict:
    """Executor job: :func:`train_model_job`; with ``tolerate`` a failure comes back as
    ``{"out_dir", "failed"}`` (a shadow is left out) instead of stopping every other job."""
    if not tolerate:
        return train_model_job(**job)
    try:
        return train_model_job(**job)
    except Exception as e:  # any failure of one shadow's training: reported, left out
        return {"out_dir": job["out_dir"], "failed": f"{type(e).__name__}: {e}"}


def train_model_job(
    manifest: str, speakers: list[str], config: dict, seed: int, out_dir: str
) -> str:
    """Executor job: train one recognizer on ``speakers`` into ``out_dir`` (atomic rename).

    A config whose adversarial regularization takes its reference frames from other speakers
    (``training.advreg.reference_speakers``) gets their utterances from the same manifest.
    """
    from models.asr.defenses import reference_utterances
    from models.asr.train import train_recognizer

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    utts = read_manifest(manifest, speakers)
    reference = reference_utterances(manifest, config)
    train_recognizer(utts, config, seed=seed, out_dir=tmp, progress=False, reference=reference)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return str(out)


def is_trained(path: Path) -> bool:
    """A finished checkpoint folder (model, data.json) is there."""
    return all((path / n).is_file() for n in ("model.json", "model.safetensors", "data.json"))


def train_shadows(
    manifest: str | Path,
    pool: Sequence[str],
    config: dict,
    *,
    k: int = 2,
    seed: int = 0,
    cache_dir: str | Path,
    executor="local",
    extra_jobs: Sequence[dict] = (),
) -> tuple[list[ShadowModel], list]:
    """Train (or reuse) ``k`` shadow recognizers on IN/OUT halves of the shadow ``pool``.

    Parameters
    ----------
    manifest : prepared corpus manifest (file or folder).
    pool : the auditor's shadow speakers (must not overlap the target's speakers).
    config : recognizer config overrides (the target's recipe).
    k : number of shadows.
    seed : seeds the IN/OUT halves; shadow ``j`` trains with seed ``seed + 1 + j``.
    cache_dir : shadows live in ``<cache_dir>/shadow-<key>/``; an existing one is reused.
    executor : ``"local"``, ``"ray"``, ``"serial"`` or an executor object.
    extra_jobs : further :func:`train_model_job` keyword dicts run in the same executor map
        (the demo trains the target alongside the shadows); their results are returned too.

    Returns
    -------
    shadows, extra_results
        A shadow whose training fails is left out (logged); :class:`ShadowTrainingError` when
        none is left. A failed extra job (the target) stops everything, as before.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    shadows, jobs = [], []
    for j, split in enumerate(shadow_splits(pool, k, seed)):
        s_seed = seed + 1 + j
        key = cache_key(config, split["in"], s_seed, manifest)
        path = cache / f"shadow-{key}"
        shadow = ShadowModel(f"shadow-{j}", path, tuple(split["in"]), tuple(split["out"]), s_seed)
        shadows.append(shadow)
        if is_trained(path) and (path / SHADOW_JSON_NAME).is_file():
            log.info("%s: reusing cached %s", shadow.name, path)
            continue
        jobs.append(
            {
                "manifest": str(manifest),
                "speakers": list(split["in"]),
                "config": config,
                "seed": s_seed,
                "out_dir": str(path),
            }
        )
    all_jobs = [{"tolerate": False, **j} for j in extra_jobs] + [
        {"tolerate": True, **j} for j in jobs
    ]
    results = as_executor(executor).map(train_job, all_jobs, desc="training models")
    failed = {r["out_dir"]: r["failed"] for r in results if isinstance(r, dict) and "failed" in r}
    for shadow in [s for s in shadows if str(s.path) in failed]:
        log.warning("%s: training failed, left out: %s", shadow.name, failed[str(shadow.path)])
        shadows.remove(shadow)
    if not shadows:
        raise ShadowTrainingError(f"every shadow failed to train: {sorted(failed.values())[:3]}")
    for shadow in shadows:
        doc = {
            "name": shadow.name,
            "in": list(shadow.speakers_in),
            "out": list(shadow.speakers_out),
            "seed": shadow.seed,
        }
        (shadow.path / SHADOW_JSON_NAME).write_text(json.dumps(doc, indent=1))
    return shadows, results[: len(extra_jobs)]


def load_shadow(path: str | Path) -> ShadowModel:
    """Read a cached shadow folder back (``shadow.json`` + checkpoint)."""
    p = Path(path)
    if not is_trained(p) or not (p / SHADOW_JSON_NAME).is_file():
        raise FileNotFoundError(f"{p}: not a trained shadow folder")
    doc = json.loads((p / SHADOW_JSON_NAME).read_text())
    return ShadowModel(doc["name"], p, tuple(doc["in"]), tuple(doc["out"]), int(doc["seed"]))
