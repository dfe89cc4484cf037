"""The audit of a hardened device: label-only features, shadows seen through the device's view."""

from __future__ import annotations

import json

import pytest

from auditor.features import SCORE_FEATURES, FeatureError, utterance_features

REFERENCE = ["sil", "k", "ae", "t", "sil"]


def test_transcript_only_answers_give_edit_features_and_constant_scores():
    answer = {"phones": ["sil", "k", "ae", "sil"], "output": "transcript-only"}
    f = utterance_features(answer, REFERENCE, "u1")
    assert f["dels"] == 1 and f["subs"] == f["ins"] == 0 and f["per"] > 0
    assert all(f[k] == 0.0 for k in SCORE_FEATURES)
    with pytest.raises(FeatureError, match="u1: answer lacks log_like_per_frame"):
        utterance_features({"phones": ["sil"]}, REFERENCE, "u1")  # not declared: refused


@pytest.mark.parametrize("output", ["transcript-only", "rounded:0"])
def test_audit_of_a_hardened_device_uses_the_same_view_for_shadows(
    output, tiny_manifest, tiny_roles, tiny_target, tiny_shadows, amqtt_url, tmp_path
):
    from auditor.audit import audit_users
    from device_sim.hardening import parse_output_policy
    from device_sim.server import DeviceServer
    from models.asr.recognizer import load_recognizer

    policy = parse_output_policy(output)
    device_id = f"hard-{policy.kind}"
    with DeviceServer(load_recognizer(tiny_target), device_id, amqtt_url, output=output,
                      profile_report={"profile": "host"}):  # fmt: skip
        metrics = audit_users(
            tiny_manifest, tmp_path, members=tiny_roles["member"],
            nonmembers=tiny_roles["nonmember"], shadows=tiny_shadows, broker=amqtt_url,
            device_id=device_id, target_data=json.loads((tiny_target / "data.json").read_text()),
            audios_per_user=1, users_sweep=(2,), audios_sweep=(1,), n_estimators=10,
            n_bootstrap=20, timeout_s=20.0, progress=False, shadow_view=policy.apply,
        )  # fmt: skip
    assert metrics["device_output"] == [output]
    assert set(metrics["attacks"]) == {f"{c}/{a}" for c in ("seen", "unseen")
                                       for a in ("random_forest", "calibrated_test")}  # fmt: skip
    assert not metrics["failures"]
    users = json.loads((tmp_path / "users.json").read_text())
    audio = users[0]["conditions"]["unseen"]["audios"][0]
    if output == "transcript-only":
        assert audio["log_like_per_frame"] == 0.0 and audio["frames"] == 0.0
    else:
        assert audio["log_like_per_frame"] == round(audio["log_like_per_frame"])
