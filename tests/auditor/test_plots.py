"""Tests for auditor.plots: PNG ROC curves, linear and log-log, several attacks per figure."""

import numpy as np
import pytest
from PIL import Image

from auditor.metrics import membership_metrics
from auditor.plots import plot_roc_curves, save_roc_plots


def _metrics(shift, seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(300), np.zeros(300)]
    return membership_metrics(y, rng.normal(size=600) + shift * y, n_bootstrap=0)


def test_save_roc_plots_writes_two_pngs(tmp_path):
    curves = {"strong": _metrics(2.0, 0), "weak": _metrics(0.3, 1)}
    paths = save_roc_plots(curves, tmp_path / "plots", stem="cifar", title="test")
    assert set(paths) == {"linear", "log"}
    for path in paths.values():
        assert path.name.startswith("cifar_")
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size[0] > 300 and image.size[1] > 300
            # Not blank: the curves put many colours on the canvas.
            assert len(image.convert("RGB").getcolors(maxcolors=100000)) > 20


def test_curves_change_the_image(tmp_path):
    one = plot_roc_curves({"a": _metrics(2.0, 0)}, tmp_path / "one.png", scale="log")
    two = plot_roc_curves(
        {"a": _metrics(2.0, 0), "b": _metrics(0.0, 1)}, tmp_path / "two.png", scale="log"
    )
    assert one.read_bytes() != two.read_bytes()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        plot_roc_curves({"a": _metrics(1.0, 0)}, tmp_path / "x.png", scale="semilog")
    with pytest.raises(ValueError, match="no 'roc'"):
        plot_roc_curves({"a": {"auc": 0.5}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no curves"):
        plot_roc_curves({}, tmp_path / "x.png")
