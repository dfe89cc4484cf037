"""docs/architecture.md's import arrows are the imports of the code, in both directions.

The table under "Import arrows" lists, per package, the project packages it may import. Every
project import in the code (module level or inside a function) must be allowed by its row, and
every allowed arrow must be used, so the document cannot drift from the code either way.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
PROJECT = ("common", "corpora", "models", "device_sim", "auditor", "recipes")


def documented_arrows(text: str) -> dict[str, set[str]]:
    """``{package: {allowed import, ...}}`` from the "Import arrows" table."""
    section = text.split("## Import arrows", 1)[1]
    arrows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        arrows[cells[0].strip("`")] = set(
            re.findall(r"`([\w.]+)`", re.sub(r"\(.*?\)", "", cells[1]))
        )
    return arrows


def owner(module: str, packages: set[str]) -> str:
    """The longest package of ``packages`` containing ``module`` (``module`` itself if none)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in packages:
            return ".".join(parts[:n])
    return module


def imported_name(module: str, packages: set[str]) -> str:
    """How an imported module is named in the table: ``device_sim`` per module."""
    if module.startswith("device_sim."):
        return ".".join(module.split(".")[:2])
    return owner(module, packages)


def project_imports(path: Path) -> set[str]:
    """Absolute imports of project modules in one file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PROJECT)
    return found


def code_arrows(packages: set[str]) -> dict[str, set[str]]:
    """``{package: {imported package, ...}}`` over every ``.py`` file of the project packages."""
    arrows: dict[str, set[str]] = {}
    for top in PROJECT:
        for path in sorted((REPO / top).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            source = owner(module, packages)
            for imported in project_imports(path):
                target = imported_name(imported, packages)
                same = target == source or (source == "device_sim" and target.startswith(source))
                if not same:
                    arrows.setdefault(source, set()).add(target)
    return arrows


@pytest.fixture(scope="module")
def arrows() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    documented = documented_arrows(DOC.read_text())
    return documented, code_arrows(set(documented))


def test_the_table_names_every_package(arrows):
    documented, _ = arrows
    assert {"common", "corpora", "models.asr", "device_sim", "auditor.voice"} <= set(documented)


def missing(wanted: dict[str, set[str]], have: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per package, the arrows of ``wanted`` that ``have`` lacks."""
    return {
        source: sorted(targets - have.get(source, set()))
        for source, targets in wanted.items()
        if targets - have.get(source, set())
    }


def test_every_import_is_allowed_by_the_table(arrows):
    documented, code = arrows
    extra = missing(code, documented)
    assert not extra, f"imports that docs/architecture.md does not allow: {extra}"


def test_every_allowed_arrow_is_used(arrows):
    documented, code = arrows
    stale = missing(documented, code)
    assert not stale, f"arrows in docs/architecture.md that no import uses: {stale}"


def test_an_upward_import_is_caught(tmp_path):
    """The checker itself: a corpora module importing the auditor is reported."""
    (tmp_path / "m.py").write_text("def f():\n    from auditor.voice.audit import audit_users\n")
    packages = {"corpora", "auditor", "auditor.voice"}
    assert (
        imported_name(next(iter(project_imports(tmp_path / "m.py"))), packages) == "auditor.voice"
    )
    assert "auditor.voice" not in documented_arrows(DOC.read_text())["corpora"]
