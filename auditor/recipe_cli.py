"""The command line shared by the recipes whose options are ``--quick``, ``--out`` and overrides.

``python recipes/<name>/run.py [--quick] [--out DIR] [--key=value ...]``: the recipe's
``config.yaml`` is read with its ``quick`` section applied under ``--quick`` and the overrides
on top (:func:`auditor.config.load_config`), checked by the recipe's ``check`` (a ``ValueError``
there becomes a clean usage error), and ``run(config, out)`` does the work into ``out`` (default
``runs/<name>`` or ``runs/<name>_quick`` under the repository root).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import click

from auditor.config import load_config


def repo_path(path: str | Path, repo: Path) -> Path:
    """``path`` from a recipe's config; a relative one is taken from the repository root."""
    p = Path(path)
    return p if p.is_absolute() else repo / p


def recipe_command(
    config: Path,
    run: Callable[[dict, Path], object],
    *,
    repo: Path,
    name: str,
    summary: str,
    quick_help: str,
    check: Callable[[dict], object] | None = None,
) -> click.Command:
    """A click command running the recipe of ``config``; ``summary`` is its ``--help`` line."""

    @click.command(
        help=f"{summary}; extra --key=value arguments override config.yaml.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.option("--quick", is_flag=True, help=quick_help)
    @click.option(
        "--out",
        type=click.Path(file_okay=False),
        default=None,
        help=f"Run folder [default: runs/{name} or runs/{name}_quick].",
    )
    @click.pass_context
    def main(ctx: click.Context, quick: bool, out: str | None) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        try:
            resolved = load_config(config, list(ctx.args), sections={"quick": quick})
            if check is not None:
                check(resolved)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        default = repo / "runs" / (resolved["name"] + ("_quick" if quick else ""))
        run(resolved, Path(out) if out else default)

    return main
