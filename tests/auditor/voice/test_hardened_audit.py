"""The audit of a hardened device: label-only features, shadows seen through the device's view."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditor.voice.audit import AuditError, device_output_policy
from auditor.voice.features import SCORE_FEATURES, FeatureError, utterance_features
from corpora.manifest import read_manifest

REFERENCE = ["sil", "k", "ae", "t", "sil"]


def test_label_only_answers_give_edit_features_and_constant_scores():
    answer = {"phones": ["sil", "k", "ae", "sil"], "output": "label_only"}
    f = utterance_features(answer, REFERENCE, "u1")
    assert f["dels"] == 1 and f["subs"] == f["ins"] == 0 and f["per"] > 0
    assert all(f[k] == 0.0 for k in SCORE_FEATURES)
    with pytest.raises(FeatureError, match="u1: answer lacks log_like_per_frame"):
        utterance_features({"phones": ["sil"]}, REFERENCE, "u1")  # not declared: refused
    old = answer | {"output": "transcript-only"}  # an earlier spelling is not read as full
    with pytest.raises(FeatureError, match="u1: output policy 'transcript-only' .*'label_only'"):
        utterance_features(old, REFERENCE, "u1")


def test_the_declared_output_policy_must_be_one_known_policy():
    hard = [{"output": "rounding:decimals=1"}] * 3
    policy = device_output_policy(hard, {"output": "rounding:decimals=1"})
    assert policy.name == "rounding" and policy.params == {"decimals": 1}
    assert device_output_policy(hard, None).spec == "rounding:decimals=1"  # no status: answers
    assert device_output_policy([{}], {"state": "offline"}).spec == "full"  # undeclared: full
    with pytest.raises(
        AuditError,
        match=r"ambiguous: answers declare 'full' \(1\), "
        r"'rounding:decimals=1' \(3\)",
    ):
        device_output_policy([*hard, {"output": "full"}], None)
    with pytest.raises(AuditError, match="answers declare 'full' .*its status 'label_only'"):
        device_output_policy([{}], {"output": "label_only"})
    with pytest.raises(
        AuditError,
        match="unknown output policy: output policy 'transcript-only' "
        "is an old spelling: write 'label_only'",
    ):
        device_output_policy([{"output": "transcript-only"}], {"output": "transcript-only"})
    with pytest.raises(AuditError, match="unknown output policy: output policy 'blur:2'"):
        device_output_policy([{"output": "blur:2"}], {"output": "blur:2"})
    with pytest.raises(AuditError, match="declared no output policy"):
        device_output_policy([], {"state": "offline"})


def _shadow_side(computed, manifest, pool) -> list[tuple[dict, dict]]:
    """(answer, features) of the shadows' answers among what the audit computed features of."""
    pool_utts = {u.utt_id for u in read_manifest(manifest, pool)}
    rows = [(a, f) for utt_id, a, f in computed if utt_id in pool_utts]
    assert rows  # the shadows' answers went through the features
    return rows


def _assert_hardened(rows, output: str) -> None:
    for answer, features in rows:
        assert answer.get("output") == output
        if output == "label_only":
            assert "log_like_per_frame" not in answer and "phone_confidences" not in answer
            assert all(features[k] == 0.0 for k in SCORE_FEATURES)
        else:  # rounding:decimals=0 leaves whole numbers
            assert features["log_like_per_frame"] == round(features["log_like_per_frame"])
            assert set(answer["phone_confidences"]) <= {0.0, 1.0}


@pytest.mark.parametrize("output", ["label_only", "rounding:decimals=0"])
def test_audit_of_a_hardened_device_uses_the_same_view_for_shadows(
    output,
    tiny_manifest,
    tiny_roles,
    tiny_target,
    run_tiny_audit,
    amqtt_url,
    tmp_path,
    features_computed,
):
    from device_sim.server import DeviceServer
    from models.asr.recognizer import load_recognizer
    from models.privacy.serving import parse_output_policy

    device_id = f"hard-{parse_output_policy(output).name}"
    with DeviceServer(
        load_recognizer(tiny_target),
        device_id,
        amqtt_url,
        output=output,
        profile_report={"profile": "host"},
    ):
        metrics = run_tiny_audit(tmp_path, amqtt_url, device_id)
    assert metrics["device_output"] == output
    assert set(metrics["attacks"]) == {
        f"{c}/{a}" for c in ("seen", "unseen") for a in ("random_forest", "calibrated_test")
    }
    assert not metrics["failures"]
    users = json.loads((tmp_path / "users.json").read_text())
    audio = users[0]["conditions"]["unseen"]["audios"][0]
    if output == "label_only":
        assert audio["log_like_per_frame"] == 0.0 and audio["frames"] == 0.0
    else:
        assert audio["log_like_per_frame"] == round(audio["log_like_per_frame"])
    # the shadows' side: the features the attacks learn from are hardened the same way
    _assert_hardened(_shadow_side(features_computed, tiny_manifest, tiny_roles["pool"]), output)


def test_audit_command_sees_the_shadows_through_the_devices_policy(
    tiny_manifest,
    tiny_roles,
    tiny_target,
    tiny_shadows,
    amqtt_url,
    tmp_path,
    features_computed,
    audit_cli_args,
):
    from auditor.cli import main
    from device_sim.server import DeviceServer
    from models.asr.recognizer import load_recognizer

    out = tmp_path / "run"
    args = audit_cli_args("cli-hard", amqtt_url)
    with DeviceServer(
        load_recognizer(tiny_target),
        "cli-hard",
        amqtt_url,
        output="label_only",
        profile_report={"profile": "host"},
    ):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device_output"] == "label_only" and not metrics["failures"]
    rows = _shadow_side(features_computed, tiny_manifest, tiny_roles["pool"])
    _assert_hardened(rows, "label_only")
    # the calibrated test cannot have picked a withheld score: it saw none on the shadows
    calibration = json.loads((out / "calibration.json").read_text())
    assert not any(calibration[c]["score_name"].endswith(SCORE_FEATURES) for c in calibration)
