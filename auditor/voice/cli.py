"""``auditor shadow|audit|report|demo``: the voice-device audit from the command line.

Each command's options mirror one library function: :func:`auditor.voice.shadow.train_shadows`,
:func:`auditor.voice.audit.audit_users`, :func:`auditor.voice.reports.write_reports`,
:func:`auditor.voice.demo.run_demo`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from common.cli_options import (
    address_option,
    click_errors,
    config_file_option,
    executor_option,
    existing_dir_option,
    existing_file_option,
    manifest_option,
    out_dir_option,
    overrides_argument,
    quick_option,
    retries_option,
    seed_option,
    splits_option,
    timeout_option,
)
from models.asr.config import ConfigError, load_config


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError as e:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from e


def _shadow_folders(path: Path) -> list[Path]:
    return sorted(p.parent for p in path.glob("shadow-*/shadow.json"))


@click.command()
@manifest_option("Prepared corpus.", path_type=None)
@splits_option(required=True)
@config_file_option("Recognizer YAML (the target's recipe); default: built-in.")
@click.option("-k", "--shadows", "k", type=int, default=2, show_default=True)
@out_dir_option("Cache folder; shadows already there with the same settings are reused.")
@executor_option
@address_option
@click.option("--workers", type=int, default=None, help="Parallel trainings (default: cores).")
@click.option("--threads-per-worker", type=int, default=1, show_default=True)
@seed_option()
def shadow(
    manifest, splits, config_path, k, out, executor, address, workers, threads_per_worker, seed
):
    """Train k shadow recognizers on IN/OUT halves of the splits' shadow_pool."""
    from auditor.executor import get_executor
    from auditor.voice.shadow import train_shadows
    from corpora.splits import SplitError, speakers_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with click_errors(ConfigError, SplitError):
        config = load_config(config_path)
        pool = speakers_of(splits, "shadow_pool")
    ex = get_executor(
        executor, max_workers=workers, address=address, threads_per_worker=threads_per_worker
    )
    shadows, _ = train_shadows(manifest, pool, config, k=k, seed=seed, cache_dir=out, executor=ex)
    for s in shadows:
        click.echo(f"{s.name}: {s.path} ({len(s.speakers_in)} IN, {len(s.speakers_out)} OUT)")


def _read_users(path: str) -> tuple[list[str], list[str]]:
    try:
        doc = json.loads(Path(path).read_text())
        members, nonmembers = [str(s) for s in doc["members"]], [str(s) for s in doc["nonmembers"]]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise click.ClickException(
            f'{path}: expected JSON {{"members": [...], "nonmembers": [...]}} ({e})'
        ) from e
    return members, nonmembers


@click.command()
@click.option("--device-id", required=True)
@click.option("--broker", required=True, help="mqtt://HOST:PORT of the device's broker.")
@existing_file_option(
    "--users",
    "users_file",
    help='JSON {"members": [...], "nonmembers": [...]}: the audited users.',
)
@manifest_option(None, path_type=None)
@existing_dir_option(
    "--shadows", "shadow_dir", help="Folder of trained shadows (auditor shadow --out)."
)
@existing_file_option(
    "--target-data",
    help="The target's data.json: audits the seen and unseen conditions and checks "
    "the users' labels against its speakers.",
    required=False,
)
@out_dir_option("Run directory.")
@click.option("--audios-per-user", type=int, default=5, show_default=True)
@click.option("--users-sweep", default="25,50,100", show_default=True, callback=_int_list)
@click.option("--audios-sweep", default="1,2,3,5,8,10", show_default=True, callback=_int_list)
@click.option("--budget", type=int, default=None, help="Most device queries to send this run.")
@timeout_option()
@retries_option
@click.option("--client-id", default=None)
@click.option("--n-estimators", type=int, default=300, show_default=True)
@click.option("--n-bootstrap", type=int, default=1000, show_default=True)
@seed_option()
def audit(
    device_id,
    broker,
    users_file,
    manifest,
    shadow_dir,
    target_data,
    out,
    audios_per_user,
    users_sweep,
    audios_sweep,
    budget,
    timeout_s,
    retries,
    client_id,
    n_estimators,
    n_bootstrap,
    seed,
):
    """Audit users of a device over MQTT; writes metrics.json and the reports into --out.

    The shadows' answers are seen through the output policy the device declares (a hardened
    device's view). Rerunning with the same --out resumes: answered queries are read from
    queries.jsonl.
    """
    from auditor.config import prepare_run_dir
    from auditor.voice.audit import AuditError, audit_users
    from auditor.voice.reports import format_table, write_reports
    from auditor.voice.shadow import load_shadow
    from corpora.manifest import ManifestError

    members, nonmembers = _read_users(users_file)
    shadows = [load_shadow(p) for p in _shadow_folders(Path(shadow_dir))]
    if not shadows:
        raise click.ClickException(f"{shadow_dir}: no trained shadows (run auditor shadow)")
    run_dir = prepare_run_dir(
        out,
        {
            "device_id": device_id,
            "broker": broker,
            "users": users_file,
            "manifest": manifest,
            "shadows": shadow_dir,
            "target_data": target_data,
        },
        seed,
    )
    with click_errors(AuditError, ManifestError, ConnectionError):
        metrics = audit_users(
            manifest,
            run_dir,
            members=members,
            nonmembers=nonmembers,
            shadows=shadows,
            broker=broker,
            device_id=device_id,
            target_data=json.loads(Path(target_data).read_text()) if target_data else None,
            audios_per_user=audios_per_user,
            users_sweep=users_sweep,
            audios_sweep=audios_sweep,
            budget=budget,
            timeout_s=timeout_s,
            retries=retries,
            client_id=client_id,
            n_estimators=n_estimators,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    write_reports(run_dir)
    for cond in metrics["conditions"]:
        click.echo(format_table(metrics, cond))
    if metrics["queries"]["stopped"]:
        click.echo(f"warning: {metrics['queries']['stopped']}", err=True)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def report(run_dir):
    """(Re)write the HTML/JSON reports of an audited RUN_DIR."""
    from auditor.voice.reports import write_reports

    with click_errors(FileNotFoundError):
        click.echo(write_reports(run_dir))


@click.command(context_settings={"ignore_unknown_options": True})
@out_dir_option(default="runs/demo")
@quick_option("Small corpus and models (a few minutes).")
@seed_option()
@overrides_argument
def demo(out, quick, seed, overrides):
    """Synthesize, train target and shadows, serve the device, audit 50 users, report.

    OVERRIDES are --section.key=value changes of auditor/voice/demo.yaml.
    """
    from auditor.voice.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    with click_errors(ValueError):
        run_demo(out, quick=quick, seed=seed, overrides=overrides)
