"""auditor.voice.defense_tables: the pick of the defense closest to chance."""

from __future__ import annotations

import pytest

from auditor.voice.defense_tables import closest_to_chance


def _setting(name: str, per_increase: float, rf: float | None, cal: float | None) -> dict:
    """A voice defense setting with the given unseen-audio AUCs (seen ones at 0.9)."""
    aucs = {
        "seen/random_forest": 0.9,
        "seen/calibrated_test": 0.9,
        "unseen/random_forest": rf,
        "unseen/calibrated_test": cal,
    }
    return {
        "setting": name,
        "per_increase": per_increase,
        "attacks": {k: {} if v is None else {"auc": v} for k, v in aucs.items()},
    }


def test_closest_to_chance_takes_the_stronger_attack_then_the_smaller_per_cost():
    settings = [
        _setting("none", 0.0, 0.5, 0.5),  # the baseline never counts, even at chance
        _setting("l2", 0.01, 0.52, 0.80),  # the calibrated test still sees it: 0.30 away
        _setting("dropout", 0.20, 0.45, 0.53),  # 0.05 away (the forest), but costly
        _setting("dpsgd", 0.05, 0.55, 0.46),  # 0.05 away too, cheaper: the answer
        _setting("advreg", 0.0, None, None),  # unseen audios not audited: left out
    ]
    best = closest_to_chance(settings)
    assert best == {
        "setting": "dpsgd",
        "unseen_auc_distance_to_chance": pytest.approx(0.05),
        "per_increase": 0.05,
        "attack": "random_forest",
    }
    assert closest_to_chance(settings[:2])["attack"] == "calibrated_test"
    assert closest_to_chance([settings[0], settings[-1]]) == {}
