"""The picture of a check: the classifier's graph with every op whose student rule is wrong in red.

The graph is the column-layout classifier the lecture draws (``viz``), so a
student sees the ops they wrote where they sit in the forward pass. The tensor
that receives the first wrong gradient on the way from the loss to W is drawn
in red as well, and the title names it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import extras, outputs

if TYPE_CHECKING:
    import graphviz

    from ...tensor import Tensor
    from .autograder import Report

FORMATS = (".png", ".svg", ".pdf")


def check_path(path: str | Path) -> Path:
    """The picture's path, checked before any grading: a known format, a folder that takes files."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(
            f"--picture: cannot write {path.name!r}: the extension {path.suffix or '(none)'!r} is not "
            "one of .png, .svg, .pdf"
        )
    return outputs.check_file(path, "--picture")


TITLE_WIDTH = 60  # characters: a wider title would set the picture's width and shrink the graph's text


def title(report: Report) -> str:
    """Which rules are wrong, and the first wrong gradient on the way to W, wrapped to TITLE_WIDTH."""
    wrong = report.wrong_rules
    if report.problem:
        head = "Nothing could be graded: " + report.problem.splitlines()[0]
    elif wrong:
        head = "Your rules that did not pass, in red: " + ", ".join(f"{name}" for name in wrong)
    else:
        head = "Every rule passed"
    column = next((c for c in report.classifiers if c.layout == "column"), None)
    if column is not None and column.first_wrong:
        from .autograder import first_wrong_line

        line = first_wrong_line(column.first_wrong)
        tail = line[:1].upper() + line[1:].replace(": ", " (red): ", 1)
    elif column is not None and column.passed:
        tail = "The engine derives ∂L/∂Z = (P − Y)/N, ∂L/∂W and ∂L/∂b of the closed form with your rules"
    else:
        tail = ""
    return "\n".join(line for part in (head, tail) if part for line in textwrap.wrap(part, TITLE_WIDTH))


def draw(report: Report, path: str | Path, dpi: int | None = None) -> list[Path] | None:
    """Write the picture (PNG, SVG or PDF by the extension), fitted to a 16:9 slide: the paths written.

    One picture when the graph fits one slide with every op and its red mark
    readable (smallest text 24 px, :mod:`lecture.views.slides`), else the graph cut
    into slides, ``wrong-1.png``, ``wrong-2.png`` (``viz.render_slides``); it
    is never collapsed, which would hide a red op inside cross_entropy. None
    when ``dot`` is not installed.
    """
    from ..views import viz

    path = check_path(path)
    if not extras.have("dot"):
        return None
    root, options = _drawing(report)
    return viz.render_slides(root, path, dpi=dpi, **options)


def to_dot(report: Report) -> graphviz.Digraph:
    """The picture as DOT (``graphviz.Digraph``): the wrong rules' ops and the first wrong gradient in red."""
    from ..views import viz

    root, options = _drawing(report)
    return viz.to_dot(root, **options)


def _drawing(report: Report) -> tuple[Tensor, dict[str, Any]]:
    """The classifier's loss and the options of ``viz.to_dot`` that draw the report on it."""
    from ..training.classifier import build_classifier
    from ..views.graph import graph_order, tensor_labels

    model = build_classifier("column")
    order = graph_order(model.loss)
    wrong = set(report.wrong_rules)
    red_ops = [t for t in order if t.parents and t.op in wrong]
    column = next((c for c in report.classifiers if c.layout == "column"), None)
    first = column.first_wrong if column is not None else None
    labels = tensor_labels(model.loss)
    highlight = [t for t in order if first is not None and labels[t] == first["tensor"]]
    options = {
        "highlight": highlight,
        "highlight_ops": red_ops,
        "clusters": {"cross_entropy": (model.loss, [model.Z])},
        "title": title(report),
    }
    return model.loss, options
