"""``device-sim train`` and ``device-sim eval``: the vendor trains and scores the recognizer.

``train`` mirrors :func:`models.asr.train.train_recognizer` (utterances from a manifest,
optionally restricted to one split of a splits file); ``eval`` mirrors
:func:`models.asr.evaluate.evaluate_recognizer` and prints PER overall and per speaker.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from common.cli_options import (
    click_errors,
    config_file_option,
    existing_dir_option,
    manifest_option,
    out_dir_option,
    seed_option,
    splits_option,
)
from corpora.manifest import ManifestError, manifest_path, read_manifest
from corpora.splits import SplitError, speakers_of

_threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch intra-op threads."
)


def _split_options(only: str, example: str):
    """``--splits`` and ``--split`` (checked by :func:`_utterances`): one split's speakers only."""

    def decorate(f):
        f = click.option("--split", default=None, help=f"Split name, e.g. {example}.")(f)
        text = f"Speaker splits JSON; with --split, {only} that split's speakers."
        return splits_option(text, path_type=Path)(f)

    return decorate


def _utterances(manifest: Path, splits: Path | None, split: str | None, speakers: tuple[str, ...]):
    if (splits is None) != (split is None):
        raise click.UsageError("--splits and --split go together")
    wanted = set(speakers) or None
    with click_errors(ManifestError, SplitError):
        if splits is not None:
            in_split = set(speakers_of(splits, split))
            wanted = in_split if wanted is None else wanted & in_split
        return read_manifest(manifest, None if wanted is None else sorted(wanted))


@click.command()
@manifest_option()
@out_dir_option(
    "Checkpoint folder to write (model.safetensors, model.json, data.json).", path_type=Path
)
@_split_options("train only on", "target_members")
@config_file_option("YAML of config overrides (see models/asr/config.py).", path_type=Path)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Max epochs of the final stage."
)
@seed_option("Seed of split, init and shuffling.")
@_threads_option
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Feature cache folder [default: 'features' beside the manifest].",
)
@click.option(
    "--defense",
    default="none",
    show_default=True,
    help="Training defense NAME[:key=value,...]: none, l2:weight_decay=W, dropout:p=P, "
    "advreg:lam=L, dpsgd:noise_multiplier=S,max_grad_norm=C (see models/asr/defenses.py); "
    "several training defenses combine with +; applied on top of --config.",
)
def train(
    manifest: Path,
    out: Path,
    splits: Path | None,
    split: str | None,
    config_path: Path | None,
    epochs: int | None,
    seed: int,
    threads: int | None,
    cache_dir: Path | None,
    defense: str,
) -> None:
    """Train the recognizer on the manifest's speakers (or one split of them)."""
    import torch

    from models.asr.config import ConfigError, load_config, merge_config
    from models.asr.defenses import reference_utterances, voice_defense
    from models.asr.train import TrainingDataError, train_recognizer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if threads is not None:
        torch.set_num_threads(threads)
    with click_errors(ValueError, kind=click.BadParameter, param_hint="--defense"):
        chosen = voice_defense(defense)
    if "serve" in chosen.stage.split("+"):
        raise click.BadParameter(
            f"{chosen.name} has a serving defense: train without it and serve with "
            f"`device-sim serve --output {chosen.output}`",
            param_hint="--defense",
        )
    with click_errors(ConfigError, ManifestError, ValueError, kind=click.UsageError):
        config = load_config(config_path, {"training": {"epochs": epochs}} if epochs else None)
        config = merge_config(config, chosen.config)
        reference = reference_utterances(manifest, config)
    utts = _utterances(manifest, splits, split, ())
    cache = cache_dir if cache_dir is not None else manifest_path(manifest).parent / "features"
    with click_errors(TrainingDataError):
        rec, report = train_recognizer(
            utts, config, seed=seed, out_dir=out, cache_dir=cache, reference=reference
        )
    d = report["data"]
    click.echo(f"model {rec.model_id} written to {out}")
    click.echo(
        f"speakers {d['speakers']}  train {d['train']}  dev {d['dev']}  held out {d['heldout']}  "
        f"skipped {d['skipped']}  targets: {report['targets']}"
    )
    for s in report["skipped"]:
        click.echo(f"  skipped {s['utt_id']}: {s['reason']}")
    last = report["epochs"][-1]
    click.echo(
        f"epochs {len(report['epochs'])}  last dev PER {last['dev_per']:.3f}  "
        f"train {report['train_frames_per_second']:.0f} frames/s  "
        f"wall {report['wall_seconds']:.0f} s"
    )
    dp = report["defenses"].get("dpsgd")
    if dp is not None:
        from models.privacy.dpsgd import describe_guarantee

        click.echo(describe_guarantee(dp))


