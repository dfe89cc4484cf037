"""The user-level audit of a voice device, end to end on one machine.

Stages (each timed into ``stages.json``): prepare the corpus (an eSpeak corpus synthesized, or a
TIMIT / Kaldi one read), draw speaker splits, train the target (vendor side) and the shadows
(auditor side) through one executor, start the device (``device-sim serve`` as a subprocess with
its private broker), audit the member and non-member users over MQTT
(:func:`auditor.voice.audit.audit_users`), write the reports. The run directory receives the resolved
config with the seed, the splits, the corpus, the models, the query record, ``metrics.json`` and
``report/``. Corpus, models and answered queries are reused on a rerun with the same settings.

The config is :data:`AUDIT_CONFIG` (``auditor/voice/demo.yaml``): the one of ``auditor demo`` and of
``recipes/timit_user_audit`` (whose ``config.yaml`` links to it), read by :func:`audit_config`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from auditor.config import apply_overrides, apply_section, load_config, prepare_run_dir
from device_sim.launch import serve_in_subprocess

#: The audit's config: corpus, splits, recognizer, shadows, device, audit, and the ``timit``
#: (``--corpus``) and ``quick`` override sections.
AUDIT_CONFIG = Path(__file__).with_name("demo.yaml")


def audit_config(
    path: str | Path = AUDIT_CONFIG,
    overrides: Iterable[str] = (),
    *,
    quick: bool = False,
    corpus: str | Path | None = None,
) -> dict:
    """The YAML, then its ``timit`` section (with ``corpus``), ``quick`` section, ``overrides``.

    ``corpus`` is a TIMIT root: it needs the YAML's ``timit`` section (``ValueError``
    otherwise) and becomes ``corpus.path``. Both sections are removed from the result.
    """
    config = load_config(path)
    if corpus is not None and "timit" not in config:
        raise ValueError(f"{path} has no timit section; --corpus applies to config.yaml")
    config = apply_section(config, "timit", use=corpus is not None)
    if corpus is not None:
        config["corpus"]["path"] = str(Path(corpus).resolve())
    config = apply_section(config, "quick", use=quick)
    return apply_overrides(config, overrides, source=str(path))


def prepare_audit_corpus(run_dir: Path, cfg: dict, seed: int, root: Path | None = None) -> Path:
    """The manifest of the configured corpus, prepared into ``run_dir/prepared``.

    ``cfg["format"]`` is ``synthetic`` (synthesized into ``run_dir/corpus`` unless the same one
    is there), ``timit`` or ``kaldi`` (read from ``cfg["path"]``, relative to ``root``).
    """
    from corpora.prepare import prepare_corpus
    from corpora.synth.corpus import synthesize_corpus

    if cfg["format"] != "synthetic":
        src = Path(cfg["path"])
        src = src if src.is_absolute() or root is None else root / src
        print(f"[audit] preparing {cfg['format']} corpus {src}", flush=True)
        return prepare_corpus(src, cfg["format"], run_dir / "prepared", progress=True).manifest
    corpus = run_dir / "corpus"
    wanted = {
        "n_speakers": cfg["n_speakers"],
        "utterances_per_speaker": cfg["utterances_per_speaker"],
        "spread": cfg["spread"],
        "seed": seed,
    }
    info = corpus / "synth_info.json"
    have = json.loads(info.read_text()) if info.is_file() else {}
    if any(have.get(k) != v for k, v in wanted.items()):
        print(
            f"[audit] synthesizing {cfg['n_speakers']} speakers x "
            f"{cfg['utterances_per_speaker']} utterances",
            flush=True,
        )
        synthesize_corpus(corpus, **wanted)
    else:
        print(f"[audit] reusing corpus {corpus}", flush=True)
    return prepare_corpus(corpus, "timit", run_dir / "prepared", progress=True).manifest


def run_user_audit(
    cfg: dict,
    out: str | Path,
    *,
    seed: int = 0,
    root: Path | None = None,
    manifest: Path | None = None,
    splits_path: Path | None = None,
    models_dir: Path | None = None,
    reports: bool = True,
) -> dict:
    """The whole pipeline for one config (:data:`AUDIT_CONFIG`'s sections); see the module
    docstring.

    ``root`` resolves a relative ``corpus.path`` (the recipes pass the repository root).
    Several audits of one corpus (e.g. one per defense setting) share its preparation:
    ``manifest`` (a prepared corpus: no corpus stage), ``splits_path`` (an existing splits
    file, read instead of drawn) and ``models_dir`` (the model cache: a target or shadow whose
    recipe, speakers and seed did not change is reused). ``cfg["device"]["output"]`` (default
    ``full``) hardens the device's answers; the audit sees the shadows' answers through the
    policy the device declares (see :func:`auditor.voice.audit.audit_users`). ``reports=False`` skips
    the HTML.
    Returns ``metrics.json``'s document plus ``stages`` (seconds per stage).
    """
    from auditor.voice.reports import write_reports

    run_dir = prepare_run_dir(out, cfg, seed)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    if manifest is None:
        manifest = prepare_audit_corpus(run_dir, cfg["corpus"], seed, root)
    stages["corpus"] = time.perf_counter() - t0

    t = time.perf_counter()
    splits = _splits(manifest, run_dir, cfg, seed, splits_path)
    models_dir = Path(models_dir) if models_dir is not None else run_dir / "models"
    target_dir, shadows = _train_target_and_shadows(manifest, splits, cfg, seed, models_dir)
    stages["train_target_and_shadows"] = time.perf_counter() - t
    metrics = _audit_device(run_dir, manifest, splits, cfg, seed, target_dir, shadows, stages)
    t = time.perf_counter()
    summary = write_reports(run_dir) if reports else None
    stages["reports"] = time.perf_counter() - t
    stages["total"] = time.perf_counter() - t0
    (run_dir / "stages.json").write_text(json.dumps(stages, indent=1))
    _print_results(metrics, stages, run_dir, summary)
    return metrics | {
        "stages": stages,
        "target_dir": str(target_dir),
        "splits": splits,
        "manifest": str(manifest),
    }


def _splits(
    manifest: Path, run_dir: Path, cfg: dict, seed: int, splits_path: Path | None
) -> dict[str, list[str]]:
    """The splits of ``splits_path``, or drawn into ``run_dir/splits.json`` when it is None."""
    from corpora.splits import make_splits, read_splits

    if splits_path is None:
        splits_path = run_dir / "splits.json"
        make_splits(manifest, splits_path, seed=seed, **cfg["splits"])
    splits = read_splits(splits_path)
    print(f"[audit] splits: {', '.join(f'{k}={len(v)}' for k, v in splits.items())}", flush=True)
    return splits


def _train_target_and_shadows(
    manifest: Path, splits: dict, cfg: dict, seed: int, models_dir: Path
) -> tuple[Path, list]:
    """Train (or reuse from ``models_dir``) the target and the shadows through one executor."""
    from auditor.executor import get_executor
    from auditor.voice.shadow import cache_key, is_trained, train_shadows

    rec_cfg = cfg["recognizer"]
    key = cache_key(rec_cfg, splits["target_members"], seed, manifest)
    target_dir = models_dir / f"target-{key}"
    extra = (
        []
        if is_trained(target_dir)
        else [
            {
                "manifest": str(manifest),
                "speakers": splits["target_members"],
                "config": rec_cfg,
                "seed": seed,
                "out_dir": str(target_dir),
            }
        ]
    )
    sh = cfg["shadows"]
    executor = get_executor(
        sh["executor"], max_workers=sh["workers"], threads_per_worker=sh["threads_per_worker"]
    )
    print(
        f"[audit] training the target{' (cached)' if not extra else ''} and {sh['k']} shadows "
        f"({sh['executor']} executor, {sh['workers']} workers)",
        flush=True,
    )
    shadows, _ = train_shadows(
        manifest,
        splits["shadow_pool"],
        rec_cfg,
        k=sh["k"],
        seed=seed,
        cache_dir=models_dir,
        executor=executor,
        extra_jobs=extra,
    )
    return target_dir, shadows


def _audit_device(
    run_dir: Path,
    manifest: Path,
    splits: dict,
    cfg: dict,
    seed: int,
    target_dir: Path,
    shadows: list,
    stages: dict[str, float],
) -> dict:
    """Serve the target as a device and audit its users over MQTT; times two ``stages``."""
    from auditor.voice.audit import audit_users

    target_data = json.loads((target_dir / "data.json").read_text())
    dev = cfg["device"]
    t = time.perf_counter()
    with serve_in_subprocess(
        target_dir,
        dev["device_id"],
        broker_kind=dev["broker_kind"],
        profile=dev["profile"],
        log_path=run_dir / "device.log",
        output=dev.get("output", "full"),
    ) as device:
        broker = device.url
        stages["device_start"] = time.perf_counter() - t
        print(f"[audit] device {dev['device_id']} online at {broker}; auditing", flush=True)
        t = time.perf_counter()
        au = cfg["audit"]
        metrics = audit_users(
            manifest,
            run_dir,
            members=splits["target_members"],
            nonmembers=splits["target_nonmembers"],
            shadows=shadows,
            broker=broker,
            device_id=dev["device_id"],
            target_data=target_data,
            audios_per_user=au["audios_per_user"],
            users_sweep=au["users_sweep"],
            audios_sweep=au["audios_sweep"],
            n_estimators=au["n_estimators"],
            n_bootstrap=au["n_bootstrap"],
            timeout_s=au["timeout_s"],
            retries=au["retries"],
            seed=seed,
        )
        stages["audit"] = time.perf_counter() - t
    return metrics


def _print_results(
    metrics: dict, stages: dict[str, float], run_dir: Path, summary: Path | None
) -> None:
    from auditor.voice.reports import format_table
    from auditor.voice.sweep import ATTACKS

    for cond in metrics["conditions"]:
        print()
        for attack in ATTACKS:
            if f"{cond}/{attack}" in metrics["attacks"]:
                print(format_table(metrics, cond, attack))
    print(
        f"\n[audit] queries: {metrics['queries']['sent']} sent at "
        f"{metrics['queries']['queries_per_second']:.1f}/s; stages (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
    )
    print(f"[audit] metrics: {run_dir / 'metrics.json'}\n[audit] report: {summary}")
