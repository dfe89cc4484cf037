"""The defense registry: every membership-privacy defense as a registered name.

A defense acts at one *stage*:

- ``"train"``: changes how the model is trained (L2, dropout, adversarial regularization,
  DP-SGD);
- ``"serve"``: changes only what the model answers (top-k, rounding, label-only);
- ``"model"``: changes what the model is (model stacking).

Each :class:`DefenseSpec` names its parameters with their defaults (the default's type is the
parameter's type) and the paths (``"cifar"``, ``"voice"``) that implement it. Unknown names and
parameters are refused with a :class:`ValueError` that lists the known ones (the style of
Opacus' accountant registry). Each defense has one name: the names it was once also spelled
(:data:`RENAMED`) are refused with the one to write instead.

Examples
--------
>>> parse_defense("dpsgd:noise_multiplier=1.0,max_grad_norm=2")
('dpsgd', {'noise_multiplier': 1.0, 'max_grad_norm': 2.0, 'delta': 1e-05})
>>> get_defense("label_only").stage
'serve'

Defenses combine with ``+`` (:func:`parse_defenses`), e.g. ``"dropout:p=0.5+augment"``: at most
one of each name, ``none`` alone, at most one serving defense, and ``advreg`` / ``dpsgd`` /
``stacking`` (which each replace the training loop or the model) at most one of them; ``advreg``
with ``dpsgd`` is refused with :data:`ADVREG_WITH_DPSGD`.

>>> parse_defenses("dropout:p=0.5+topk:k=1")
[('dropout', {'p': 0.5}), ('topk', {'k': 1})]
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = ("train", "serve", "model")
PATHS = ("cifar", "voice")


class UnknownDefenseError(ValueError):
    """A defense name that is not registered (or an earlier name, :data:`RENAMED`)."""


@dataclass(frozen=True)
class DefenseSpec:
    """One registered defense.

    Attributes
    ----------
    name : str
        Registry key.
    stage : {"train", "serve", "model"}
        Where the defense acts (module docstring).
    defaults : dict
        Parameter -> default value; the default's type is the parameter's type (an int is
        accepted for a float parameter).
    paths : tuple of str
        Paths implementing it (``"cifar"``, ``"voice"``).
    doc : str
        One line: what it does, with units.
    """

    name: str
    stage: str
    defaults: dict = field(default_factory=dict)
    paths: tuple[str, ...] = PATHS
    doc: str = ""

    def params(self, given: dict | None = None) -> dict:
        """The defaults updated by ``given``, type-checked; unknown parameters are refused."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"defense {self.name!r} has no parameter(s) {unknown}; "
                f"it takes {sorted(self.defaults) or 'none'}"
            )
        out = dict(self.defaults)
        for key, value in given.items():
            out[key] = _typed(self.defaults[key], value, f"{self.name}.{key}")
        return out


DEFENSES: dict[str, DefenseSpec] = {
    spec.name: spec
    for spec in (
        DefenseSpec("none", "train", {}, doc="no defense (the undefended model)"),
        DefenseSpec(
            "l2",
            "train",
            {"weight_decay": 0.001},
            doc="L2 regularization: weight_decay * w added to each gradient",
        ),
        DefenseSpec("dropout", "train", {"p": 0.5}, doc="dropout probability p in [0, 1)"),
        DefenseSpec(
            "topk",
            "serve",
            {"k": 3},
            doc="answer only the k largest probabilities (others 0, renormalised)",
        ),
        DefenseSpec(
            "rounding",
            "serve",
            {"decimals": 1},
            doc="probabilities rounded to `decimals` decimal places",
        ),
        DefenseSpec(
            "label_only",
            "serve",
            {},
            doc="answer only the predicted label (one-hot; the voice path: transcript only)",
        ),
        DefenseSpec(
            "stacking",
            "model",
            {"n_first": 2, "meta_epochs": 30},
            paths=("cifar",),
            doc="ML-Leaks model stacking: n_first models on disjoint parts + a meta-classifier",
        ),
        DefenseSpec(
            "advreg",
            "train",
            {"lam": 1.0, "k_steps": 1, "ref_fraction": 0.2, "attack_lr": 0.001, "warmup_epochs": 0},
            doc="Nasr et al. adversarial regularization with trade-off weight lam",
        ),
        DefenseSpec(
            "augment",
            "train",
            {"flip": True, "crop": 4},
            paths=("cifar",),
            doc="training-data augmentation: random mirror (flip), random crop padded by crop px",
        ),
        DefenseSpec(
            "dpsgd",
            "train",
            {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5},
            doc="DP-SGD (Opacus): per-record clipping to max_grad_norm, Gaussian noise; epsilon "
            "covers the SGD steps per training record (CIFAR: an image; voice: a spliced "
            "window), at delta (voice: min(delta, 1/(10 n)), n training windows)",
        ),
    )
}

#: Earlier names of registered defenses -> the name to write instead (refused, not aliased).
RENAMED: dict[str, str] = {"transcript_only": "label_only", "top_k": "topk"}


def get_defense(name: str) -> DefenseSpec:
    """The :class:`DefenseSpec` registered as ``name``.

    Raises
    ------
    UnknownDefenseError
        When ``name`` is not registered; the message lists the known names, or names the one to
        write for an earlier name (:data:`RENAMED`).
    """
    if name in RENAMED:
        raise UnknownDefenseError(f"defense {name!r} is an old name: write {RENAMED[name]!r}")
    try:
        return DEFENSES[name]
    except KeyError:
        known = ", ".join(sorted(DEFENSES))
        raise UnknownDefenseError(f"unknown defense {name!r}; known: {known}") from None