@click.command()
@existing_dir_option("--model", "model_dir", help="Checkpoint folder.", path_type=Path)
@manifest_option()
@click.option("--speakers", multiple=True, help="Evaluate only these speakers (repeatable).")
@_split_options("evaluate only", "target_nonmembers")
@click.option(
    "--utterances",
    "subset",
    type=click.Choice(["all", "train", "dev", "heldout", "unseen"]),
    default="all",
    show_default=True,
    help="Which utterances by the checkpoint's data.json: 'unseen' = not trained on.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@_threads_option
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the full result (per utterance) as JSON.",
)
def evaluate(
    model_dir: Path,
    manifest: Path,
    speakers: tuple[str, ...],
    splits: Path | None,
    split: str | None,
    subset: str,
    batch_size: int,
    threads: int | None,
    json_out: Path | None,
) -> None:
    """Decode a manifest's utterances and print PER (39 phones) overall and per speaker."""
    from models.asr.evaluate import evaluate_recognizer
    from models.asr.recognizer import CheckpointError, load_recognizer
    from models.asr.train import DATA_JSON_NAME

    with click_errors(CheckpointError):
        rec = load_recognizer(model_dir, threads=threads)
    utts = _utterances(manifest, splits, split, speakers)
    if subset != "all":
        data_path = model_dir / DATA_JSON_NAME
        if not data_path.is_file():
            raise click.ClickException(f"{data_path}: missing; needed for --utterances {subset}")
        data = json.loads(data_path.read_text())
        trained = set(data["train"])
        keep = (
            (lambda u: u.utt_id not in trained)
            if subset == "unseen"
            else (lambda u: u.utt_id in set(data[subset]))
        )
        utts = [u for u in utts if keep(u)]
    if not utts:
        raise click.ClickException("no utterances to evaluate")
    result = evaluate_recognizer(rec, utts, batch_size=batch_size)
    o = result["overall"]
    click.echo(
        f"model {rec.model_id}  utterances {o['utterances']}  skipped {len(result['skipped'])}"
    )
    for s in result["skipped"]:
        click.echo(f"  skipped {s['utt_id']}: {s['reason']}")
    click.echo(
        f"{'speaker':<16}{'utts':>6}{'ref':>8}{'sub':>6}{'del':>6}{'ins':>6}{'PER%':>8}"
        f"{'loglike/fr':>12}"
    )
    for spk, d in result["per_speaker"].items():
        n = sum(1 for r in result["utterances"] if r["speaker"] == spk)
        click.echo(
            f"{spk:<16}{n:>6}{d['ref_len']:>8}{d['subs']:>6}{d['dels']:>6}{d['ins']:>6}"
            f"{100 * d['per']:>8.2f}{d['mean_log_like_per_frame']:>12.3f}"
        )
    click.echo(
        f"{'OVERALL':<16}{o['utterances']:>6}{o['ref_len']:>8}{o['subs']:>6}{o['dels']:>6}"
        f"{o['ins']:>6}"
        f"{100 * o['per']:>8.2f}{o['mean_log_like_per_frame']:>12.3f}"
    )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1))
