"""Click options and error handling shared by the ``auditor`` and ``device-sim`` commands and
the recipes.

An option that several commands take is declared here once, with its type, default and help
text; a command that words the help for its own case passes ``help=`` (``None``: no help
text). :func:`click_errors` turns the errors a library raises into click's one-line messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

#: ``OVERRIDES...``: ``--key=value`` / ``--section.key=value`` changes of a YAML config.
overrides_argument = click.argument("overrides", nargs=-1, type=click.UNPROCESSED)

#: ``--executor``: where independent jobs run (:func:`auditor.executor.get_executor`).
executor_option = click.option(
    "--executor", type=click.Choice(["local", "ray", "serial"]), default="local", show_default=True
)
address_option = click.option(
    "--address", default=None, help="Ray cluster address (with --executor ray)."
)
#: ``--retries``: further attempts of an unanswered device query.
retries_option = click.option("--retries", type=int, default=2, show_default=True)


def seed_option(help: str | None = None, *, required: bool = False):
    """``--seed N``: required, or 0 by default."""
    if required:
        return click.option("--seed", type=int, required=True, help=help)
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def quick_option(help: str):
    """``--quick``: the smoke configuration of a run."""
    return click.option("--quick", is_flag=True, help=help)


def out_dir_option(
    help: str | None = None,
    *,
    default: str | None = None,
    required: bool | None = None,
    path_type: type | None = None,
):
    """``--out DIRECTORY``: the folder a command writes; required unless it has a ``default``."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=path_type),
        default=default,
        required=default is None if required is None else required,
        show_default=default is not None,
        help=help,
    )


def existing_dir_option(
    *decls: str, help: str | None = None, required: bool = True, path_type: type | None = None
):
    """An option naming a folder that must exist (one that another command wrote, a corpus)."""
    return click.option(
        *decls,
        type=click.Path(exists=True, file_okay=False, path_type=path_type),
        required=required,
        help=help,
    )


def existing_file_option(
    *decls: str,
    help: str | None = None,
    required: bool = True,
    default: str | None = None,
    path_type: type | None = None,
):
    """An option naming a file that must exist; shown with its ``default`` if it has one."""
    return click.option(
        *decls,
        type=click.Path(exists=True, dir_okay=False, path_type=path_type),
        required=required,
        default=default,
        show_default=default is not None,
        help=help,
    )


def manifest_option(
    help: str | None = "Manifest JSONL or prepared-corpus folder.", *, path_type: type | None = Path
):
    """``--manifest``: a manifest file or a prepared-corpus folder (:mod:`corpora.manifest`)."""
    return click.option(
        "--manifest", type=click.Path(exists=True, path_type=path_type), required=True, help=help
    )


def splits_option(
    help: str | None = None, *, required: bool = False, path_type: type | None = None
):
    """``--splits``: a speaker splits JSON (:mod:`corpora.splits`)."""
    return existing_file_option("--splits", help=help, required=required, path_type=path_type)


def config_file_option(
    help: str | None = None, *, default: str | None = None, path_type: type | None = None
):
    """``--config FILE`` (parameter ``config_path``): a YAML file, optional."""
    return existing_file_option(
        "--config", "config_path", help=help, required=False, default=default, path_type=path_type
    )


def timeout_option(help: str | None = None):
    """``--timeout`` (parameter ``timeout_s``): seconds to wait for one device answer."""
    return click.option(
        "--timeout", "timeout_s", type=float, default=30.0, show_default=True, help=help
    )


@contextmanager
def click_errors(
    *errors: type[Exception],
    kind: type[click.ClickException] = click.ClickException,
    note: str | None = None,
    **details,
) -> Iterator[None]:
    """Re-raise ``errors`` as click's ``kind`` with the error's message (and ``note`` on a line
    of its own): ``Error: ...`` and exit status 1 (``ClickException``) or 2 (``UsageError``,
    ``BadParameter``; ``details`` such as ``param_hint`` go to it) instead of a traceback."""
    try:
        yield
    except errors as error:
        message = str(error) if note is None else f"{error}\n{note}"
        raise kind(message, **details) from error
