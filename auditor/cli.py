"""``auditor`` console script: corpus tooling, shadow models, audits, reports, CIFAR-10 path."""

from __future__ import annotations

from common.cli_group import console_group

main = console_group(
    "auditor",
    "Audit a voice device (or an image model) for membership leakage of its training data.",
    {
        "corpus": "corpora.cli:corpus",
        "cifar": "auditor.cifar.cli:cifar",
        "shadow": "auditor.voice.cli:shadow",
        "audit": "auditor.voice.cli:audit",
        "report": "auditor.voice.cli:report",
        "demo": "auditor.voice.cli:demo",
    },
)


if __name__ == "__main__":
    main()
