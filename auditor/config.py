"""Experiment configuration and run directories (``docs/design.md``, "Runs").

One YAML file per experiment (``recipes/<name>/config.yaml``), possibly with override sections
such as ``quick`` (the smoke configuration, dotted keys -> values); command-line overrides
``--key=value`` or ``--section.key=value`` may only touch keys the YAML already has, and take
the type of the value they replace. A run directory receives the resolved ``config.yaml``
(with the run's seed) and, at the end, ``metrics.json``. Shared by the speech audit and the
CIFAR-10 recipes.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import yaml

from common.config_merge import deep_merge


def load_config(
    path, overrides: Iterable[str] = (), *, sections: Mapping[str, bool] | None = None
) -> dict:
    """Read one experiment's YAML mapping, apply its ``sections``, then ``overrides``.

    ``sections`` maps the names of the YAML's override sections, in the order they apply, to
    whether they do (e.g. ``{"quick": quick}``): each is removed from the config and, when its
    flag is set, applied (:func:`apply_section`). ``overrides`` come last
    (:func:`apply_overrides`).
    """
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    for section, use in (sections or {}).items():
        config = apply_section(config, section, use=use)
    return apply_overrides(config, overrides, source=str(path))


def apply_section(config: Mapping, section: str, *, use: bool) -> dict:
    """``config`` without its ``section`` mapping, whose keys are applied as overrides if ``use``.

    Experiments keep a ``quick`` section (dotted keys -> values) for their smoke configuration
    (``--quick``); it is the one way to get one.
    """
    config = dict(config)
    values = config.pop(section, None) or {}
    if not use:
        return config
    return apply_overrides(config, [f"{k}={v}" for k, v in values.items()], source=section)


def apply_overrides(config: Mapping, overrides: Iterable[str], *, source: str = "config") -> dict:
    """Return a copy of ``config`` with ``--a.b=value`` overrides applied.

    Parameters
    ----------
    config : mapping
        Nested configuration (sections are mappings).
    overrides : iterable of str
        ``"--key=value"``, ``"--section.key=value"`` (the leading dashes are optional). The key
        must exist; the value is parsed as YAML and must fit the type of the current value
        (an int is accepted where a float was; anything goes where the value was null).
    source : str
        Name used in error messages.

    Raises
    ------
    ValueError
        For a malformed override, an unknown key (the message lists close matches), a whole
        section being overridden, or a value of the wrong type.

    Examples
    --------
    >>> apply_overrides({"train": {"epochs": 10}}, ["--train.epochs=3"])
    {'train': {'epochs': 3}}
    """
    resolved = deep_merge(config, {})
    known = sorted(_flat_keys(resolved))
    for override in overrides:
        text = override[2:] if override.startswith("--") else override
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise ValueError(f"override {override!r} is not of the form --key=value")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown key {key!r} in override {override!r} for {source}{hint}")
        *parents, leaf = key.split(".")
        section = resolved
        for name in parents:
            section = section[name]
        section[leaf] = _typed_like(section[leaf], raw, key)
    return resolved


def prepare_run_dir(out, config: Mapping, seed: int) -> Path:
    """Create the run directory and write the resolved ``config.yaml`` (with ``seed``) into it."""
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = deep_merge(config, {"seed": int(seed)})
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8"
    )
    return run_dir


def save_metrics(run_dir, metrics: Mapping) -> Path:
    """Write ``metrics.json`` into ``run_dir`` (numpy values converted, NaN/inf become null)."""
    path = Path(run_dir) / "metrics.json"
    path.write_text(
        json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


def _flat_keys(config: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for name, value in config.items():
        key = f"{prefix}{name}"
        keys.append(key)
        if isinstance(value, Mapping):
            keys.extend(_flat_keys(value, key + "."))
    return keys


def _typed_like(current, raw: str, key: str):
    if isinstance(current, Mapping):
        raise ValueError(f"{key!r} is a section; override its keys ({key}.<name>=...)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(f"{key}: cannot parse value {raw!r}: {error}") from error
    if current is None:
        return value
    if isinstance(current, str):
        return raw
    if _same_kind(current, value):
        return float(value) if isinstance(current, float) else value
    expected = type(current).__name__
    raise ValueError(f"{key}: expected a {expected} like {current!r}, got {raw!r}")


def _same_kind(current, value) -> bool:
    """Whether ``value`` may replace ``current``: a bool, int or list for one, a number for a
    float."""
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, float):
        return isinstance(value, int | float)
    return isinstance(current, int | list) and isinstance(value, type(current))


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
