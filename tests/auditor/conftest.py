"""Fixtures of the speech-audit tests: tiny real models, a real device, one tiny audit run.

Everything is real but minute: the shared 4-speaker ``tiny_synth_corpus`` is split into one
member, one non-member and a 2-speaker shadow pool; the target and two shadows are trained
with the project's recipe for one epoch of a 32-unit MLP; the device serves the target over
the embedded amqtt broker. The audit's figures are meaningless at this size; the tests check
the mechanics (records, resumption, skipped settings, files, reports). ``features_computed``
records every answer an audit computes features of (e.g. to see the shadows' view).
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def tiny_manifest(tiny_synth_corpus, tmp_path_factory):
    from corpora.prepare import prepare_corpus

    out = tmp_path_factory.mktemp("tiny_prepared")
    return prepare_corpus(tiny_synth_corpus, "timit", out, progress=False).manifest


@pytest.fixture(scope="session")
def tiny_roles(tiny_manifest):
    """{"member": [s], "nonmember": [s], "pool": [s, s]} over the 4 tiny speakers."""
    from corpora.manifest import read_manifest

    speakers = sorted({u.speaker for u in read_manifest(tiny_manifest)})
    return {"member": speakers[:1], "nonmember": speakers[1:2], "pool": speakers[2:]}


@pytest.fixture(scope="session")
def tiny_target(tiny_manifest, tiny_roles, tiny_recipe, tmp_path_factory):
    """Folder of the target checkpoint (trained on the one member speaker)."""
    from auditor.voice.shadow import train_model_job

    out = tmp_path_factory.mktemp("tiny_target") / "target"
    train_model_job(str(tiny_manifest), tiny_roles["member"], tiny_recipe, 0, str(out))
    return out


@pytest.fixture(scope="session")
def train_tiny_shadows(tiny_manifest, tiny_roles, tiny_recipe):
    """``train(k, seed, cache_dir, executor)``: ``auditor.voice.shadow.train_shadows`` of ``k``
    shadows on the tiny pool speakers with the tiny recipe; returns its ``(shadows, ...)``."""
    from auditor.voice.shadow import train_shadows

    def train(k: int, seed: int, cache_dir, executor):
        return train_shadows(
            tiny_manifest,
            tiny_roles["pool"],
            tiny_recipe,
            k=k,
            seed=seed,
            cache_dir=cache_dir,
            executor=executor,
        )

    return train


@pytest.fixture(scope="session")
def tiny_shadows(train_tiny_shadows, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiny_shadows")
    shadows, _ = train_tiny_shadows(k=2, seed=0, cache_dir=cache, executor="serial")
    return shadows


@pytest.fixture(scope="session")
def amqtt_url(amqtt_broker) -> str:
    return amqtt_broker.url


@pytest.fixture(scope="session")
def tiny_device(tiny_target, amqtt_url):
    """(broker URL, device id) of the tiny target served over amqtt."""
    from device_sim.server import DeviceServer
    from models.asr.recognizer import load_recognizer

    with DeviceServer(
        load_recognizer(tiny_target), "audit-dev", amqtt_url, profile_report={"profile": "host"}
    ):
        yield amqtt_url, "audit-dev"


@pytest.fixture(scope="session")
def run_tiny_audit(tiny_manifest, tiny_roles, tiny_target, tiny_shadows):
    """``run(run_dir, broker, device_id, **changes)``: ``audit_users`` on the tiny roles,
    shadows and target record (K=1, small forests and bootstrap); returns its metrics."""
    from auditor.voice.audit import audit_users

    def run(run_dir, broker: str, device_id: str, **changes) -> dict:
        kwargs = {
            "members": tiny_roles["member"],
            "nonmembers": tiny_roles["nonmember"],
            "shadows": tiny_shadows,
            "broker": broker,
            "device_id": device_id,
            "target_data": json.loads((tiny_target / "data.json").read_text()),
            "audios_per_user": 1,
            "users_sweep": (2,),
            "audios_sweep": (1,),
            "n_estimators": 10,
            "n_bootstrap": 20,
            "timeout_s": 20.0,
            "progress": False,
        }
        return audit_users(tiny_manifest, run_dir, **{**kwargs, **changes})

    return run


@pytest.fixture(scope="session")
def tiny_audit_run(tiny_device, run_tiny_audit, tmp_path_factory):
    """Run directory of one audit of the tiny device (K=1; sweeps K in {1, 2})."""
    run_dir = tmp_path_factory.mktemp("tiny_audit")
    broker, device_id = tiny_device
    run_tiny_audit(run_dir, broker, device_id, audios_sweep=(1, 2), n_estimators=20, n_bootstrap=50)
    return run_dir


@pytest.fixture
def features_computed(monkeypatch) -> list[tuple[str, dict, dict]]:
    """``[(utt_id, answer, features), ...]`` of every answer the audit computes features of."""
    import auditor.voice.audit

    seen: list[tuple[str, dict, dict]] = []
    real = auditor.voice.audit.utterance_features

    def spy(answer, reference_phones, utt_id="?"):
        features = real(answer, reference_phones, utt_id)
        seen.append((utt_id, answer, features))
        return features

    monkeypatch.setattr(auditor.voice.audit, "utterance_features", spy)
    return seen


@pytest.fixture
def audit_cli_args(tiny_roles, tiny_manifest, tiny_shadows, tiny_target, tmp_path):
    """``auditor audit`` arguments for the tiny world against ``(device_id, broker)``: a users
    file from ``tiny_roles``, one audio per user, a tiny forest and bootstrap; the run goes to
    ``tmp_path / "run"``."""
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps({"members": tiny_roles["member"], "nonmembers": tiny_roles["nonmember"]})
    )

    def args(device_id: str, broker: str) -> list[str]:
        return [
            "audit",
            "--device-id",
            device_id,
            "--broker",
            broker,
            "--users",
            str(users),
            "--manifest",
            str(tiny_manifest),
            "--shadows",
            str(tiny_shadows[0].path.parent),
            "--target-data",
            str(tiny_target / "data.json"),
            "--out",
            str(tmp_path / "run"),
            "--audios-per-user",
            "1",
            "--users-sweep",
            "2",
            "--audios-sweep",
            "1",
            "--n-estimators",
            "10",
            "--n-bootstrap",
            "20",
        ]

    return args
