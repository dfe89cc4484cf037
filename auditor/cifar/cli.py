"""``auditor cifar``: train a CIFAR-10 target CNN, then attack it.

Each command's options mirror one library function: ``train-target`` ->
:func:`auditor.cifar.target.train_target`, ``attack`` -> :func:`auditor.cifar.audit.run_attack`.
"""

from __future__ import annotations

import json
import logging

import click

from common.cli_options import (
    address_option,
    click_errors,
    executor_option,
    existing_dir_option,
    out_dir_option,
    seed_option,
)

_cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Decoded-image cache [default: ~/.cache/iot-privacy-auditor/cifar10].",
)


@click.group()
def cifar() -> None:
    """Record-level membership inference on CIFAR-10 (the reference paper's Table 1 setting)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@cifar.command("train-target")
@click.option(
    "--data", required=True, type=click.Path(), help="Zip / class tree / cifar-10-batches-py."
)
@out_dir_option("Target folder to write.")
@click.option(
    "--train-size", required=True, type=click.IntRange(min=1), help="Members (training records)."
)
@seed_option("Seeds the member split and the training.", required=True)
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True, help="L2 coefficient.")
@click.option(
    "--dropout", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads."
)
@click.option(
    "--n-shadow-pool",
    type=click.IntRange(min=0),
    default=None,
    help="Records left to the attacker; shadow and reference models train on halves of it "
    "[default: 2 x train size].",
)
@click.option(
    "--n-nonmembers",
    type=click.IntRange(min=1),
    default=None,
    help="Held-out non-members [default: train size].",
)
@_cache_dir_option
@click.option(
    "--download", is_flag=True, help="Fetch the official CIFAR-10 batches into --data if absent."
)
@click.option(
    "--defense",
    default=None,
    metavar="NAME[:k=v,...]",
    help="A defense of models.privacy.registry or several joined by +, e.g. "
    "dpsgd:noise_multiplier=1.0, topk:k=3 or augment+label_only "
    "[default: none].",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_target_command(
    data,
    out,
    train_size,
    seed,
    epochs,
    batch_size,
    weight_decay,
    dropout,
    threads,
    n_shadow_pool,
    n_nonmembers,
    cache_dir,
    download,
    defense,
    quiet,
) -> None:
    """Train the reference CNN on TRAIN_SIZE seeded members of DATA and save it to OUT."""
    from auditor.cifar.target import train_target

    cnn_config = {
        "epochs": epochs,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "dropout": dropout,
        "num_threads": threads,
    }
    with click_errors(ValueError):  # DatasetError, bad sizes, unknown defenses: a clear message
        summary = train_target(
            data,
            out,
            train_size=train_size,
            seed=seed,
            cnn_config=cnn_config,
            n_shadow_pool=n_shadow_pool,
            n_nonmembers=n_nonmembers,
            cache_dir=cache_dir,
            download=download,
            progress=not quiet,
            defense=defense,
        )
    click.echo(json.dumps(summary, indent=2))


@cifar.command("attack")
@click.option(
    "--attack",
    "attack",
    required=True,
    type=click.Choice(["shokri", "mlleaks", "threshold", "lira"]),
)
@existing_dir_option("--target", "target_dir", help="Folder written by train-target.")
@out_dir_option("Writes metrics.json and ROC plots.")
@seed_option("Seeds the attack and the evaluation subsample.", required=True)
@click.option(
    "--data",
    type=click.Path(),
    default=None,
    help="Dataset [default: the one the target recorded].",
)
@_cache_dir_option
@click.option(
    "--shadow-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs of shadow / reference models [default: the target's].",
)
@click.option(
    "--n-eval",
    type=click.IntRange(min=1),
    default=None,
    help="Members and non-members scored [default: all members, as many non-members].",
)
@click.option("--n-bootstrap", type=click.IntRange(min=0), default=1000, show_default=True)
@executor_option
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Parallel jobs [default: cores]."
)
@address_option
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Attack parameter, e.g. n_shadows=4, shadow_data=model, n_reference=8, "
    "mode=online, percentile=95 (value parsed as YAML). Repeatable.",
)
def attack_command(
    attack,
    target_dir,
    out,
    seed,
    data,
    cache_dir,
    shadow_epochs,
    n_eval,
    n_bootstrap,
    executor,
    workers,
    address,
    params,
) -> None:
    """Run one membership attack against a trained target and score it."""
    from auditor.cifar.audit import run_attack
    from auditor.metrics import METRIC_KEYS

    with click_errors(ValueError):
        metrics = run_attack(
            target_dir,
            attack,
            out,
            seed=seed,
            data=data,
            cache_dir=cache_dir,
            params=parse_params(params),
            shadow_epochs=shadow_epochs,
            executor=executor,
            workers=workers,
            address=address,
            n_eval=n_eval,
            n_bootstrap=n_bootstrap,
        )
    shown = (*METRIC_KEYS, "n_queries", "seconds")
    click.echo(json.dumps({k: metrics.get(k) for k in shown}, indent=2))


def parse_params(items: tuple[str, ...]) -> dict:
    """``("n_shadows=4", "mode=online")`` -> ``{"n_shadows": 4, "mode": "online"}`` (YAML values)."""
    import yaml

    params = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        params[name.strip()] = yaml.safe_load(raw)
    return params
