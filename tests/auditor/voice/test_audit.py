"""Tests for auditor.voice.audit: the tiny real device (files, both conditions, skips, bad users) and
40 users of a fake device with separable answers (the attacks' orientation)."""

import json
import zlib

import numpy as np
import pytest

from auditor.voice.audit import AuditError, audit_users, select_audios
from auditor.voice.reference import STATISTICS
from corpora.manifest import ManifestError, Utterance, read_manifest, write_manifest


def test_audit_writes_metrics_for_both_conditions(tiny_audit_run, tiny_roles):
    metrics = json.loads((tiny_audit_run / "metrics.json").read_text())
    assert metrics["conditions"] == ["seen", "unseen"]
    for name in (
        "seen/random_forest",
        "seen/calibrated_test",
        "unseen/random_forest",
        "unseen/calibrated_test",
    ):
        m = metrics["attacks"][name]
        for key in ("accuracy", "precision", "recall", "f1", "auc", "tpr_at_fpr"):
            assert key in m
        assert (m["n_members"], m["n_nonmembers"]) == (1, 1)
        assert m["tpr_at_fpr"]["0.01"] is None and "unmeasurable" in m["tpr_at_fpr_note"]
    # the member has 1 held-out audio: the unseen condition cannot use K=2, and says so
    assert any(
        s["condition"] == "unseen" and s["audios_per_user"] == 2 for s in metrics["sweep_skipped"]
    )
    assert {(r["condition"], r["audios_per_user"]) for r in metrics["rows"]} == {
        ("seen", 1),
        ("seen", 2),
        ("unseen", 1),
    }
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


def test_bad_users_get_clear_errors(tiny_manifest, tiny_roles, tiny_shadows, tiny_device, tmp_path):
    broker, device_id = tiny_device
    common = dict(shadows=tiny_shadows, broker=broker, device_id=device_id, progress=False)
    with pytest.raises(ManifestError, match="speakers not in manifest: NOBODY"):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=["NOBODY"],
            nonmembers=tiny_roles["nonmember"],
            **common,
        )
    with pytest.raises(AuditError, match="shadow-0 was built on audited users"):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=tiny_roles["pool"][:1],
            nonmembers=tiny_roles["nonmember"],
            **common,
        )
    # 1 held-out audio per member: 3 audios per user cannot be audited in any condition
    with pytest.raises(AuditError, match="no condition could be audited with 9 audios"):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=tiny_roles["member"],
            nonmembers=tiny_roles["nonmember"],
            audios_per_user=9,
            audios_sweep=(9,),
            **common,
        )


def test_member_labels_are_checked_against_the_targets_data(
    tiny_manifest, tiny_roles, tiny_target, tiny_shadows, tmp_path
):
    data = json.loads((tiny_target / "data.json").read_text())
    member, nonmember = tiny_roles["member"][0], tiny_roles["nonmember"][0]
    # refused before any query: no broker listens at this address
    common = dict(
        shadows=tiny_shadows, broker="mqtt://127.0.0.1:9", device_id="none", progress=False
    )
    with pytest.raises(
        AuditError,
        match=f"members the target was not trained on: {nonmember}; "
        f"non-members the target was trained on: {member}$",
    ):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=[nonmember],
            nonmembers=[member],
            target_data=data,
            **common,
        )
    # a record without its speaker list: the speakers of its utterances count
    unlisted = {k: v for k, v in data.items() if k != "speakers"}
    extra = next(u.utt_id for u in read_manifest(tiny_manifest, [nonmember]))
    with pytest.raises(AuditError, match=f"non-members the target was trained on: {nonmember}$"):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=[member],
            nonmembers=[nonmember],
            target_data=unlisted | {"dev": [*data["dev"], extra]},
            **common,
        )
    nothing = unlisted | dict.fromkeys(("train", "dev", "heldout"), [])
    with pytest.raises(
        AuditError, match=f"record: members the target was not trained on: {member}$"
    ):
        audit_users(
            tiny_manifest,
            tmp_path,
            members=[member],
            nonmembers=[nonmember],
            target_data=nothing,
            **common,
        )


