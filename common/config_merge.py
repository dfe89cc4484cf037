"""Nested-dict merging, the one implementation behind every config layer.

Recognizer configs merge their overrides strictly (:func:`models.asr.config.merge_config`),
defense settings overlay each other, experiment configs are copied and seeded
(:mod:`auditor.config`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping


class ConfigError(ValueError):
    """A config key that does not exist or a value of the wrong kind."""


def deep_merge(
    base: Mapping, extra: Mapping, *, strict: bool = False, where: str = "config"
) -> dict:
    """A new dict: ``base`` with ``extra``'s keys set, nested mappings merged key by key.

    Neither input is changed, nor shares a mutable value with the result (mappings are rebuilt
    as dicts, other values deep-copied). Without ``strict``, new keys are added and a mapping
    replaces, or is replaced by, a plain value. With ``strict``, every key of ``extra`` must
    exist in ``base`` and a section of ``base`` takes only a mapping; :class:`ConfigError`
    otherwise, naming the key's dotted path below ``where``.

    Examples
    --------
    >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}, "b": 4})
    {'a': {'x': 1, 'y': 3}, 'b': 4}
    """
    out = {key: _copied(value) for key, value in base.items()}
    for key, value in extra.items():
        if strict and key not in out:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(out))})")
        section = out.get(key)
        if isinstance(section, dict) and isinstance(value, Mapping):
            out[key] = deep_merge(section, value, strict=strict, where=f"{where}.{key}")
        elif strict and isinstance(section, dict):
            raise ConfigError(f"{where}.{key}: expected a mapping, got {value!r}")
        else:
            out[key] = _copied(value)
    return out


def _copied(value):
    return deep_merge(value, {}) if isinstance(value, Mapping) else copy.deepcopy(value)
