"""Tests for the auditor shadow / audit / report commands (in-process, tiny real models)."""

import json

import pytest
import yaml
from click.testing import CliRunner

from auditor.cli import main

pytestmark = pytest.mark.slow  # the auditor CLI against a served device


def test_shadow_command_reuses_the_cached_shadows(
    tiny_shadows, tiny_manifest, tiny_roles, tiny_recipe, tmp_path
):
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(tiny_recipe))
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"seed": 0, "splits": {"shadow_pool": tiny_roles["pool"]}}))
    cache = tiny_shadows[0].path.parent
    before = {p: p.stat().st_mtime for p in cache.glob("shadow-*/model.safetensors")}
    result = CliRunner().invoke(
        main,
        [
            "shadow",
            "--manifest",
            str(tiny_manifest),
            "--splits",
            str(splits),
            "--config",
            str(config),
            "--out",
            str(cache),
            "--executor",
            "serial",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "shadow-0:" in result.output and "shadow-1:" in result.output
    assert {p: p.stat().st_mtime for p in before} == before  # nothing retrained


def test_audit_and_report_commands(tiny_device, tiny_roles, audit_cli_args, tmp_path):
    broker, device_id = tiny_device
    out = tmp_path / "run"
    args = audit_cli_args(device_id, broker)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "unseen audios, random_forest" in result.output
    assert (out / "report" / "summary.html").is_file()
    sent = json.loads((out / "metrics.json").read_text())["queries"]["sent"]
    again = CliRunner().invoke(main, args)  # resumes: nothing is asked twice
    assert again.exit_code == 0 and sent > 0
    assert json.loads((out / "metrics.json").read_text())["queries"]["sent"] == 0
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    bad = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert bad.exit_code != 0 and "metrics.json: missing" in bad.output
    users = tmp_path / "users.json"  # written by audit_cli_args
    users.write_text(json.dumps({"members": ["GHOST"], "nonmembers": tiny_roles["nonmember"]}))
    unknown = CliRunner().invoke(main, args)
    assert unknown.exit_code != 0 and "GHOST" in unknown.output