PHONES = ("sil", "k", "ae", "t", "s", "aa", "n", "d", "iy", "sil")


def _fake_answer(utt: Utterance, trained: bool, model: str = "device") -> dict:
    """A recognizer answer that is better on trained speakers: fewer deletions, higher scores.

    Each audio has its own difficulty (shared by every model: what reference calibration
    removes) and each model its own small noise on it.
    """
    rng = np.random.default_rng(zlib.crc32(utt.utt_id.encode()))
    noise = np.random.default_rng(zlib.crc32(f"{model}/{utt.utt_id}".encode())).normal(0, 0.05)
    dropped = rng.choice(np.arange(1, len(PHONES) - 1), 1 if trained else 4, replace=False)
    phones = [p for i, p in enumerate(PHONES) if i not in dropped]
    quality = 1.0 if trained else 0.0
    return {
        "phones": phones,
        "log_like_per_frame": -3.0 + quality + rng.normal(0, 0.3) + noise,
        "frames": 90,
        "phone_confidences": list(
            rng.uniform(0.3, 0.6) + 0.3 * quality + noise + np.zeros(len(phones))
        ),
        "output": "full",
    }


@pytest.fixture
def make_fake_world(tmp_path, monkeypatch):
    """``make(k)``: 40 audited users (20 true members) and ``k`` shadows of 20 IN / 20 OUT
    each, 3 audios per speaker, answered by a fake device and fake shadows that do better on
    their training speakers: the whole audit runs on separable features without training or
    MQTT."""
    import auditor.voice.audit as audit
    import auditor.voice.reference_audit as reference_audit
    from auditor.voice.query import QueryResult
    from auditor.voice.shadow import ShadowModel, shadow_splits

    members = [f"m{i:02d}" for i in range(20)]
    nonmembers = [f"n{i:02d}" for i in range(20)]
    pool = [f"p{i:02d}" for i in range(40)]
    utts = [
        Utterance(f"{s}_{j}", s, f"/nowhere/{s}_{j}.wav", 1.0, "text", PHONES)
        for s in members + nonmembers + pool
        for j in range(3)
    ]
    manifest = write_manifest(tmp_path / "prepared", utts)

    def make(k: int) -> dict:
        shadows = []
        for j, split in enumerate(shadow_splits(pool, k, seed=0)):
            path = tmp_path / f"shadow-{j}"
            path.mkdir()
            trained = [u.utt_id for u in utts if u.speaker in split["in"]]
            (path / "data.json").write_text(json.dumps({"train": trained, "heldout": []}))
            shadows.append(
                ShadowModel(f"shadow-{j}", path, tuple(split["in"]), tuple(split["out"]), j + 1)
            )

        def fake_device(utterances, record, **kw):
            return QueryResult(
                answers={u.utt_id: _fake_answer(u, u.speaker in members) for u in utterances},
                status={"state": "online", "output": "full"},
            )

        def fake_shadow(shadow, utterances, record, **kw):
            return QueryResult(
                answers={
                    u.utt_id: _fake_answer(u, u.speaker in shadow.speakers_in, shadow.name)
                    for u in utterances
                }
            )

        def load(path):
            return next(s for s in shadows if s.path == path)

        monkeypatch.setattr(audit, "query_device", fake_device)
        for module in (audit, reference_audit):
            monkeypatch.setattr(module, "load_recognizer", load)
            monkeypatch.setattr(module, "query_recognizer", fake_shadow)
        return {
            "manifest": manifest,
            "members": members,
            "nonmembers": nonmembers,
            "shadows": shadows,
        }

    return make


@pytest.fixture
def fake_world(make_fake_world):
    """The fake world with 2 shadows."""
    return make_fake_world(2)


