"""The decision boundaries: the plane coloured by each model's predicted class, the data on top.

A linear classifier cuts the plane into convex regions with straight borders; a
hidden layer bends them. :func:`plot_decision_boundaries` draws one panel per
training run, models side by side on the same two-feature data; ``train``'s
pictures use it for every two-feature run, and the hidden-layer lesson for its
linear-against-MLP slide. It reads a run through :class:`Run`, so this module
needs nothing of ``train``: the room's imports go one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..outputs import SLIDE_DPI, SLIDE_FIGSIZE, atomic_path
from .datasets import Dataset

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CLASS_COLOURS", "Run", "plot_decision_boundaries", "decision_boundaries_figure"]


class Run(Protocol):
    """What a panel reads of a training run (``train.TrainResult`` is one)."""

    @property
    def dataset(self) -> Dataset: ...
    @property
    def model_name(self) -> str: ...
    @property
    def train_rows(self) -> np.ndarray | None: ...
    @property
    def test_rows(self) -> np.ndarray | None: ...
    @property
    def train_accuracy(self) -> list[float]: ...
    @property
    def test_accuracy(self) -> list[float]: ...
    def predict(self, points: np.ndarray) -> np.ndarray: ...


# Colour-blind-safe class colours (Okabe and Ito): the regions in a light tint, the points full.
CLASS_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _tint(colour: str, amount: float = 0.7) -> tuple[float, float, float]:
    """``colour`` mixed with white: ``amount`` = 0 is the colour, 1 is white."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def plot_decision_boundaries(
    runs: Sequence[Run],
    path: str | Path,
    resolution: int = 400,
    figsize: tuple[float, float] = SLIDE_FIGSIZE,
    dpi: int = SLIDE_DPI,
) -> Path:
    """:func:`decision_boundaries_figure` saved as a PNG: 1920×1080 px by default, a slide's own size."""
    fig = decision_boundaries_figure(runs, resolution, figsize)
    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format="png")
    return path


def decision_boundaries_figure(
    runs: Sequence[Run], resolution: int = 400, figsize: tuple[float, float] = SLIDE_FIGSIZE
) -> Figure:
    """The plane coloured by each model's predicted class, the data points on top; one panel per run.

    Every run must be on the same two-feature dataset (same points), so the
    panels differ only in the model. Training points are circles, the held-out
    test points triangles; the title of each panel gives the model and its
    accuracies. A plain matplotlib ``Figure`` (no pyplot): it shows inline in a notebook.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not runs:
        raise ValueError("plot_decision_boundaries: no runs to draw")
    data = runs[0].dataset
    if data.X.shape[1] != 2:
        raise ValueError(
            f"plot_decision_boundaries: the {data.name} data has {data.X.shape[1]} features; "
            "a decision boundary is drawn in the plane, for 2 features"
        )
    for run in runs[1:]:
        if run.dataset.name != data.name or not np.array_equal(run.dataset.X, data.X):
            raise ValueError("plot_decision_boundaries: every run must be on the same data")
    if not isinstance(resolution, int) or not 10 <= resolution <= 2000:
        raise ValueError(f"plot_decision_boundaries: resolution must be 10 … 2000, got {resolution!r}")

    C = data.num_classes
    colours = [CLASS_COLOURS[c % len(CLASS_COLOURS)] for c in range(C)]
    low, high = data.X.min(axis=0), data.X.max(axis=0)
    centre, half = (low + high) / 2, 0.55 * (high - low)  # the data and a 10% margin
    # Widen the shorter side so that each panel (about the figure's width / panels by its height
    # less the titles and the legend) fills its space at equal scales on both axes.
    panel = max(figsize[0] / len(runs) - 0.9, 1.0) / max(figsize[1] - 2.2, 1.0)  # inches, less the labels
    half = np.maximum(half, [half[1] * panel, half[0] / panel])
    xs = np.linspace(centre[0] - half[0], centre[0] + half[0], resolution)
    ys = np.linspace(centre[1] - half[1], centre[1] + half[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    plane = np.column_stack([grid_x.ravel(), grid_y.ravel()])

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    regions = ListedColormap([_tint(c) for c in colours])
    for ax, run in zip(axes, runs):
        predicted = run.predict(plane).reshape(grid_x.shape)
        ax.pcolormesh(grid_x, grid_y, predicted, cmap=regions, vmin=-0.5, vmax=C - 0.5, shading="auto")
        ax.contour(grid_x, grid_y, predicted, levels=np.arange(C) + 0.5, colors="0.25", linewidths=1.0)
        train_rows, test_rows = run.train_rows, run.test_rows
        for rows, marker in ((train_rows, "o"), (test_rows, "^")):
            ax.scatter(
                data.X[rows, 0],
                data.X[rows, 1],
                c=[colours[k] for k in data.labels[rows]],
                marker=marker,
                s=30,
                edgecolors="black",
                linewidths=0.6,
            )
        ax.set_title(
            f"{run.model_name}\ntrain {100 * run.train_accuracy[-1]:.1f}%, "
            f"test {100 * run.test_accuracy[-1]:.1f}%",
            fontsize=15,
        )
        ax.set_aspect("equal")
        ax.set_xlim(xs[0], xs[-1])
        ax.set_ylim(ys[0], ys[-1])
        ax.set_xlabel(data.feature_names[0], fontsize=13)
        ax.set_ylabel(data.feature_names[1], fontsize=13)
        ax.tick_params(labelsize=11)
    handles = [
        Line2D([], [], linestyle="", marker="s", markersize=11, color=colours[c], label=data.class_names[c])
        for c in range(C)
    ]
    handles += [
        Line2D([], [], linestyle="", marker="o", color="0.5", markeredgecolor="black", label="train"),
        Line2D([], [], linestyle="", marker="^", color="0.5", markeredgecolor="black", label="test"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=13, frameon=False)
    fig.suptitle(
        f"{data.name}: {len(data.labels)} points, {C} classes\neach point of the plane coloured by the class "
        "the model predicts",
        fontsize=16,
    )
    return fig
