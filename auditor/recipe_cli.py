"""The command line shared by the recipes: ``--quick``, ``--out`` and config overrides.

``python recipes/<name>/run.py [--quick] [--out DIR] [--key=value ...]``: the recipe's
``config.yaml`` is read with its ``quick`` section applied under ``--quick`` and the overrides
on top (:func:`auditor.config.load_config`), checked by the recipe's ``check`` (a ``ValueError``
there becomes a clean usage error), and ``run(config, out, root=<repository root>)`` does the
work into ``out`` (default ``runs/<name>`` or ``runs/<name>_quick`` under the repository root).

The voice recipes' form (``voice=True``) is that of ``auditor demo``: ``python
recipes/<name>/run.py [--config YAML] [--quick] [--out DIR] [--seed N] [OVERRIDES]...``, the
seed going to ``run`` and ``--out`` defaulting to ``runs/<name>`` in the working directory.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from auditor.config import load_config
from common.cli_options import (
    click_errors,
    config_file_option,
    out_dir_option,
    overrides_argument,
    quick_option,
    seed_option,
)


def repo_path(path: str | Path, repo: Path) -> Path:
    """``path`` from a recipe's config; a relative one is taken from the repository root."""
    p = Path(path)
    return p if p.is_absolute() else repo / p


def _load(path: Path, overrides: list[str], *, quick: bool) -> dict:
    return load_config(path, overrides, sections={"quick": quick})


def recipe_command(
    recipe: str | Path,
    run: Callable[..., object],
    *,
    summary: str,
    quick_help: str = "Small smoke configuration of the same code path.",
    check: Callable[[dict], object] | None = None,
    load: Callable[..., dict] = _load,
    options: Sequence[Callable] = (),
    voice: bool = False,
) -> click.Command:
    """The command of the recipe whose ``run.py`` is ``recipe``; ``summary`` is its ``--help``.

    ``load(path, overrides, quick=...)`` reads the config, given the values of the click
    ``options`` too (shown before ``--quick``); ``check`` refuses a bad config. With ``voice``,
    the command has the voice recipes' form (see the module docstring), ``run`` also takes
    ``seed`` and its ``ValueError`` is a clean error too; the voice pipelines print their
    progress, so no logging is set up.
    """
    config = Path(recipe).with_name("config.yaml")
    repo = Path(recipe).resolve().parents[2]
    name = Path(recipe).parent.name

    def main(ctx: click.Context, quick: bool, out: str | None, **values) -> None:
        if not voice:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        path = values.pop("config_path", config)
        overrides = [*values.pop("overrides", ()), *ctx.args]
        seed = {"seed": values.pop("seed")} if voice else {}
        with click_errors(ValueError):
            resolved = load(path, overrides, quick=quick, **values)
            if check is not None:
                check(resolved)
        if not out:
            out = repo / "runs" / (resolved["name"] + ("_quick" if quick else ""))
        with click_errors(*((ValueError,) if voice else ())):
            run(resolved, Path(out), root=repo, **seed)

    if voice:
        help = summary
        out_option = click.option("--out", default=f"runs/{name}", show_default=True)
        options = [config_file_option(default=str(config)), *options]
        more = [seed_option(), overrides_argument]
    else:
        help = f"{summary}; extra --key=value arguments override config.yaml."
        out_option = out_dir_option(
            f"Run folder [default: runs/{name} or runs/{name}_quick].", required=False
        )
        more = []
    decorators = [*options, quick_option(quick_help), out_option, *more]
    decorated = functools.reduce(lambda f, d: d(f), reversed(decorators), click.pass_context(main))
    return click.command(
        help=help, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )(decorated)
