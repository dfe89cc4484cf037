"""Tests for auditor.voice.shadow: IN/OUT halves, real shadow training, caching, the Ray path."""

import json

import pytest

from auditor.voice.shadow import cache_key, is_trained, load_shadow, shadow_splits


def test_shadow_splits_are_disjoint_and_complementary_in_pairs():
    pool = [f"s{i}" for i in range(11)]
    splits = shadow_splits(pool, 3, seed=4)
    for s in splits:
        assert not set(s["in"]) & set(s["out"])
        assert sorted(s["in"] + s["out"]) == sorted(pool)
    assert splits[0]["in"] == splits[1]["out"] and splits[0]["out"] == splits[1]["in"]
    assert splits == shadow_splits(pool, 3, seed=4)
    with pytest.raises(ValueError, match="at least 2 speakers"):
        shadow_splits(["a"], 2, seed=0)


def test_shadow_splits_keep_their_draws():
    """Pinned (the draw of the code before it was built on ``corpora.splits.draw_splits``):
    cached shadows are keyed by their IN speakers."""
    assert shadow_splits([f"s{i}" for i in range(7)], 3, seed=4) == [
        {"in": ["s0", "s1", "s2"], "out": ["s3", "s4", "s5", "s6"]},
        {"in": ["s3", "s4", "s5", "s6"], "out": ["s0", "s1", "s2"]},
        {"in": ["s0", "s1", "s4"], "out": ["s2", "s3", "s5", "s6"]},
    ]


def test_trained_shadows_hold_their_speakers_only(tiny_shadows, tiny_roles):
    assert [s.name for s in tiny_shadows] == ["shadow-0", "shadow-1"]
    for s in tiny_shadows:
        assert is_trained(s.path)
        data = s.data()
        assert data["speakers"] == list(s.speakers_in)
        assert set(s.speakers_in) | set(s.speakers_out) == set(tiny_roles["pool"])
        assert load_shadow(s.path) == s


class _CountingSerial:
    def __init__(self):
        self.jobs = []

    def map(self, fn, jobs, *, desc=None):
        self.jobs += list(jobs)
        return [fn(**j) for j in jobs]


def test_cached_shadows_are_reused_and_changes_retrain(
    tiny_shadows, train_tiny_shadows, tiny_manifest, tiny_recipe
):
    cache = tiny_shadows[0].path.parent
    counting = _CountingSerial()
    again, _ = train_tiny_shadows(k=2, seed=0, cache_dir=cache, executor=counting)
    assert counting.jobs == [] and again == tiny_shadows
    changed = tiny_recipe | {"training": tiny_recipe["training"] | {"epochs": 2}}
    assert cache_key(changed, again[0].speakers_in, 1, tiny_manifest) != again[0].path.name[7:]
    # a third shadow is new; the two cached ones are not retrained
    three, _ = train_tiny_shadows(k=3, seed=0, cache_dir=cache, executor=counting)
    assert len(counting.jobs) == 1 and three[:2] == tiny_shadows
    assert json.loads((three[2].path / "shadow.json").read_text())["seed"] == 3


@pytest.mark.slow  # starts a local Ray instance
def test_shadows_train_on_a_local_ray_instance(train_tiny_shadows, tmp_path):
    import ray

    from auditor.executor import get_executor

    executor = get_executor("ray", address="local", max_workers=1, threads_per_worker=1)
    try:
        shadows, _ = train_tiny_shadows(k=2, seed=5, cache_dir=tmp_path, executor=executor)
    finally:
        ray.shutdown()
    assert all(is_trained(s.path) for s in shadows)
    assert shadows[0].speakers_in == shadows[1].speakers_out


def test_cache_key_changes_with_the_training_code(tiny_manifest, tiny_recipe, monkeypatch):
    from auditor.voice import shadow

    before = cache_key(tiny_recipe, ["spk1"], 0, tiny_manifest)
    assert cache_key(tiny_recipe, ["spk1"], 0, tiny_manifest) == before  # stable
    monkeypatch.setattr(shadow, "training_code_digest", lambda: "edited recognizer code")
    assert cache_key(tiny_recipe, ["spk1"], 0, tiny_manifest) != before


def test_a_shadow_that_fails_to_train_is_left_out(train_tiny_shadows, tmp_path, monkeypatch):
    from auditor.voice import shadow

    real = shadow.train_model_job

    def flaky(manifest, speakers, config, seed, out_dir):
        if seed == 2:  # the second shadow
            raise RuntimeError("out of memory")
        return real(manifest, speakers, config, seed, out_dir)

    monkeypatch.setattr(shadow, "train_model_job", flaky)
    shadows, _ = train_tiny_shadows(k=3, seed=0, cache_dir=tmp_path / "c", executor="serial")
    assert [s.name for s in shadows] == ["shadow-0", "shadow-2"]
    monkeypatch.setattr(shadow, "train_model_job", lambda **job: 1 / 0)
    with pytest.raises(shadow.ShadowTrainingError, match="ZeroDivisionError"):
        train_tiny_shadows(k=2, seed=5, cache_dir=tmp_path / "d", executor="serial")
