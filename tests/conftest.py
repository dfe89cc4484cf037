"""Project-wide test fixtures.

``tiny_synth_corpus``: a small synthetic eSpeak corpus in TIMIT layout (4 speakers x 4
utterances, seed 7), synthesized once per test session; areas that need real-looking speech
with alignments (readers, manifests, recognizer, device, auditor) reuse it.
``tiny_recipe``: the recognizer config of every tiny test model (mechanics, not accuracy).
``amqtt_broker``: one embedded amqtt broker per session, shared by device and auditor tests.
``make_tiny_cifar_zip``: random CIFAR-shaped class-folder zips for the image-path tests.
``defense_names``: the defenses the registry offers and the defenses recipe runs.

The ``slow`` tier (left out by ``make test-fast``, run by ``make test``): every test that talks
to a real broker (a fixture of :data:`BROKER_FIXTURES`), plus the tests marked ``slow`` in their
modules (recipe runs, headless Chromium, Ray, subprocess CLIs, long CNN trainings).
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Fixtures that start or use a real MQTT broker: a test using one is in the slow tier.
BROKER_FIXTURES = {
    "amqtt_broker",
    "mosquitto",
    "device_on_mosquitto",
    "device_on_amqtt",
    "tiny_device",
    "tiny_audit_run",
    "amqtt_url",
}
TINY_SYNTH = {"n_speakers": 4, "utterances_per_speaker": 4, "seed": 7}

#: The defenses the project offers: registered in models.privacy.registry, each run by the
#: cifar10_defenses recipe.
DEFENSE_NAMES = frozenset(
    {
        "none",
        "l2",
        "dropout",
        "topk",
        "rounding",
        "label_only",
        "stacking",
        "advreg",
        "dpsgd",
        "augment",
    }
)

#: Small and quick: the tests check mechanics (serving, records, reports), not accuracy.
TINY_RECIPE = {
    "network": {"hidden": [32, 32]},
    "training": {
        "epochs": 1,
        "realign_iterations": 0,
        "tune_decoding": False,
        "heldout_utterances_per_speaker": 1,
        "dev_utterances_per_speaker": 1,
    },
}


@pytest.fixture(scope="session")
def tiny_synth_corpus(tmp_path_factory) -> Path:
    """Root of a 4-speaker x 4-utterance synthetic TIMIT-layout corpus (read-only: do not edit)."""
    from corpora.synth.corpus import synthesize_corpus

    root = tmp_path_factory.mktemp("tiny_synth_corpus")
    synthesize_corpus(root, jobs=1, **TINY_SYNTH)
    return root


@pytest.fixture(scope="session")
def tiny_recipe() -> dict:
    """The recognizer config overrides of every tiny test model (do not edit: copy)."""
    return TINY_RECIPE


@pytest.fixture(scope="session")
def defense_names() -> frozenset[str]:
    """The names of the defenses the project offers (:data:`DEFENSE_NAMES`)."""
    return DEFENSE_NAMES


@pytest.fixture(scope="session")
def speechocean_dir() -> Path:
    """The real 60-speaker speechocean762 dev subset beside the repository."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speechocean762-dev"
    assert path.is_dir(), f"{path} is missing: the shared data folder must sit beside the repo"
    return path


@pytest.fixture(scope="session")
def amqtt_broker():
    """A running embedded amqtt broker (``.url``)."""
    from device_sim.brokers import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def make_tiny_cifar_zip(tmp_path_factory):
    """``make(n_train, n_test)``: a zip of random 32x32 images in 10 classes (seed 0, read-only)."""
    import numpy as np

    from corpora.cifar10 import ImageDataset, write_class_zip

    made: dict[tuple[int, int], Path] = {}

    def make(n_train: int, n_test: int) -> Path:
        if (n_train, n_test) not in made:
            rng = np.random.default_rng(0)

            def part(n):
                x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)  # (n, H, W, 3)
                return x, np.sort(rng.integers(0, 10, n))

            (xt, yt), (xs, ys) = part(n_train), part(n_test)
            path = tmp_path_factory.mktemp("tiny_cifar") / "tiny.zip"
            classes = tuple(f"c{i}" for i in range(10))
            made[n_train, n_test] = write_class_zip(path, ImageDataset(xt, yt, xs, ys, classes))
        return made[n_train, n_test]

    return make


def pytest_collection_modifyitems(items):
    """Mark every test that uses a broker fixture ``slow`` (module docstring)."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
