"""Shadow (and target) jobs trained with a defense: advreg's reference voices from the manifest."""

from __future__ import annotations

import json

from auditor.voice.shadow import train_model_job


def test_model_job_passes_advreg_reference_speakers(
    tiny_manifest, tiny_roles, tiny_recipe, tmp_path
):
    config = json.loads(json.dumps(tiny_recipe))
    config["training"]["advreg"] = {
        "lam": 1.0,
        "warmup_epochs": 0,
        "reference": "speakers",
        "reference_speakers": tiny_roles["nonmember"],
    }
    out = tmp_path / "adv"
    train_model_job(str(tiny_manifest), tiny_roles["member"], config, 0, str(out))
    adv = json.loads((out / "model.json").read_text())["training"]["defenses"]["advreg"]
    assert adv["reference_speakers"] == tiny_roles["nonmember"] and adv["reference_utterances"] == 4
    report = json.loads((out / "train_report.json").read_text())
    assert report["epochs"][0]["advreg_attack_loss"] > 0
    data = json.loads((out / "data.json").read_text())
    assert data["speakers"] == tiny_roles["member"] and len(data["advreg_reference"]) == 4
