"""The adjoint of broadcasting, as a picture: ∂L/∂Z (C×N) summed over the samples is ∂L/∂b (C×1).

``b`` is one column added to every column of ``W X``, so each of its entries
reaches the loss N times, once per sample, and its gradient adds those N
contributions up: ``db = Σ_i dZ[:, i]``. Next to it, what the two usual
mistakes give: the sum over the wrong axis (over the classes: 1×N, one number
per sample, not per class) and the mean instead of the sum (the right shape,
N times too small, because ``dZ`` already carries the 1/N of the mean loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..numbers import number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BiasAdjoint", "bias_adjoint", "bias_adjoint_figure", "plot_bias_adjoint"]


@dataclass(frozen=True)
class BiasAdjoint:
    """∂L/∂Z and the three candidates for ∂L/∂b: the right one and the two usual mistakes."""

    dZ: np.ndarray  # C×N
    right: np.ndarray  # C×1: Σ over the samples (axis 1)
    wrong_axis: np.ndarray  # 1×N: Σ over the classes (axis 0)
    mean: np.ndarray  # C×1: the mean over the samples, N times too small

    @property
    def alt(self) -> str:
        """What the picture shows, in words: for the report and for readers who cannot see it."""
        C, N = self.dZ.shape
        right = ", ".join(number(v, ".3f") for v in self.right.ravel())
        mean = ", ".join(number(v, ".3f") for v in self.mean.ravel())
        wrong = ", ".join(number(v, ".3f") for v in self.wrong_axis.ravel())
        return (
            f"The {C}×{N} gradient ∂L/∂Z, one column per sample, summed along each row into the {C}×1 "
            f"gradient ∂L/∂b = [{right}] (right, solid border, ✓). Beside it the two usual mistakes, "
            f"each with a dashed border and ✗: summing over the classes gives a 1×{N} row "
            f"[{wrong}] (all zero: each column of P − Y sums to 0), and the mean over the samples "
            f"gives [{mean}], {N} times too small."
        )


def bias_adjoint(dZ: np.ndarray) -> BiasAdjoint:
    """The three candidates for ∂L/∂b from ``dZ`` = ∂L/∂Z (C×N, one column per sample)."""
    dZ = np.asarray(dZ, dtype=float)
    if dZ.ndim != 2:
        raise ValueError(f"bias_adjoint: ∂L/∂Z must be a C×N matrix, got shape {dZ.shape}")
    return BiasAdjoint(
        dZ, dZ.sum(axis=1, keepdims=True), dZ.sum(axis=0, keepdims=True), dZ.mean(axis=1, keepdims=True)
    )


def _table(ax: Axes, values: np.ndarray, title: str, *, wrong: bool, highlight_rows: bool) -> None:
    """``values`` as a grid of numbers with a title; a wrong result dashed and red, a right one solid."""
    from matplotlib.patches import Rectangle

    rows, cols = values.shape
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(rows + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    edge = "#d62728" if wrong else "#222222"
    style = "--" if wrong else "-"
    for i in range(rows):
        for j in range(cols):
            shade = "#eef4fb" if highlight_rows and i % 2 == 0 else "white"
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=shade, edgecolor="#999999", linewidth=0.8))
            ax.text(
                j + 0.5,
                i + 0.5,
                number(values[i, j], ".3f"),
                ha="center",
                va="center",
                fontsize=9,
                family="monospace",
            )
    ax.add_patch(Rectangle((0, 0), cols, rows, fill=False, edgecolor=edge, linewidth=2.5, linestyle=style))
    ax.set_title(title, fontsize=10, color=edge, loc="center")


def plot_bias_adjoint(dZ: np.ndarray, path: str | Path) -> Path:
    """Draw :func:`bias_adjoint_figure` into ``path`` (PNG, 1920×1080), whole or not at all."""
    from .second_order import save_figure

    return save_figure(bias_adjoint_figure(dZ), path)


def bias_adjoint_figure(dZ: np.ndarray) -> Figure:
    """∂L/∂Z, its sum over the samples (∂L/∂b) and the two usual mistakes, with the numbers, on a slide."""
    from matplotlib.figure import Figure

    from ..outputs import SLIDE_FIGSIZE

    found = bias_adjoint(dZ)
    C, N = found.dZ.shape
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[N, 2.4, N], height_ratios=[1, 1])
    _table(
        fig.add_subplot(grid[:, 0]),
        found.dZ,
        f"∂L/∂Z = (P − Y)/N   ({C}×{N}: a column per sample)",
        wrong=False,
        highlight_rows=True,
    )
    _table(
        fig.add_subplot(grid[0, 1]),
        found.right,
        f"✓ ∂L/∂b = Σᵢ ∂L/∂Z[:, i]\n({C}×1, summed over the samples)",
        wrong=False,
        highlight_rows=True,
    )
    _table(
        fig.add_subplot(grid[1, 1]),
        found.mean,
        f"✗ mean over the samples\n({C}×1, {N} times too small)",
        wrong=True,
        highlight_rows=False,
    )
    _table(
        fig.add_subplot(grid[0, 2]),
        found.wrong_axis,
        f"✗ summed over the wrong axis (the classes)\n1×{N}: one number per sample, and all 0",
        wrong=True,
        highlight_rows=False,
    )
    text = fig.add_subplot(grid[1, 2])
    text.axis("off")
    text.text(
        0.0,
        0.5,
        "b is added to every column of W X (broadcast over the N samples),\n"
        "so each entry of b reaches the loss once per sample: its gradient\n"
        "adds the N contributions of its row, db = Σᵢ dZ[:, i] (the engine's\n"
        "sum-to-shape, the adjoint of broadcasting).\n\n"
        "Summing over the classes instead gives one number per sample\n"
        "(each column of P − Y sums to 0). The mean divides by N a second\n"
        "time: dZ already carries the 1/N of the mean loss.",
        fontsize=9,
        va="center",
    )
    fig.suptitle("The adjoint of broadcasting: ∂L/∂b is ∂L/∂Z summed over the samples", fontsize=12)
    return fig
