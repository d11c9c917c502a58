"""The picture of a check: the classifier's graph with every op whose student rule is wrong in red.

The graph is the column-layout classifier the lecture draws (``viz``), so a
student sees the ops they wrote where they sit in the forward pass. The tensor
that receives the first wrong gradient on the way from the loss to W is drawn
in red as well, and the title names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import extras, outputs

if TYPE_CHECKING:
    import graphviz

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


def title(report: Report) -> str:
    """Two lines: which rules are wrong, and the first wrong gradient on the way to W."""
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
    return head + ("\n" + tail if tail else "")


def draw(report: Report, path: str | Path, dpi: int = 150) -> Path | None:
    """Write the picture (PNG, SVG or PDF by the extension); None when ``dot`` is not installed."""
    path = check_path(path)
    if not extras.have("dot"):
        return None
    dot = to_dot(report)
    dot.attr(dpi=str(dpi))
    return outputs.write_bytes(path, dot.pipe(format=path.suffix.lower().lstrip(".")))


def to_dot(report: Report) -> graphviz.Digraph:
    """The picture as DOT (``graphviz.Digraph``): the wrong rules' ops and the first wrong gradient in red."""
    from .. import viz
    from ..classifier import build_classifier
    from ..graph import graph_order, tensor_labels

    model = build_classifier("column")
    order = graph_order(model.loss)
    wrong = set(report.wrong_rules)
    red_ops = [t for t in order if t.parents and t.op in wrong]
    column = next((c for c in report.classifiers if c.layout == "column"), None)
    first = column.first_wrong if column is not None else None
    labels = tensor_labels(model.loss)
    highlight = [t for t in order if first is not None and labels[t] == first["tensor"]]
    return viz.to_dot(
        model.loss,
        highlight=highlight,
        highlight_ops=red_ops,
        clusters={"cross_entropy": (model.loss, [model.Z])},
        title=title(report),
    )
