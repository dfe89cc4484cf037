"""``device-sim`` console script: train and evaluate the recognizer, serve it as a smart speaker."""

from __future__ import annotations

import click

from common.cli_group import LazyGroup

COMMANDS = {
    "train": "device_sim.cli_train:train",
    "eval": "device_sim.cli_train:evaluate",
    "serve": "device_sim.cli_serve:serve",
    "query": "device_sim.cli_serve:query",
    "broker": "device_sim.cli_serve:broker",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="iot-privacy-auditor")
def main() -> None:
    """The simulated smart speaker and its vendor-side tools."""


if __name__ == "__main__":
    main()
