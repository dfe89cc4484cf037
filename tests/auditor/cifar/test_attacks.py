"""Tests for the CIFAR-10 membership attacks on deliberately overfit tiny models.

Each attack must separate the members of an overfit target from non-members (AUC clearly above
0.5), and must NOT separate two sets the target never trained on (AUC near 0.5). The tiny
recipe (an MLP on 20 Gaussian features, 10 overlapping classes) runs in-process through the
serial executor; one test runs LiRA on the real CNN recipe (``models.vision``).
"""

import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from auditor.cifar.attacks import (
    ATTACKS,
    BlackBox,
    CnnRecipe,
    LiRA,
    MLLeaksAttack,
    QueryBudgetExceeded,
    ShokriAttack,
    ThresholdAttack,
)
from auditor.cifar.attacks.shadow import in_out_splits, train_and_query
from auditor.cifar.attacks.signals import scaled_confidence
from auditor.cifar.attacks.synthesis import (
    model_based_synthesis,
    noisy_real_data,
    statistics_based_synthesis,
)
from auditor.metrics import membership_metrics

N_CLASSES, DIM = 10, 20
# The MLP attack models see only a few dozen records per class here; their convergence
# warnings say nothing about the attacks.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@dataclass(frozen=True)
class TinyMlpRecipe:
    """An MLP trained full-batch long enough to memorize ~100 records."""

    steps: int = 250
    hidden: int = 64

    def fit(self, x, y, *, seed):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(DIM, self.hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(self.hidden, N_CLASSES),
        )
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
        for _ in range(self.steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
        return net.eval()

    @torch.no_grad()
    def predict_log_proba(self, model, x):
        logits = model(torch.as_tensor(x, dtype=torch.float32)).double()
        return torch.log_softmax(logits, dim=1).numpy()


def _draw(rng, centers, n):
    y = rng.integers(0, N_CLASSES, n)
    return (centers[y] + rng.normal(scale=1.5, size=(n, DIM))).astype(np.float32), y


@pytest.fixture(scope="module")
def world():
    """Target members / non-members, the auditor's pool, and two never-trained-on sets."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(N_CLASSES, DIM))
    sets = {
        name: _draw(rng, centers, n)
        for name, n in [
            ("members", 100),
            ("nonmembers", 100),
            ("aux", 400),
            ("fresh_a", 100),
            ("fresh_b", 100),
        ]
    }
    recipe = TinyMlpRecipe()
    model = recipe.fit(*sets["members"], seed=123)
    sets["target"] = lambda x: np.exp(recipe.predict_log_proba(model, x))
    sets["recipe"] = recipe
    return sets


def _auc(attack, world, first, second):
    x = np.concatenate([world[first][0], world[second][0]])
    y = np.concatenate([world[first][1], world[second][1]])
    labels = np.r_[np.ones(len(world[first][0])), np.zeros(len(world[second][0]))]
    if isinstance(attack, LiRA):
        attack.fit(*world["aux"], x_candidates=x, y_candidates=y)
    return membership_metrics(labels, attack.score_samples(x, y), n_bootstrap=0)["auc"]


def _fitted(name, world):
    target, recipe, aux = world["target"], world["recipe"], world["aux"]
    if name == "threshold":
        return ThresholdAttack(target, percentile=50).fit(aux[0][:100])
    if name == "mlleaks":
        return MLLeaksAttack(target, recipe, executor="serial").fit(*aux)
    if name.startswith("shokri"):
        data = name.split("-")[1]
        synthesis = {"k_max": 8, "k_min": 1, "conf_min": 0.6, "iter_max": 100, "n_chains": 32}
        return ShokriAttack(
            target,
            recipe,
            n_shadows=2,
            shadow_size=100,
            shadow_data=data,
            feature_range=(-5.0, 5.0),
            synthesis=synthesis,
            executor="serial",
        ).fit(*aux)
    mode, variance = name.split("-")[1:]
    return LiRA(
        target,
        recipe,
        n_reference=8,
        mode=mode,
        global_variance=variance == "global",
        executor="serial",
    )


ATTACK_CASES = [
    "threshold",
    "mlleaks",
    "shokri-real",
    "shokri-statistics",
    "shokri-noisy",
    "shokri-model",
    "lira-offline-local",
    "lira-online-global",
]


@pytest.mark.slow  # trains shadow CNNs per attack
@pytest.mark.parametrize("name", ATTACK_CASES)
def test_attack_finds_members_of_overfit_target_and_nothing_in_unseen_data(name, world):
    attack = _fitted(name, world)
    overfit_auc = _auc(attack, world, "members", "nonmembers")
    assert overfit_auc > 0.7, f"{name}: AUC {overfit_auc:.3f} on an overfit target"
    if isinstance(attack, LiRA):
        attack = _fitted(name, world)
    null_auc = _auc(attack, world, "fresh_a", "fresh_b")
    assert abs(null_auc - 0.5) < 0.12, f"{name}: AUC {null_auc:.3f} without any members"


def test_lira_online_beats_threshold_at_low_fpr(world):
    x = np.concatenate([world["members"][0], world["nonmembers"][0]])
    y = np.concatenate([world["members"][1], world["nonmembers"][1]])
    labels = np.r_[np.ones(100), np.zeros(100)]
    lira = _fitted("lira-online-global", world).fit(*world["aux"], x_candidates=x, y_candidates=y)
    ours = membership_metrics(labels, lira.score_samples(x, y), fprs=(0.05,), n_bootstrap=0)
    base = membership_metrics(
        labels, _fitted("threshold", world).score_samples(x), fprs=(0.05,), n_bootstrap=0
    )
    assert ours["tpr_at_fpr"]["0.05"] > base["tpr_at_fpr"]["0.05"]
    assert lira.in_mask_.sum(axis=1).tolist() == [4] * 200  # each candidate IN for half
    with pytest.raises(ValueError, match="only the candidates"):
        lira.score_samples(x[:10], y[:10])


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_estimator_conventions(name, world):
    cls = ATTACKS[name]
    attack = cls(world["target"], seed=3) if name != "threshold" else cls(world["target"])
    params = attack.get_params()
    assert clone(attack).get_params().keys() == params.keys()
    assert params["target"] is world["target"]
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(attack)
    fitted = _fitted({"shokri": "shokri-real", "lira": "lira-offline-local"}.get(name, name), world)
    if isinstance(fitted, LiRA):
        fitted = fitted.fit(
            *world["aux"], x_candidates=world["members"][0], y_candidates=world["members"][1]
        )
    check_is_fitted(fitted)
    # only the threshold attack queries the target to fit (its 100 reference records); the
    # others learn from shadow / reference models alone
    assert fitted.blackbox_.n_queries == (100 if name == "threshold" else 0)
    x, y = world["nonmembers"]
    if isinstance(fitted, LiRA):
        x, y = world["members"]
    assert fitted.predict(x, y).shape == (len(x),)
    if hasattr(fitted, "predict_proba"):
        proba = fitted.predict_proba(x, y)
        assert proba.shape == (len(x), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # one query per record and pass: predict, then predict_proba where there is one
    passes = 2 if hasattr(fitted, "predict_proba") else 1
    assert fitted.blackbox_.n_queries == (100 if name == "threshold" else 0) + passes * 100


def test_bad_parameters_are_refused_at_fit(world):
    aux = world["aux"]
    with pytest.raises(ValueError, match="unknown shadow_data 'fake'"):
        ShokriAttack(world["target"], world["recipe"], shadow_data="fake").fit(*aux)
    with pytest.raises(ValueError, match="even number"):
        LiRA(world["target"], world["recipe"], n_reference=5, mode="online").fit(
            *aux, x_candidates=aux[0][:5], y_candidates=aux[1][:5]
        )
    with pytest.raises(ValueError, match="2 x 300 records"):
        MLLeaksAttack(world["target"], world["recipe"], shadow_size=300, executor="serial").fit(
            *aux
        )


class _NoTraining:
    """A recipe that fails the test if anything is trained."""

    def fit(self, x, y, *, seed):
        raise AssertionError("trained a reference model before refusing")


@pytest.mark.parametrize("mode, n_reference", [("offline", 1), ("online", 2)])
def test_lira_refuses_a_single_reference_model_per_gaussian(world, mode, n_reference):
    """One model behind a Gaussian leaves it no spread: refused before any training."""
    aux = world["aux"]
    lira = LiRA(
        world["target"],
        _NoTraining(),
        n_reference=n_reference,
        mode=mode,
        global_variance=True,
        executor="serial",
    )
    with pytest.raises(
        ValueError,
        match=rf"{mode} LiRA needs .*>= {2 if mode == 'offline' else 4}"
        r" reference models \(2 per fitted Gaussian",
    ):
        lira.fit(*aux, x_candidates=aux[0][:10], y_candidates=aux[1][:10])


def test_query_budget_is_enforced(world):
    box = BlackBox(world["target"], budget=150)
    box(world["aux"][0][:100])
    assert box.n_queries == 100
    with pytest.raises(QueryBudgetExceeded, match="150"):
        box(world["aux"][0][:100])
    with pytest.raises(QueryBudgetExceeded, match="made 0 of 5 records"):
        model_based_synthesis(
            BlackBox(world["target"], budget=10),
            0,
            5,
            (DIM,),
            feature_range=(-5.0, 5.0),
            dtype=np.float32,
        )


def test_model_based_synthesis_reaches_confident_records(world):
    box = BlackBox(world["target"], budget=200_000)
    x = model_based_synthesis(
        box,
        3,
        12,
        (DIM,),
        feature_range=(-5.0, 5.0),
        dtype=np.float32,
        k_max=8,
        k_min=1,
        conf_min=0.8,
        n_chains=16,
        seed=1,
    )
    proba = world["target"](x)
    assert x.shape == (12, DIM) and x.dtype == np.float32
    assert (proba.argmax(axis=1) == 3).all() and (proba[:, 3] > 0.8).all()
    assert 0 < box.n_queries <= 200_000


def test_statistics_and_noise_synthesis(world):
    x, y = world["aux"]
    xs, ys = statistics_based_synthesis(x, y, 50, seed=0)
    assert xs.shape == (500, DIM) and np.bincount(ys).tolist() == [50] * 10
    for label in range(N_CLASSES):  # every feature value comes from the class's own records
        for f in range(DIM):
            assert np.isin(xs[ys == label, f], x[y == label, f]).all()
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    noisy = noisy_real_data(images, 0.25, seed=0)
    changed = (noisy != images).reshape(4, -1).mean(axis=1)
    assert noisy.dtype == np.uint8 and ((changed > 0.2) & (changed <= 0.25)).all()


def test_scaled_confidence_is_stable_near_one():
    log_p = np.log(np.array([[1 - 1e-12, 1e-12 / 2, 1e-12 / 2], [0.5, 0.25, 0.25]]))
    phi = scaled_confidence(log_p, np.array([0, 0]))
    np.testing.assert_allclose(phi, [np.log((1 - 1e-12) / 1e-12), 0.0], rtol=1e-6)


def test_lira_on_the_reference_cnn():
    """Real CNN recipe and mirror-flip queries; random labels force the target to memorize."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 300)
    config = {
        "epochs": 25,
        "batch_size": 25,
        "lr": 0.01,
        "n_classes": 4,
        "image_size": 8,
        "conv_channels": [8, 16],
        "kernel_size": 3,
        "fc_size": 32,
    }
    recipe = CnnRecipe(config)
    # Recipe and job must survive pickling to reach worker processes and Ray tasks.
    assert pickle.loads(pickle.dumps(recipe)) == recipe
    assert pickle.loads(pickle.dumps(train_and_query)) is train_and_query
    model = recipe.fit(x[:50], y[:50], seed=7)

    def target(q):
        return np.exp(recipe.predict_log_proba(model, q))

    lira = LiRA(
        target, recipe, n_reference=4, augment=True, global_variance=True, executor="serial", seed=0
    )
    lira.fit(x[100:], y[100:], x_candidates=x[:100], y_candidates=y[:100])
    assert lira.reference_phi_.shape == (100, 4, 2)
    assert lira.blackbox_.n_queries == 0
    labels = np.r_[np.ones(50), np.zeros(50)]
    scores = lira.score_samples(x[:100], y[:100])
    assert lira.blackbox_.n_queries == 200  # each candidate and its mirror image
    assert membership_metrics(labels, scores, n_bootstrap=0)["auc"] > 0.75


def test_best_threshold_hand_example():
    from auditor.cifar.attacks.threshold import best_threshold

    # Members 0.9, 0.8, 0.2; non-members 0.5, 0.3, 0.1: only ">= 0.8" gets 5 of 6 right.
    assert best_threshold([0.9, 0.8, 0.2, 0.5, 0.3, 0.1], [1, 1, 1, 0, 0, 0]) == 0.8


def test_threshold_chosen_on_a_shadow_model(world):
    x, y = world["aux"]
    answers = train_and_query(
        world["recipe"], x[:100], y[:100], {"in": x[:100], "out": x[100:200]}, seed=5
    )
    shadow_proba = np.exp(np.concatenate([answers["in"], answers["out"]]))
    membership = np.r_[np.ones(100), np.zeros(100)]
    attack = ThresholdAttack(world["target"], signal="entropy").fit(
        None, membership, shadow_proba=shadow_proba
    )
    assert attack.threshold_ < 0  # minus an entropy
    assert attack.blackbox_.n_queries == 0  # the shadow answers cost no target queries
    assert _auc(attack, world, "members", "nonmembers") > 0.7
    decisions = attack.predict(*world["members"])
    assert decisions.mean() > attack.predict(*world["nonmembers"]).mean()


def test_mlleaks_data_transferring_from_another_distribution(world):
    """Shadow data from a different 'dataset' (other class centres): top-3 features transfer."""
    rng = np.random.default_rng(9)
    other = _draw(rng, rng.normal(size=(N_CLASSES, DIM)) * 1.5, 400)
    attack = MLLeaksAttack(world["target"], world["recipe"], executor="serial").fit(*other)
    assert _auc(attack, world, "members", "nonmembers") > 0.7


def test_shokri_sorted_probability_features(world):
    attack = ShokriAttack(
        world["target"],
        world["recipe"],
        n_shadows=2,
        shadow_size=100,
        features="sorted",
        executor="serial",
    ).fit(*world["aux"])
    assert _auc(attack, world, "members", "nonmembers") > 0.7
    with pytest.raises(ValueError, match=r"no attack model for class\(es\) \[11\]"):
        attack.score_samples(world["members"][0][:2], np.array([1, 11]))


class _RightOnMembers:
    """A recipe whose model answers 0.9 for the record's label on its training records, 0.9 for
    the next class on any other record: members and non-members share one sorted answer.

    Records are ``(n, 2)``: an id and the label.
    """

    def fit(self, x, y, *, seed):
        return set(x[:, 0].tolist())

    def predict_log_proba(self, model, x):
        seen = np.isin(x[:, 0], list(model))  # (n,)
        top = np.where(seen, x[:, 1], (x[:, 1] + 1) % 3).astype(int)  # (n,)
        proba = np.full((len(x), 3), 0.05)
        proba[np.arange(len(x)), top] = 0.9
        return np.log(proba)


def test_shokri_default_features_are_class_ordered_and_see_the_label():
    recipe = _RightOnMembers()
    records = np.stack([np.arange(400), np.arange(400) % 3], axis=1)  # (400, 2): id, label
    model = recipe.fit(records[:48], None, seed=0)  # the target's 48 members

    def target(x):
        return np.exp(recipe.predict_log_proba(model, x))

    x_eval, y_eval = records[:96], records[:96, 1]  # 48 members, 48 non-members, 16 per class
    labels = np.r_[np.ones(48), np.zeros(48)]
    aucs = {}
    for features in (None, "sorted"):
        params = {} if features is None else {"features": features}
        attack = ShokriAttack(target, recipe, n_shadows=1, executor="serial", **params)
        attack.fit(records[100:, :], records[100:, 1])
        scores = attack.score_samples(x_eval, y_eval)
        aucs[attack.features] = membership_metrics(labels, scores, n_bootstrap=0)["auc"]
    assert aucs["class_order"] == 1.0  # the label's probability: 0.9 on members, 0.05 else
    assert aucs["sorted"] == 0.5  # (0.9, 0.05, 0.05) for everyone: one score per class


def test_in_out_splits_keep_their_draws():
    """Pinned (the draw of the code before it was built on ``corpora.splits.draw_splits``):
    shadows draw in turn from one seeded generator."""
    splits = in_out_splits(10, 3, 2, seed=5)
    assert [(a.tolist(), b.tolist()) for a, b in splits] == [
        ([1, 6, 7], [2, 3, 4]),
        ([3, 6, 9], [0, 1, 7]),
    ]
    with pytest.raises(ValueError, match="2 x 6 records"):
        in_out_splits(10, 6, 1, seed=0)
