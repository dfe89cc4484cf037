"""ROC plots for membership attacks (speech audit summaries and the CIFAR-10 recipes).

Takes the ``metrics`` dicts written by :func:`auditor.metrics.membership_metrics` (their
``roc`` and ``auc`` keys), so every path plots exactly what it reports. Renders with
matplotlib's Agg backend (no display needed) to PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SCALES = ("linear", "log")


def plot_roc_curves(
    curves: Mapping[str, Mapping], path, *, scale: str = "linear", title: str | None = None
) -> Path:
    """Draw several attacks' ROC curves on one figure and save it as PNG.

    Parameters
    ----------
    curves : mapping of str to dict
        Attack name -> metrics dict with ``roc`` (``{"fpr": [...], "tpr": [...]}``) and ``auc``.
    path : str or Path
        Output PNG file; parent folders are created.
    scale : {"linear", "log"}
        ``"log"`` draws log-log axes (the low-FPR regime; points with FPR or TPR of 0 cannot
        be drawn there and are left out).
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    if not curves:
        raise ValueError("no curves to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    smallest = 1.0
    for name, metrics in curves.items():
        if "roc" not in metrics:
            raise ValueError(f"curve {name!r} has no 'roc' points (expected a metrics dict)")
        fpr, tpr = metrics["roc"]["fpr"], metrics["roc"]["tpr"]
        if scale == "log":
            kept = [(f, t) for f, t in zip(fpr, tpr, strict=True) if f > 0 and t > 0]
            fpr, tpr = [f for f, _ in kept], [t for _, t in kept]
            smallest = min([smallest, *fpr, *tpr])
        label = f"{name} (AUC {metrics['auc']:.3f})" if "auc" in metrics else name
        ax.plot(fpr, tpr, label=label, linewidth=1.5)
    if scale == "log":
        low = max(smallest / 2.0, 1e-6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, 1.0)
        ax.set_ylim(low, 1.0)
        ax.plot([low, 1.0], [low, 1.0], "k--", linewidth=0.8, label="chance")
    else:
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.plot([0.0, 1.0], [0.0, 1.0], "k--", linewidth=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_roc_plots(
    curves: Mapping[str, Mapping], out_dir, *, stem: str = "roc", title: str | None = None
) -> dict[str, Path]:
    """Write ``<stem>_linear.png`` and ``<stem>_log.png`` into ``out_dir``; returns scale -> path."""
    out_dir = Path(out_dir)
    return {
        scale: plot_roc_curves(curves, out_dir / f"{stem}_{scale}.png", scale=scale, title=title)
        for scale in SCALES
    }


def plot_privacy_utility(
    points: Sequence[Mapping],
    path,
    *,
    utility_label: str,
    attacks: Sequence[tuple[str, str]],
    baseline: str = "none",
    title: str | None = None,
) -> Path:
    """Utility against attack strength, one point per defense setting, the undefended marked.

    Parameters
    ----------
    points : sequence of mapping
        One per setting: ``name`` (label), ``utility`` (y value, e.g. PER or test accuracy) and
        ``series``: series name (e.g. ``"unseen audios"``, one marker each) -> panel key ->
        attack figure (``None`` for an unmeasurable one: left out).
    path : str or Path
        Output PNG; parent folders are created.
    utility_label : str
        The y axis label.
    attacks : sequence of (key, label)
        One panel per entry: the panel's key in each series mapping and its x axis label (e.g.
        ``("auc", "attack AUC")``, ``("tpr_low", "TPR at FPR 1/N")``).
    baseline : str
        The ``name`` of the undefended setting (drawn as a star, with dotted guide lines).
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    if not points:
        raise ValueError("no settings to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = sorted({s for p in points for s in p["series"]})
    markers = dict(zip(series, ("o", "s", "^", "D"), strict=False))
    fig, axes = plt.subplots(1, len(attacks), figsize=(6 * len(attacks), 4.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], attacks, strict=True):
        for s in series:
            xs, ys, names = [], [], []
            for p in points:
                value = p["series"].get(s, {}).get(key)
                if value is not None and p["utility"] is not None:
                    xs.append(value)
                    ys.append(p["utility"])
                    names.append(p["name"])
            ax.scatter(xs, ys, marker=markers[s], label=s, alpha=0.8)
            for x, y, n in zip(xs, ys, names, strict=True):
                if n == baseline:
                    ax.scatter([x], [y], marker="*", s=260, color="k", zorder=5)
                    ax.axhline(y, color="k", linestyle=":", linewidth=0.7)
                ax.annotate(n, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if key == "auc":
            ax.axvline(0.5, color="grey", linestyle="--", linewidth=0.8, label="chance")
        ax.set_xlabel(label)
        ax.set_ylabel(utility_label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, title=f"* = {baseline} (undefended)", title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
