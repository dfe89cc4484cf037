"""Smoke run of the Table 3 recipe (``--quick``): synthetic corpus, real device over MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sklearn.metrics import roc_auc_score

from auditor.config import load_config
from auditor.voice.pipeline import AUDIT_CONFIG

pytestmark = pytest.mark.slow  # runs the recipe in a subprocess

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "timit_user_audit" / "run.py"
#: Smaller than the shared config's ``quick`` section (``auditor demo --quick``): a 1-minute run.
SMOKE = [
    "--corpus.n_speakers=12",
    "--corpus.utterances_per_speaker=6",
    "--splits.target_members=3",
    "--splits.target_nonmembers=3",
    "--splits.shadow_pool=6",
    "--recognizer.network.hidden=[64]",
    "--recognizer.training.epochs=2",
    "--recognizer.training.heldout_utterances_per_speaker=2",
    "--recognizer.training.tune_decoding=false",
    "--audit.audios_per_user=2",
    "--audit.users_sweep=[4, 6]",
    "--audit.audios_sweep=[1, 2]",
    "--audit.n_estimators=50",
    "--audit.n_bootstrap=100",
    "--shadows.k=4",
]
#: The users.json score each attack's metrics rank users by.
USER_SCORE = {
    "random_forest": "forest_score",
    "calibrated_test": "log_likelihood_ratio",
    "reference_calibrated": "reference_score",
}


def assert_attacks_match_users(attacks: dict, users: list[dict], splits: dict) -> None:
    """The audited labels are the splits' and each ``<condition>/<attack>`` AUC is the one of
    the per-user scores in ``users.json`` (a pipeline that swaps or mis-joins users fails)."""
    assert {u["speaker"] for u in users if u["member"]} == set(splits["target_members"])
    assert {u["speaker"] for u in users if not u["member"]} == set(splits["target_nonmembers"])
    for key, m in attacks.items():
        cond, attack = key.split("/")
        audited = [u for u in users if cond in u["conditions"]]
        truth = [u["member"] for u in audited]
        assert (m["n_members"], m["n_nonmembers"]) == (sum(truth), len(truth) - sum(truth))
        scores = [u["conditions"][cond][USER_SCORE[attack]] for u in audited]
        assert m["auc"] == pytest.approx(roc_auc_score(truth, scores))


def test_the_recipe_and_the_demo_share_one_config():
    assert load_config(RECIPE.with_name("config.yaml")) == load_config(AUDIT_CONFIG)


def test_quick_run_writes_config_splits_metrics_reports(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPE),
            "--quick",
            "--out",
            str(out),
            "--seed",
            "3",
            "--shadows.executor=serial",
            *SMOKE,
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Users  Accuracy Precision  Recall" in proc.stdout
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seed"] == 3 and config["shadows"]["executor"] == "serial"
    assert config["recognizer"]["network"]["hidden"] == [64]
    splits = json.loads((out / "splits.json").read_text())["splits"]
    assert len(splits["target_members"]) == 3 and len(splits["shadow_pool"]) == 6
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["attacks"]) == {f"{c}/{a}" for c in ("seen", "unseen") for a in USER_SCORE}
    users = json.loads((out / "users.json").read_text())
    assert_attacks_match_users(metrics["attacks"], users, splits)
    # every row of the sweeps: 4 users (2 + 2 drawn) and all 6, 1 and 2 audios per user
    rows = {
        (r["condition"], r["attack"], r["users"], r["audios_per_user"]): r for r in metrics["rows"]
    }
    assert set(rows) == {
        (c, a, n, k) for c in ("seen", "unseen") for a in USER_SCORE for n in (4, 6) for k in (1, 2)
    }
    for (cond, attack, n, k), r in rows.items():
        assert (r["n_members"], r["n_nonmembers"]) == (n - n // 2, n // 2)
        if (n, k) == (6, 2):
            assert r["auc"] == metrics["attacks"][f"{cond}/{attack}"]["auc"]
    assert "bootstrap over the evaluated users" in metrics["ci95_scope"]
    assert metrics["queries"]["answered"] == metrics["queries"]["sent"] > 0
    assert (out / "report" / "summary.html").is_file() and (out / "table.md").is_file()
    assert "online" in (out / "device.log").read_text()


def test_unknown_override_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RECIPE), "--quick", "--out", str(tmp_path), "--audit.nope=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "unknown key 'audit.nope'" in proc.stderr
