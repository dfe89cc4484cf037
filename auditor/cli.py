"""``auditor`` console script: corpus tooling, shadow models, audits, reports, CIFAR-10 path."""

from __future__ import annotations

import click

from common.cli_group import LazyGroup

COMMANDS = {
    "corpus": "corpora.cli:corpus",
    "cifar": "auditor.cifar.cli:cifar",
    "shadow": "auditor.voice.cli:shadow",
    "audit": "auditor.voice.cli:audit",
    "report": "auditor.voice.cli:report",
    "demo": "auditor.voice.cli:demo",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="iot-privacy-auditor")
def main() -> None:
    """Audit a voice device (or an image model) for membership leakage of its training data."""


if __name__ == "__main__":
    main()