def parse_defense(text: str) -> tuple[str, dict]:
    """``"name"`` or ``"name:key=value,key=value"`` -> ``(name, params)``.

    ``name`` must be registered (:func:`get_defense`); ``params`` are the defaults updated by
    the given values, each converted to the type of its default.

    Raises
    ------
    UnknownDefenseError
        For an unknown or earlier name.
    ValueError
        For a malformed item, an unknown parameter or a value of the wrong type.
    """
    if "+" in str(text):
        raise ValueError(f"{text!r} combines defenses with '+': one defense expected here")
    name, _, rest = str(text).strip().partition(":")
    spec = get_defense(name.strip())
    given = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"defense parameter {item!r} in {text!r} is not key=value")
        given[key.strip()] = value.strip()
    return spec.name, spec.params(given)


#: Defenses that each replace the training loop or the model: at most one per combination.
EXCLUSIVE = ("advreg", "dpsgd", "stacking")
#: Why ``advreg`` and ``dpsgd`` never combine (on any path).
ADVREG_WITH_DPSGD = (
    "advreg cannot be combined with dpsgd: advreg's inference model is trained on the "
    "training records without privacy (no clipping, no noise) and shapes every training "
    "step, so DP-SGD's epsilon would not hold for the trained model"
)


def parse_defenses(text: str) -> list[tuple[str, dict]]:
    """``"spec[+spec...]"`` -> ``[(name, params), ...]``, each part read by :func:`parse_defense`.

    Raises
    ------
    ValueError
        For a bad part (see :func:`parse_defense`), an empty part, a name given twice,
        ``none`` combined with anything, two serving defenses, or two of :data:`EXCLUSIVE`
        (``advreg`` with ``dpsgd``: :data:`ADVREG_WITH_DPSGD`).
    """
    parts = [p.strip() for p in str(text).split("+")]
    if not all(parts):
        raise ValueError(f"empty defense in {text!r}")
    parsed = [parse_defense(p) for p in parts]
    names = [n for n, _ in parsed]
    if len(parsed) > 1:
        problems = []
        if len(set(names)) < len(names):
            problems.append("a defense is given twice")
        if "none" in names:
            problems.append("'none' cannot be combined")
        if sum(DEFENSES[n].stage == "serve" for n in names) > 1:
            problems.append("at most one serving defense")
        if {"advreg", "dpsgd"} <= set(names):
            problems.append(ADVREG_WITH_DPSGD)
        elif sum(n in EXCLUSIVE for n in names) > 1:
            problems.append(f"at most one of {', '.join(EXCLUSIVE)}")
        if problems:
            raise ValueError(f"cannot combine {text!r}: {'; '.join(problems)}")
    return parsed


def describe(text: str) -> dict:
    """``name`` (names joined by ``+``), ``params`` and ``stage`` of a defense or combination.

    ``params`` is the defense's parameter dict, or ``{name: params}`` for a combination;
    ``stage`` joins the distinct stages in order.

    >>> describe("augment+label_only")
    {'name': 'augment+label_only', 'params': {'augment': {'flip': True, 'crop': 4}, \
'label_only': {}}, 'stage': 'train+serve'}
    """
    parts = parse_defenses(text)
    return {
        "name": "+".join(name for name, _ in parts),
        "params": parts[0][1] if len(parts) == 1 else dict(parts),
        "stage": "+".join(dict.fromkeys(DEFENSES[name].stage for name, _ in parts)),
    }


def split_serving(text: str) -> tuple[str, dict | None]:
    """A combination's training part and serving part: ``(train_spec, serving)``.

    ``train_spec`` joins the training- and model-stage parts with ``+`` (``"none"`` when there
    are none); ``serving`` is ``{"name": ..., **params}`` of the serving part, or None.

    >>> split_serving("dropout:p=0.5+rounding:decimals=2")
    ('dropout:p=0.5', {'name': 'rounding', 'decimals': 2})
    """
    train, serving = [], None
    for part, (name, params) in zip(str(text).split("+"), parse_defenses(text), strict=True):
        if DEFENSES[name].stage == "serve":
            serving = {"name": name, **params}
        elif name != "none":
            train.append(part.strip())
    return "+".join(train) or "none", serving


def check_path(name: str, path: str) -> DefenseSpec:
    """The spec of ``name``, refusing it when ``path`` does not implement it."""
    spec = get_defense(name)
    if path not in spec.paths:
        raise ValueError(f"defense {spec.name!r} is not available on the {path} path")
    return spec


def _typed(default, value, where: str):
    """``value`` converted to the type of ``default`` (strings are parsed)."""
    kind = type(default)
    if isinstance(value, str):
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not of type {kind.__name__}") from None
    if isinstance(value, bool) != (kind is bool):
        raise ValueError(f"{where}: {value!r} is not of type {kind.__name__}")
    if kind is float and isinstance(value, int | float):
        return float(value)
    if kind is int and isinstance(value, int):
        return value
    if isinstance(value, kind):
        return value
    raise ValueError(f"{where}: {value!r} is not of type {kind.__name__}")
