"""The derived formulas on a 16:9 slide (1920×1080 PNG), drawn by matplotlib's mathtext: no TeX needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..outputs import atomic_path
from .derivation import Derivation
from .report import latex_lines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SLIDE_FIGSIZE = (9.6, 5.4)
SLIDE_DPI = 200  # 9.6 in × 200 dpi = 1920 px


def check_mathtext(line: str) -> None:
    """Raise ValueError unless matplotlib's mathtext parses ``line`` (what the slide and the tests use)."""
    from matplotlib.mathtext import MathTextParser

    MathTextParser("agg").parse(f"${line}$", dpi=72)


def formula_figure(d: Derivation, extra: list[str] | None = None) -> Figure:
    """The chain view and the written-out view, one equation per line, under a title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chain = latex_lines(d, "chain")
    written = [line for line in latex_lines(d, "expanded") if line not in chain]
    right = written + ([""] if written and extra else []) + (extra or [])
    fig = Figure(figsize=SLIDE_FIGSIZE, facecolor="white")
    FigureCanvasAgg(fig)
    # The text sits on one invisible axes filling the slide (Jupyter shows no figure without axes).
    page = fig.add_axes((0, 0, 1, 1))
    page.set_axis_off()
    page.set_xlim(0, 1)
    page.set_ylim(0, 1)
    page.text(
        0.04, 0.95, "Derived by the engine from the recorded graph", fontsize=16, weight="bold", va="top"
    )
    page.text(0.04, 0.885, d.title, fontsize=12, color="#333333", va="top")
    page.text(0.05, 0.81, "chain rule, one named gradient at a time", fontsize=10, color="#666666", va="top")
    if right:
        page.text(0.40, 0.81, "written out", fontsize=10, color="#666666", va="top")
        _column(fig, page, chain, 0.05, 0.33)
        _column(fig, page, right, 0.40, 0.57)
    else:
        _column(fig, page, chain, 0.05, 0.9)
    page.text(
        0.04,
        0.03,
        "Every formula computed with NumPy equals the engine's gradient: "
        f"max |Δ| = {d.worst_error:.1e} (float64)",
        fontsize=10,
        color="#444444",
    )
    return fig


def _column(fig: Figure, page: Axes, lines: list[str], left: float, width: float) -> None:
    """``lines`` one under the other from the top of the slide, the font as large as the column allows."""
    top, bottom = 0.76, 0.09
    step = min((top - bottom) / max(len(lines), 1), 0.13)
    size = min(22.0, step * SLIDE_FIGSIZE[1] * 72 / 2.6)  # a fraction is about 2.6 font sizes tall
    texts = []
    y = top
    for line in lines:
        if line:
            texts.append(page.text(left, y, f"${line}$", fontsize=size, va="top"))
        y -= step
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    widest = max((t.get_window_extent(renderer).width for t in texts), default=0.0)
    room = width * fig.bbox.width
    if widest > room:  # every line of the column shrinks alike
        for t in texts:
            t.set_fontsize(size * room / widest)


def write_formula_png(d: Derivation, path: str | Path, extra: list[str] | None = None) -> Path:
    """The slide as a 1920×1080 PNG, written whole or not at all."""
    fig = formula_figure(d, extra)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=SLIDE_DPI, format="png")
    return Path(path)
