"""common.config_merge: nested merging, lenient and strict, never sharing state."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from common.config_merge import ConfigError, deep_merge

BASE = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": None}


def test_nested_sections_merge_key_by_key_and_new_keys_are_added():
    out = deep_merge(BASE, {"a": {"y": [3]}, "d": {"z": 1}})
    assert out == {"a": {"x": 1, "y": [3]}, "b": 2, "c": None, "d": {"z": 1}}
    assert list(out) == ["a", "b", "c", "d"]


def test_lenient_merge_replaces_sections_and_plain_values_alike():
    assert deep_merge(BASE, {"a": 5, "b": {"q": 1}}) == {"a": 5, "b": {"q": 1}, "c": None}


def test_the_result_shares_nothing_with_its_inputs():
    extra = {"a": {"y": [3]}}
    out = deep_merge(BASE, extra)
    out["a"]["y"].append(4)
    out["a"]["x"] = 9
    assert BASE["a"] == {"x": 1, "y": [1, 2]} and extra == {"a": {"y": [3]}}
    copy = deep_merge(OrderedDict(a=OrderedDict(x=[1])), {})
    assert type(copy) is dict and type(copy["a"]) is dict


def test_strict_merge_refuses_unknown_keys_and_plain_values_for_sections():
    assert deep_merge(BASE, {"a": {"x": 3}, "c": {"k": 1}}, strict=True)["c"] == {"k": 1}
    with pytest.raises(ConfigError, match=r"cfg\.a: unknown key 'z' \(known: x, y\)"):
        deep_merge(BASE, {"a": {"z": 1}}, strict=True, where="cfg")
    with pytest.raises(ConfigError, match=r"config\.a: expected a mapping, got 3"):
        deep_merge(BASE, {"a": 3}, strict=True)


def test_recognizer_config_error_is_the_same_class():
    from models.asr.config import ConfigError as RecognizerConfigError
    from models.asr.config import merge_config

    assert RecognizerConfigError is ConfigError
    with pytest.raises(ConfigError, match="features: unknown key 'bins'"):
        merge_config({"features": {"num_mel_bins": 40}}, {"features": {"bins": 1}})