def _fake_audit(world, run_dir, members, nonmembers) -> tuple[dict, list[dict]]:
    metrics = audit_users(
        world["manifest"],
        run_dir,
        members=members,
        nonmembers=nonmembers,
        shadows=world["shadows"],
        broker="mqtt://fake:1",
        device_id="fake",
        audios_per_user=3,
        users_sweep=(),
        audios_sweep=(),
        n_estimators=50,
        n_bootstrap=0,
        progress=False,
    )
    return metrics, json.loads((run_dir / "users.json").read_text())


def test_audit_of_many_users_scores_members_higher(fake_world, tmp_path):
    members, nonmembers = fake_world["members"], fake_world["nonmembers"]
    metrics, users = _fake_audit(fake_world, tmp_path / "run", members, nonmembers)
    assert metrics["conditions"] == ["any"]
    for attack in ("random_forest", "calibrated_test"):
        m = metrics["attacks"][f"any/{attack}"]
        assert (m["n_members"], m["n_nonmembers"]) == (20, 20) and m["auc"] > 0.8
    verdicts = {u["speaker"]: u["conditions"]["any"] for u in users}
    forest = {s: v["forest_score"] for s, v in verdicts.items()}
    assert np.mean([forest[s] for s in members]) > np.mean([forest[s] for s in nonmembers]) + 0.3
    assert sum(verdicts[s]["verdict"] == "member" for s in members) >= 16
    assert sum(verdicts[s]["verdict"] == "non-member" for s in nonmembers) >= 16
    assert np.median([verdicts[s]["p_value"] for s in members]) < 0.05
    assert np.median([verdicts[s]["p_value"] for s in nonmembers]) > 0.2


def test_audit_with_swapped_labels_scores_below_chance(fake_world, tmp_path):
    # the device still answers by the true membership: labels swapped must look anti-correlated
    members, nonmembers = fake_world["nonmembers"], fake_world["members"]
    metrics, _ = _fake_audit(fake_world, tmp_path / "run", members, nonmembers)
    for attack in ("random_forest", "calibrated_test"):
        assert metrics["attacks"][f"any/{attack}"]["auc"] < 0.2


def test_reference_calibrated_attack_needs_four_references(fake_world, tmp_path):
    members, nonmembers = fake_world["members"], fake_world["nonmembers"]
    metrics, users = _fake_audit(fake_world, tmp_path / "run", members, nonmembers)
    assert "any/reference_calibrated" not in metrics["attacks"]
    assert metrics["reference_calibrated"] == {
        "skipped": "2 shadows; the attack needs 4 references"
    }
    assert "reference_score" not in users[0]["conditions"]["any"]


def test_reference_calibrated_attack_chosen_on_references_scores_members(make_fake_world, tmp_path):
    world = make_fake_world(4)
    members, nonmembers = world["members"], world["nonmembers"]
    metrics, users = _fake_audit(world, tmp_path / "run", members, nonmembers)
    m = metrics["attacks"]["any/reference_calibrated"]
    assert (m["n_members"], m["n_nonmembers"]) == (20, 20) and m["auc"] > 0.95
    choice = metrics["reference_calibrated"]["any"]
    assert choice["statistic"] in STATISTICS and choice["threshold_fpr_on_references"] == 0.05
    assert choice["reference_users"] == {"in": 80, "out": 80}  # 4 references x 20 + 20
    assert choice["sd"].startswith("global")  # 1 to 3 OUT references per pool audio
    realised = choice["realised_on_audited_users"]
    assert realised["fpr"] <= 0.15 and realised["tpr"] >= 0.9
    assert metrics["queries"]["answered"] == 40 * 3 + 40 * 3  # audited + population audios
    verdicts = {u["speaker"]: u["conditions"]["any"] for u in users}
    assert sum(verdicts[s]["reference_verdict"] == "member" for s in members) >= 18
    assert sum(verdicts[s]["reference_verdict"] == "member" for s in nonmembers) <= 3
    assert max(verdicts[s]["reference_p_value"] for s in members) < 0.05
    assert all(0 < v["reference_p_value"] <= 1 for v in verdicts.values())
