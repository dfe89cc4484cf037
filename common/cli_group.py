"""A click group that imports each subcommand only when it is run.

Both console scripts (``auditor`` and ``device-sim``) are a :func:`console_group` of it, so that
``--help`` and light commands do not pay for importing torch.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """``click.Group`` whose commands are ``{"name": "package.module:attribute"}`` strings."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)


def console_group(name: str, help: str, commands: dict[str, str]) -> click.Group:
    """The ``name`` console script: a :class:`LazyGroup` of ``commands`` with ``--version``."""

    @click.group(name, cls=LazyGroup, lazy_commands=commands, help=help)
    @click.version_option(package_name="iot-privacy-auditor")
    def group() -> None:
        pass

    return group
