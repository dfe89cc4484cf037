"""The command line shared by the recipes whose options are ``--quick``, ``--out`` and overrides.

``python recipes/<name>/run.py [--quick] [--out DIR] [--key=value ...]``: the recipe's
``resolve_config(overrides, quick=...)`` builds the config (a ``ValueError`` there becomes a
clean usage error), and ``run(config, out)`` does the work into ``out`` (default
``runs/<name>`` or ``runs/<name>_quick`` under the repository root).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import click


def repo_path(path: str | Path, repo: Path) -> Path:
    """``path`` from a recipe's config; a relative one is taken from the repository root."""
    p = Path(path)
    return p if p.is_absolute() else repo / p


def recipe_command(
    resolve_config: Callable[..., dict],
    run: Callable[[dict, Path], object],
    *,
    repo: Path,
    name: str,
    summary: str,
    quick_help: str,
) -> click.Command:
    """A click command running one recipe; ``summary`` is its ``--help`` line."""

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
            config = resolve_config(list(ctx.args), quick=quick)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        default = repo / "runs" / (config["name"] + ("_quick" if quick else ""))
        run(config, Path(out) if out else default)

    return main
