"""Tests for auditor.audit on the tiny real device: files, both conditions, skips, bad users."""

import json

import pytest

from auditor.audit import AuditError, audit_users, select_audios
from models.manifest import ManifestError, read_manifest


def test_audit_writes_metrics_for_both_conditions(tiny_audit_run, tiny_roles):
    metrics = json.loads((tiny_audit_run / "metrics.json").read_text())
    assert metrics["conditions"] == ["seen", "unseen"]
    for name in ("seen/random_forest", "seen/calibrated_test", "unseen/random_forest",
                 "unseen/calibrated_test"):
        m = metrics["attacks"][name]
        for key in ("accuracy", "precision", "recall", "f1", "auc", "tpr_at_fpr"):
            assert key in m
        assert (m["n_members"], m["n_nonmembers"]) == (1, 1)
        assert m["tpr_at_fpr"]["0.01"] is None and "unmeasurable" in m["tpr_at_fpr_note"]
    # the member has 1 held-out audio: the unseen condition cannot use K=2, and says so
    assert any(s["condition"] == "unseen" and s["audios_per_user"] == 2
               for s in metrics["sweep_skipped"])
    assert {(r["condition"], r["audios_per_user"]) for r in metrics["rows"]} == {
        ("seen", 1), ("seen", 2), ("unseen", 1)}
    assert metrics["queries"]["failed"] == 0 and metrics["queries"]["sent"] > 0
    users = {u["speaker"]: u for u in json.loads((tiny_audit_run / "users.json").read_text())}
    member = users[tiny_roles["member"][0]]
    assert member["member"] and set(member["conditions"]) == {"seen", "unseen"}
    c = member["conditions"]["unseen"]
    assert c["verdict"] in ("member", "non-member") and 0.0 <= c["p_value"] <= 1.0
    assert len(c["audios"]) == 1 and "per" in c["audios"][0]
    calibration = json.loads((tiny_audit_run / "calibration.json").read_text())
    assert len(calibration["unseen"]["in_scores"]) == 2  # one IN user per shadow


def test_unseen_audios_are_the_targets_heldout_ones(tiny_manifest, tiny_target, tiny_roles):
    data = json.loads((tiny_target / "data.json").read_text())
    utts = read_manifest(tiny_manifest)
    chosen = select_audios(utts, tiny_roles["member"], tiny_roles["nonmember"], data, 5, 0)
    m = tiny_roles["member"][0]
    assert {u.utt_id for u in chosen["unseen"][m]} == set(data["heldout"])
    assert {u.utt_id for u in chosen["seen"][m]} <= set(data["train"])
    n = tiny_roles["nonmember"][0]
    assert chosen["seen"][n] == chosen["unseen"][n] and len(chosen["seen"][n]) == 4


def test_bad_users_get_clear_errors(tiny_manifest, tiny_roles, tiny_shadows, tiny_device,
                                    tmp_path):
    broker, device_id = tiny_device
    common = dict(shadows=tiny_shadows, broker=broker, device_id=device_id, progress=False)
    with pytest.raises(ManifestError, match="speakers not in manifest: NOBODY"):
        audit_users(tiny_manifest, tmp_path, members=["NOBODY"],
                    nonmembers=tiny_roles["nonmember"], **common)
    with pytest.raises(AuditError, match="shadow-0 was built on audited users"):
        audit_users(tiny_manifest, tmp_path, members=tiny_roles["pool"][:1],
                    nonmembers=tiny_roles["nonmember"], **common)
    # 1 held-out audio per member: 3 audios per user cannot be audited in any condition
    with pytest.raises(AuditError, match="no condition could be audited with 9 audios"):
        audit_users(tiny_manifest, tmp_path, members=tiny_roles["member"],
                    nonmembers=tiny_roles["nonmember"], audios_per_user=9, audios_sweep=(9,),
                    **common)
