"""``auditor`` console script: corpus tooling, shadow models, audits, reports, CIFAR-10 path."""

from __future__ import annotations

import click

from models.lazy_group import LazyGroup

COMMANDS = {
    "corpus": "auditor.corpora.cli:corpus",
    "cifar": "auditor.cifar.cli:cifar",
    "shadow": "auditor.cli_audit:shadow",
    "audit": "auditor.cli_audit:audit",
    "report": "auditor.cli_audit:report",
    "demo": "auditor.cli_audit:demo",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="iot-privacy-auditor")
def main() -> None:
    """Audit a voice device (or an image model) for membership leakage of its training data."""


if __name__ == "__main__":
    main()
