import pytest

from models.privacy.registry import (
    ADVREG_WITH_DPSGD,
    DEFENSES,
    STAGES,
    UnknownDefenseError,
    check_path,
    describe,
    get_defense,
    parse_defense,
    parse_defenses,
    split_serving,
)


def test_every_defense_has_a_stage_and_paths(defense_names):
    assert defense_names <= set(DEFENSES)
    for spec in DEFENSES.values():
        assert spec.stage in STAGES and spec.paths and spec.doc


def test_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(UnknownDefenseError, match="known: .*dpsgd") as err:
        get_defense("dp-sgd")
    assert isinstance(err.value, ValueError)


def test_one_name_per_defense_and_defaults():
    for old, new in (("transcript_only", "label_only"), ("top_k", "topk")):
        with pytest.raises(UnknownDefenseError, match=f"'{old}' is an old name: write '{new}'"):
            get_defense(old)
    assert parse_defense("dpsgd") == (
        "dpsgd",
        {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5},
    )


def test_parse_types_values_against_defaults():
    name, params = parse_defense("dpsgd:noise_multiplier=2,max_grad_norm=0.5")
    assert name == "dpsgd" and params["noise_multiplier"] == 2.0
    assert isinstance(params["noise_multiplier"], float)
    assert parse_defense("topk:k=2") == ("topk", {"k": 2})


@pytest.mark.parametrize(
    "text, message",
    [
        ("topk:k=1.5", "not of type int"),
        ("topk:depth=3", "no parameter"),
        ("l2:weight_decay", "not key=value"),
        ("dropout:p=abc", "not of type float"),
        ("nope:x=1", "unknown defense"),
    ],
)
def test_bad_specs_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_defense(text)


def test_params_type_check_python_values():
    spec = get_defense("advreg")
    assert spec.params({"lam": 3})["lam"] == 3.0
    with pytest.raises(ValueError):
        spec.params({"k_steps": 1.5})
    with pytest.raises(ValueError):
        spec.params({"k_steps": True})


def test_check_path():
    assert check_path("stacking", "cifar").name == "stacking"
    with pytest.raises(ValueError, match="voice"):
        check_path("stacking", "voice")


def test_combinations_parse_part_by_part():
    assert parse_defenses("dropout:p=0.5+augment:crop=2") == [
        ("dropout", {"p": 0.5}),
        ("augment", {"flip": True, "crop": 2}),
    ]
    assert parse_defenses("l2") == [("l2", {"weight_decay": 0.001})]
    with pytest.raises(ValueError, match="one defense expected"):
        parse_defense("l2+dropout")  # a single-defense reader refuses combinations


@pytest.mark.parametrize(
    "text, message",
    [
        ("l2+l2:weight_decay=0.1", "given twice"),
        ("none+dropout", "'none' cannot be combined"),
        ("topk:k=1+rounding", "at most one serving defense"),
        ("advreg+stacking", "at most one of advreg, dpsgd, stacking"),
        ("dpsgd+stacking", "at most one of advreg, dpsgd, stacking"),
        ("dropout+", "empty defense"),
        ("dropout+mixup", "unknown defense 'mixup'"),
    ],
)
def test_bad_combinations_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_defenses(text)


@pytest.mark.parametrize("text", ["advreg+dpsgd", "dpsgd:noise_multiplier=2+advreg:lam=3"])
def test_advreg_with_dpsgd_is_refused_because_its_inference_model_has_no_privacy(text):
    with pytest.raises(ValueError) as err:
        parse_defenses(text)
    assert str(err.value) == f"cannot combine {text!r}: {ADVREG_WITH_DPSGD}"
    assert "inference model is trained on the training records without privacy" in str(err.value)


def test_split_serving_separates_the_trained_part_from_the_served_part():
    assert split_serving("dropout:p=0.5+l2+rounding:decimals=2") == (
        "dropout:p=0.5+l2",
        {"name": "rounding", "decimals": 2},
    )
    assert split_serving("label_only") == ("none", {"name": "label_only"})
    assert split_serving("none") == ("none", None)
    assert split_serving("augment") == ("augment", None)


def test_describe_names_params_and_stages():
    assert describe("l2:weight_decay=0.01") == {
        "name": "l2",
        "params": {"weight_decay": 0.01},
        "stage": "train",
    }
    assert describe("rounding")["stage"] == "serve"
    combo = describe("dropout:p=0.5+stacking+topk:k=1")
    assert combo["name"] == "dropout+stacking+topk" and combo["stage"] == "train+model+serve"
    assert combo["params"]["topk"] == {"k": 1}
