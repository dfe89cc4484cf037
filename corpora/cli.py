"""``auditor corpus``: synthesize, prepare, check and split speech corpora.

Each command is a thin wrapper over one library function: ``synth`` ->
:func:`corpora.synth.corpus.synthesize_corpus`, ``prepare`` ->
:func:`corpora.prepare.prepare_corpus`, ``check`` ->
:func:`corpora.prepare.check_corpus`, ``split`` ->
:func:`corpora.splits.make_splits`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from common.cli_options import (
    click_errors,
    existing_dir_option,
    manifest_option,
    out_dir_option,
    seed_option,
)
from corpora.errors import CorpusError, count_by_reason

_corpus_dir_option = existing_dir_option(
    "--corpus", "corpus_dir", help="Corpus folder (TIMIT root or Kaldi data dir).", path_type=Path
)
_format_option = click.option(
    "--format", "fmt", type=click.Choice(["timit", "kaldi"]), required=True, help="Corpus format."
)


def _include_sa_option(help: str):
    return click.option("--include-sa/--exclude-sa", default=None, help=help)


def _speakers_option(name: str, help: str, *, required: bool = True):
    return click.option(name, type=click.IntRange(min=0), required=required, help=help)


@click.group()
def corpus() -> None:
    """Speech corpora: synthesize, prepare manifests, check, split speakers."""


@corpus.command()
@out_dir_option("Corpus folder to write (TIMIT layout).", path_type=Path)
@click.option(
    "--speakers", type=click.IntRange(min=1), required=True, help="Number of synthetic speakers."
)
@seed_option("Seed: same seed, same bytes.", required=True)
@click.option(
    "--utterances-per-speaker",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Sentences per speaker (2 shared SA + the rest per speaker).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Synthesis processes (default: all cores).",
)
def synth(
    out: Path, speakers: int, seed: int, utterances_per_speaker: int, jobs: int | None
) -> None:
    """Generate a synthetic eSpeak NG corpus in TIMIT layout."""
    from corpora.synth.corpus import synthesize_corpus  # loads libespeak-ng: only when run

    made = synthesize_corpus(
        out, speakers, seed, utterances_per_speaker=utterances_per_speaker, jobs=jobs
    )
    click.echo(
        f"{out}: {made['speakers']} speakers, {made['utterances']} utterances, "
        f"{made['seconds']:.1f} s of audio in {made['wall_seconds']:.1f} s"
    )


@contextmanager
def _corpus_errors(note: str | None = None) -> Iterator[None]:
    """A corpus problem is an error (exit 1), any other ``ValueError`` a usage error (exit 2)."""
    with click_errors(ValueError, kind=click.UsageError), click_errors(CorpusError, note=note):
        yield


def _print_counts(counts: dict) -> None:
    click.echo(
        f"utterances: {counts['utterances']}  speakers: {counts['speakers']}  "
        f"audio: {counts['duration_s']:.1f} s  with alignment: {counts['with_alignment']}"
    )
    for key in ("speakers_by_gender", "speakers_by_set"):
        if key in counts:
            tally = "  ".join(f"{k}={v}" for k, v in counts[key].items())
            click.echo(f"{key.replace('_', ' ')}: {tally}")


def _print_problems(problems: list[dict], counts: dict[str, int], verb: str) -> None:
    total = sum(counts.values())
    click.echo(
        f"{verb}: {total}"
        + (f" ({', '.join(f'{r}: {n}' for r, n in counts.items())})" if total else "")
    )
    for p in problems:
        where = p["path"] if p["line"] is None else f"{p['path']}:{p['line']}"
        utt = f" [{p['utt_id']}]" if p["utt_id"] else ""
        click.echo(f"  {where}: {p['reason']}{utt}: {p['detail']}")


@corpus.command()
@_corpus_dir_option
@_format_option
@out_dir_option("Prepared-corpus folder (manifest.jsonl + corpus.json).", path_type=Path)
@click.option(
    "--lenient",
    is_flag=True,
    help="Skip bad utterances (reported per reason) instead of stopping at the first.",
)
@_include_sa_option(
    "TIMIT: keep SA1/SA2 sentences. Default: only for a synthetic corpus (synth_info.json at its root)."
)
@click.option("--force", is_flag=True, help="Prepare again even when the outputs are up to date.")
def prepare(
    corpus_dir: Path, fmt: str, out: Path, lenient: bool, include_sa: bool | None, force: bool
) -> None:
    """Read a corpus, write and validate its manifest."""
    from corpora.prepare import prepare_corpus

    with _corpus_errors(
        note="(use `auditor corpus check` to list every problem, or --lenient to skip bad utterances)"
    ):
        result = prepare_corpus(
            corpus_dir, fmt, out, lenient=lenient, include_sa=include_sa, force=force
        )
    state = "up to date, not rewritten" if result.up_to_date else "written and validated"
    click.echo(f"{result.manifest}: {state}")
    _print_counts(result.counts)
    _print_problems(result.info["skipped"], result.skipped_counts, "skipped")


@corpus.command()
@_corpus_dir_option
@_format_option
@_include_sa_option("TIMIT: keep SA1/SA2 sentences (default as for prepare).")
def check(corpus_dir: Path, fmt: str, include_sa: bool | None) -> None:
    """Read a corpus, print its counts and every problem; exit 1 if there is any."""
    from corpora.prepare import check_corpus

    with _corpus_errors():
        reading = check_corpus(corpus_dir, fmt, include_sa=include_sa)
    _print_counts(reading.counts())
    _print_problems(
        [p.to_dict() for p in reading.problems], count_by_reason(reading.problems), "problems"
    )
    if reading.problems:
        raise SystemExit(1)


@corpus.command()
@manifest_option("Manifest file or prepared-corpus folder.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Splits JSON to write.",
)
@_speakers_option("--target-members", "Speakers the target trains on.")
@_speakers_option("--target-nonmembers", "Speakers the target never sees.")
@_speakers_option("--shadow-pool", "Speakers for the auditor's shadow models.")
@_speakers_option(
    "--eval-users",
    "Further held-out speakers (default none: the audit evaluates members + non-members).",
    required=False,
)
@seed_option("Seed of the speaker shuffle.", required=True)
def split(
    manifest: Path,
    out: Path,
    target_members: int,
    target_nonmembers: int,
    shadow_pool: int,
    eval_users: int | None,
    seed: int,
) -> None:
    """Write disjoint speaker splits for one run."""
    from corpora.manifest import ManifestError
    from corpora.splits import SplitError, make_splits

    with click_errors(SplitError, ManifestError):
        doc = make_splits(
            manifest,
            out,
            target_members=target_members,
            target_nonmembers=target_nonmembers,
            shadow_pool=shadow_pool,
            eval_users=eval_users,
            seed=seed,
        )
    sizes = "  ".join(f"{k}={len(v)}" for k, v in doc["splits"].items())
    click.echo(f"{out}: {sizes}")
