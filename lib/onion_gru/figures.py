"""Figures: the one plot style, where figures go (PDF and PNG), and the plots several notebooks share."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from .profiles import Profile
from .tables import METHOD_LABELS, VARIANT_LABELS, figure_dir


def set_style():
    """The one plot style of the project."""
    import seaborn as sns
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight",
                                "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
                                "ytick.labelsize": 8, "legend.fontsize": 8, "svg.hashsalt": "onion"})


def save_figure(fig, stem: str, profile: Profile) -> list[Path]:
    out = figure_dir(profile)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None})
    fig.savefig(paths[1], metadata={"Software": None})
    return paths


SET_LABELS = {"valid": "lengths 2-9", "intervention": "length 9"}  # the sets methods are scored on


def accuracy_by_size(runs: pd.DataFrame, variants, ylabel: str, title: str = "{variant}", sizes=None):
    """One panel per variant: accuracy against N, one line per method, error bars = std over seeds,
    and each seed a faint dot beside its mean (so that a reader sees n); where ``runs`` has the GRU's
    own accuracy on the scored sequences (``gru_accuracy``), it is drawn in grey as the ceiling, one
    line per set scored on (``eval_set``); ``sizes``: the N on every panel's axis, run or not
    (default: the sizes each panel has)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns
    fig, axes = plt.subplots(1, len(variants), figsize=(3.5 * len(variants), 2.6), sharey=True,
                             layout="constrained", squeeze=False)
    dodge = 0.3
    for ax, variant in zip(axes[0], variants):
        sub = runs[runs.variant == variant].assign(method=lambda d: d.method.map(METHOD_LABELS))
        order = list(sizes) if sizes is not None else sorted(set(sub["size"]))
        sns.pointplot(sub, x="size", y="accuracy", hue="method", ax=ax, errorbar="sd", dodge=dodge,
                      markersize=4, linewidth=1, order=order)
        hues = list(dict.fromkeys(sub.method))  # the point plot's hue order: first appearance
        offsets = np.linspace(-dodge / 2, dodge / 2, len(hues)) if len(hues) > 1 else [0.0]
        for hue, offset, color in zip(hues, offsets, sns.color_palette(n_colors=len(hues))):
            seeds = sub[sub.method == hue]
            ax.scatter([order.index(n) + offset for n in seeds["size"]], seeds["accuracy"], s=5, color=color,
                       alpha=0.45, linewidths=0, zorder=1)
        draw_ceiling(ax, sub, order)
        ax.set(title=title.format(variant=VARIANT_LABELS[variant]), xlabel="hidden size N", ylabel=ylabel,
               ylim=(-0.02, 1.02))
        ax.legend(fontsize=6, title=None)
    return fig, axes[0]


def draw_ceiling(ax, runs: pd.DataFrame, order=None) -> None:
    """The GRU's own accuracy on the sequences ``runs`` are scored on (``gru_accuracy``, mean over
    seeds per N), in grey, one line per set scored on (``eval_set``); x is N, or its index in
    ``order`` on a categorical axis.  Nothing where ``runs`` lacks the column."""
    if "gru_accuracy" not in runs:
        return
    for (name, cut), style in zip(runs.groupby("eval_set", sort=True), ("--", ":")):
        top = cut.groupby("size")["gru_accuracy"].mean()
        x = [order.index(n) for n in top.index] if order is not None else top.index
        ax.plot(x, top.to_numpy(), color="grey", ls=style, lw=0.9, zorder=0,
                label=f"the GRU itself ({SET_LABELS.get(name, name)})")


def log_size_axes(grid, sizes) -> None:
    """A seaborn grid's x axes: log N, one labelled tick per size run, y from 0 to 1."""
    grid.set(xscale="log", ylim=(-0.02, 1.02), xlabel="hidden size N")
    for ax in grid.axes.flat:
        ax.set_xticks(sorted(set(sizes)), [str(n) for n in sorted(set(sizes))], fontsize=6)
        ax.minorticks_off()


