"""How the pictures look: colours, fonts, and the Graphviz labels of a tensor and an op.

A tensor is a record (``name  kind | shape dtype | values | grad``), an op a
label with its name in bold, its settings and, on request, its local rule.
Every picture (:mod:`.drawing`, :mod:`.frames`, the explorer page) draws with these.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import graphviz

__all__ = [
    "FONT",
    "MONO",
    "INK",
    "FAINT",
    "FILL",
    "OP_FILL",
    "OP_LINE",
    "RED",
    "CURRENT",
    "CURRENT_FILL",
    "Section",
    "record",
    "rule_lines",
    "op_label",
    "new_digraph",
]

FONT = "sans-serif"
MONO = "monospace"
INK = "#222222"
FAINT = "#b8b8b8"  # greyed-out nodes and edges in the backward frames
FILL = {"root": "#f9d9d9", "parameter": "#d5ecd5", "input": "#ececec", "constant": "#ececec", "": "#ffffff"}
OP_FILL = "#fff1c1"
OP_LINE = "#8a6d00"  # border of an op node
RED = "#d62728"
CURRENT = "#f28e2b"  # the node being processed in a backward frame
CURRENT_FILL = "#fde3c8"


# ---------------------------------------------------------------- node labels (Graphviz HTML-like)


@dataclass
class Section:
    """One compartment of a tensor record: a heading (none if empty) and some lines of numbers."""

    heading: str
    lines: list[str]
    color: str = INK


def record(
    title: str,
    kind: str,
    subtitle: str,
    sections: Sequence[Section] = (),
    *,
    fill: str = "#ffffff",
    border: str = INK,
    ink: str = INK,
    border_width: int = 1,
    small: int = 10,
    padding: int = 3,
) -> str:
    """A tensor as a record: ``name  kind | shape dtype | values | grad``; smallest text ``small`` pt,
    ``padding`` points around each part."""
    kind_html = (
        f'  <FONT POINT-SIZE="{small}" COLOR="{ink}"><I>{html.escape(kind)}</I></FONT>' if kind else ""
    )
    name_html = f'<FONT POINT-SIZE="15" COLOR="{ink}"><B>{html.escape(title)}</B></FONT>'
    rows = [
        f"<TR><TD>{name_html}{kind_html}</TD></TR>",
        f'<TR><TD><FONT POINT-SIZE="{small + 1}" COLOR="{ink}">{html.escape(subtitle)}</FONT></TD></TR>',
    ]
    for section in sections:
        body = "<BR/>".join(
            html.escape(line) for line in [*[section.heading][: bool(section.heading)], *section.lines]
        )
        rows.append("<HR/>")
        rows.append(
            f'<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="{small}" '
            f'COLOR="{section.color}">{body}</FONT></TD></TR>'
        )
    return (
        f'<<TABLE BORDER="{border_width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="{padding}" '
        f'BGCOLOR="{fill}" COLOR="{border}" STYLE="ROUNDED">{"".join(rows)}</TABLE>>'
    )


def rule_lines(rule: str, width: int = 36) -> list[str]:
    """A rule broken for a label: one clause per line (split at ", "), long clauses wrapped."""
    return [line for clause in rule.split(", ") for line in textwrap.wrap(clause, width)]


def op_label(
    name: str,
    detail: str,
    rule: str | None,
    ink: str = INK,
    *,
    output: str = "",
    output_ink: str | None = None,
    sections: Sequence[Section] = (),
    small: int = 10,
) -> str:
    """An op node's label: the op's name in bold, its settings, optionally its local rule.

    A compact drawing folds the op's output into it: ``output`` (``t7 · 3×5``)
    goes under the settings, and the output's values and gradient at the bottom.
    ``small`` is the size of its smallest text, in points.
    """
    rows = [f'<FONT POINT-SIZE="14" COLOR="{ink}"><B>{html.escape(name)}</B></FONT>']
    if detail:
        rows.append(f'<FONT POINT-SIZE="{small}" COLOR="{ink}">{html.escape(detail)}</FONT>')
    if output:
        rows.append(
            f'<FONT POINT-SIZE="{small + 1}" COLOR="{output_ink or ink}">{html.escape(output)}</FONT>'
        )
    if rule:
        lines = "<BR/>".join(html.escape(line) for line in rule_lines(rule))
        rows.append(f'<FONT POINT-SIZE="{small}" COLOR="{ink}"><I>{lines}</I></FONT>')
    # One table cell per part keeps an underscore in the name clear of the line below.
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    for section in sections:
        body = "<BR/>".join(
            html.escape(line) for line in [*[section.heading][: bool(section.heading)], *section.lines]
        )
        cells += (
            f'<HR/><TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="{small}" '
            f'COLOR="{section.color}">{body}</FONT></TD></TR>'
        )
    rule_color = f' COLOR="{OP_LINE}"' if sections else ""  # the lines above the numbers
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1"{rule_color}>{cells}</TABLE>>'


def new_digraph(rankdir: str, title: str | None = None) -> graphviz.Digraph:
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"to_dot: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    dot = graphviz.Digraph(name="computation_graph")
    dot.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.35", pad="0.25", bgcolor="white")
    dot.attr("node", fontname=FONT, shape="plaintext", margin="0")
    dot.attr("edge", color="#555555", arrowsize="0.7", penwidth="1.2")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="20")
    return dot
