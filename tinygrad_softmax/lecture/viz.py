"""Pictures of the recorded graph: tensors as records, ops as ovals, the loss at the end.

A viewer only reads the graph (``parents``, ``op``, ``grad_fn.params()``, names,
data, grads) and never changes it. Node ids come from a counter in walk order,
so the same graph gives byte-identical DOT text on every run.

    to_dot(loss)                    a graphviz.Digraph (a notebook shows it inline)
    render(loss, "graph.png")       PNG, SVG or PDF by the file's extension
    backward_frames(loss, "out")    one picture per step of the backward walk
    to_html(loss, "explorer.html")  one offline web page that steps through the walk (lecture/explorer.py)
    explore(loss)                   the same page inline in Jupyter
"""

from __future__ import annotations

import glob
import html
import json
import os
import re
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz

from .. import engine
from ..tensor import Tensor
from . import extras, outputs, slides
from .graph import (
    BROADCASTING_OPS,
    graph_order,
    kind_of,
    loss_steps,
    op_text,
    shape_text,
    summarize,
    tensor_labels,
)

__all__ = [
    "GraphvizNotFoundError",
    "graph_order",
    "tensor_labels",
    "shape_text",
    "summarize",
    "loss_steps",
    "to_dot",
    "render",
    "render_slides",
    "backward_frames",
]

FORMATS = ("png", "svg", "pdf")

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


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not on PATH.

    The message is the one line of :func:`extras.skipped`: what was not drawn
    and the install command. ``dot_path`` is where the DOT text was saved
    (None when there is nothing useful to save, as for the backward frames).
    """

    def __init__(self, message: str, dot_path: Path | None) -> None:
        super().__init__(message)
        self.dot_path = dot_path


# ---------------------------------------------------------------- node labels (Graphviz HTML-like)


@dataclass
class Section:
    """One compartment of a tensor record: a heading and some lines of numbers."""

    heading: str
    lines: list[str]
    color: str = INK


def _record(
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
) -> str:
    """A tensor as a record: ``name  kind | shape dtype | values | grad``; smallest text ``small`` pt."""
    kind_html = (
        f'  <FONT POINT-SIZE="{small}" COLOR="{ink}"><I>{html.escape(kind)}</I></FONT>' if kind else ""
    )
    name_html = f'<FONT POINT-SIZE="15" COLOR="{ink}"><B>{html.escape(title)}</B></FONT>'
    rows = [
        f"<TR><TD>{name_html}{kind_html}</TD></TR>",
        f'<TR><TD><FONT POINT-SIZE="{small + 1}" COLOR="{ink}">{html.escape(subtitle)}</FONT></TD></TR>',
    ]
    for section in sections:
        body = "<BR/>".join(html.escape(line) for line in [section.heading, *section.lines])
        rows.append("<HR/>")
        rows.append(
            f'<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="{small}" '
            f'COLOR="{section.color}">{body}</FONT></TD></TR>'
        )
    return (
        f'<<TABLE BORDER="{border_width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" '
        f'BGCOLOR="{fill}" COLOR="{border}" STYLE="ROUNDED">{"".join(rows)}</TABLE>>'
    )


def _rule_lines(rule: str, width: int = 36) -> list[str]:
    """A rule broken for a label: one clause per line (split at ", "), long clauses wrapped."""
    return [line for clause in rule.split(", ") for line in textwrap.wrap(clause, width)]


def _op_label(
    name: str,
    detail: str,
    rule: str | None,
    ink: str = INK,
    *,
    output: str = "",
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
        rows.append(f'<FONT POINT-SIZE="{small + 1}" COLOR="{ink}">{html.escape(output)}</FONT>')
    if rule:
        lines = "<BR/>".join(html.escape(line) for line in _rule_lines(rule))
        rows.append(f'<FONT POINT-SIZE="{small}" COLOR="{ink}"><I>{lines}</I></FONT>')
    # One table cell per part keeps an underscore in the name clear of the line below.
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    for section in sections:
        body = "<BR/>".join(html.escape(line) for line in [section.heading, *section.lines])
        cells += (
            f'<HR/><TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="{small}" '
            f'COLOR="{section.color}">{body}</FONT></TD></TR>'
        )
    rule_color = f' COLOR="{OP_LINE}"' if sections else ""  # the lines above the numbers
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1"{rule_color}>{cells}</TABLE>>'


def _new_digraph(rankdir: str, title: str | None = None) -> graphviz.Digraph:
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"to_dot: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    dot = graphviz.Digraph(name="computation_graph")
    dot.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.35", pad="0.25", bgcolor="white")
    dot.attr("node", fontname=FONT, shape="plaintext", margin="0")
    dot.attr("edge", color="#555555", arrowsize="0.7", penwidth="1.2")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="20")
    return dot


# ---------------------------------------------------------------- clusters


@dataclass
class _Cluster:
    """The nodes of one function (e.g. cross_entropy) inside the graph."""

    name: str
    output: Tensor
    members: list[Tensor] = field(default_factory=list)  # in walk order, output last


def _between(order: list[Tensor], inputs: set[Tensor], output: Tensor) -> set[Tensor]:
    """The tensors on a path from ``inputs`` to ``output``: downstream of one, upstream of the other."""
    downstream = set(inputs)
    for t in order:  # inputs come first, so one pass reaches every descendant
        if any(p in downstream for p in t.parents):
            downstream.add(t)
    upstream = {output}
    for t in reversed(order):
        if t in upstream:
            upstream.update(t.parents)
    return (downstream & upstream) - inputs


def _find_clusters(
    order: list[Tensor], clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None
) -> list[_Cluster]:
    """For each ``name: (output, inputs)``: the tensors on a path from the inputs to the output.

    The inputs are left out, the output is kept, and constants that feed only
    the cluster's own ops (the detached max) join it.
    """
    if not clusters:
        return []
    drawn = set(order)
    consumers: dict[Tensor, list[Tensor]] = {}
    for t in order:
        for p in t.parents:
            consumers.setdefault(p, []).append(t)
    found: list[_Cluster] = []
    taken: dict[Tensor, str] = {}
    for name, (output, inputs) in clusters.items():
        if output not in drawn:
            raise ValueError(f"to_dot: the output of cluster {name!r} is not in the drawn graph")
        members = _between(order, set(inputs), output)
        if output not in members:
            raise ValueError(
                f"to_dot: cluster {name!r}: its output {output.name or 'tensor'} {shape_text(output.shape)} "
                "does not depend on any of its inputs"
            )
        for t in order:
            users = consumers.get(t, [])
            if not t.parents and t not in inputs and users and all(u in members for u in users):
                members.add(t)
        for t in members:
            if t in taken:
                raise ValueError(
                    f"to_dot: clusters {taken[t]!r} and {name!r} overlap; clusters must be disjoint"
                )
            taken[t] = name
        found.append(_Cluster(name, output, [t for t in order if t in members]))
    return found


# ---------------------------------------------------------------- to_dot


def to_dot(
    root: Tensor,
    show_values: bool = False,
    show_grads: bool = False,
    rankdir: str = "LR",
    show_rules: bool = False,
    highlight: Iterable[Tensor] = (),
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
    collapse: bool = False,
    title: str | None = None,
    compact: bool = False,
    highlight_ops: Iterable[Tensor] = (),
) -> graphviz.Digraph:
    """The graph that made ``root``, as a ``graphviz.Digraph``.

    Tensors are records (name or ``t<k>``, shape, dtype; values and gradients on
    request), ops are ovals labelled with their settings, and arrows follow the
    forward pass. Parameters are green, inputs and constants grey, the loss red.

    ``show_rules`` writes each op's local derivative on it; ``highlight`` draws
    the given tensors in red, ``highlight_ops`` the ops that made the given
    tensors (the exercise kit's wrong rules); ``clusters={"cross_entropy": (loss, [Z])}`` boxes
    the nodes between ``Z`` (excluded) and ``loss`` (included), and with
    ``collapse=True`` each cluster becomes one node, its output still shown.

    ``compact=True`` draws every unnamed tensor made by an op (not the root)
    inside the op that made it: ``exp`` over ``t7 · 3×5``, with its values and
    gradient on request. Named tensors and leaves keep their records, and every
    ``t<k>`` is the same as in the full drawing. A chain of ops needs half as many
    ranks, so a left-to-right picture is much narrower.
    """
    drawing = _Drawing.of(
        root,
        show_values=show_values,
        show_grads=show_grads,
        show_rules=show_rules,
        highlight=highlight,
        clusters=clusters,
        collapse=collapse,
        compact=compact,
        highlight_ops=highlight_ops,
    )
    return drawing.digraph(rankdir, title)


@dataclass
class _Drawing:
    """One drawing of a graph: which node stands for which tensor, and how each is drawn.

    Node names: ``t<k>`` for the k-th tensor of :func:`graph_order`, ``op<k>``
    for the op that made it, ``fn<c>`` for the c-th cluster drawn as one node.
    """

    root: Tensor
    order: list[Tensor]
    clusters: list[_Cluster]
    show_values: bool
    show_grads: bool
    show_rules: bool
    highlight: set[Tensor]
    collapse: bool
    compact: bool
    red_ops: set[Tensor] = field(default_factory=set)  # tensors whose op is drawn in red
    names: dict[Tensor, str] = field(init=False)
    home: dict[Tensor, int] = field(init=False)  # tensor → index of the cluster it belongs to

    def __post_init__(self) -> None:
        self.names = {t: f"t{k}" for k, t in enumerate(self.order)}
        self.home = {t: c for c, cluster in enumerate(self.clusters) for t in cluster.members}

    @classmethod
    def of(
        cls,
        root: Tensor,
        show_values: bool = False,
        show_grads: bool = False,
        show_rules: bool = False,
        highlight: Iterable[Tensor] = (),
        clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
        collapse: bool = False,
        compact: bool = False,
        highlight_ops: Iterable[Tensor] = (),
    ) -> _Drawing:
        """The drawing :func:`to_dot` makes with these options."""
        order = graph_order(root)
        return cls(
            root,
            order,
            _find_clusters(order, clusters),
            show_values=show_values,
            show_grads=show_grads,
            show_rules=show_rules,
            highlight=set(highlight),
            collapse=collapse,
            compact=compact,
            red_ops=set(highlight_ops),
        )

    # ------------------------------------------------ which node draws what

    def in_collapsed(self, t: Tensor) -> bool:
        """Inside a cluster that is drawn as one node."""
        return self.collapse and t in self.home

    def hidden(self, t: Tensor) -> bool:
        """In a collapsed cluster, everything but the output is hidden."""
        return self.in_collapsed(t) and t is not self.clusters[self.home[t]].output

    def folded(self, t: Tensor) -> bool:
        """In a compact drawing, an unnamed intermediate is drawn inside the op that made it.

        A collapsed cluster already hides its insides, so compact leaves it alone.
        """
        if not self.compact or t.name or not t.parents or t is self.root:
            return False
        return not self.in_collapsed(t)

    def op_node(self, t: Tensor) -> str:
        """The node of the op that made ``t``."""
        return f"fn{self.home[t]}" if self.in_collapsed(t) else f"op{self.names[t][1:]}"

    def tensor_node(self, t: Tensor) -> str:
        """The node an arrow to or from ``t`` ends at."""
        if self.folded(t):
            return self.op_node(t)
        return f"fn{self.home[t]}" if self.hidden(t) else self.names[t]

    def sections(self, t: Tensor) -> list[Section]:
        """The numbers written on a tensor: its values and its gradient, as asked."""
        sections = []
        if self.show_values:
            sections.append(Section("data", summarize(t.data)))
        if self.show_grads:
            if t.grad is not None:
                sections.append(Section("grad", summarize(t.grad)))
            else:
                sections.append(Section("grad", ["None" if t.requires_grad else "None (no grad needed)"]))
        return sections

    # ------------------------------------------------ the nodes

    def add_tensor(self, target: graphviz.Digraph, t: Tensor, node: str | None = None) -> None:
        """A tensor's record: coloured by what it is, red when highlighted."""
        kind = kind_of(t, self.root)
        red = t in self.highlight
        grey = kind in ("input", "constant")
        target.node(
            node or self.names[t],
            _record(
                t.name or self.names[t],
                kind,
                f"{shape_text(t.shape)}  {t.dtype}",
                self.sections(t),
                fill=FILL[kind],
                border=RED if red else ("#888888" if grey else INK),
                border_width=3 if red else (2 if kind == "root" else 1),
                ink=RED if red else INK,
            ),
        )

    def add_op(self, target: graphviz.Digraph, t: Tensor) -> None:
        """The op that made ``t``: an oval, a box with its rule, or (compact) a box holding ``t``."""
        assert t.grad_fn is not None
        rule = t.grad_fn.rule if self.show_rules else None
        if self.folded(t):
            red = t in self.highlight or t in self.red_ops
            # A rounded box, not an oval: it holds a tensor too, and a box is narrower.
            target.node(
                self.op_node(t),
                _op_label(
                    t.op,
                    op_text(t),
                    rule,
                    RED if red else INK,
                    output=f"{self.names[t]} · {shape_text(t.shape)}",
                    sections=self.sections(t),
                ),
                shape="box",
                style="rounded,filled",
                fillcolor=OP_FILL,
                color=RED if red else OP_LINE,
                penwidth="3" if red else "1",
                margin="0.12,0.05",
            )
        elif not self.in_collapsed(t):
            red = t in self.red_ops  # only then is the pen set, so other drawings keep their DOT text
            target.node(
                self.op_node(t),
                _op_label(t.op, op_text(t), rule, RED if red else INK),
                shape="box" if self.show_rules else "ellipse",
                style="rounded,filled" if self.show_rules else "filled",
                fillcolor=OP_FILL,
                color=RED if red else OP_LINE,
                margin="0.12,0.05" if self.show_rules else "0.05,0.03",
                **({"penwidth": "3"} if red else {}),
            )

    def handoffs(self) -> dict[str, str]:
        """For each op box that holds its tensor (compact), the line drawing that tensor alone.

        When the picture is cut into slides (``slides.split``), the tensor one
        slide ends with is drawn again where the next starts: as a record, not
        as the op with its rule a second time.
        """
        lines = {}
        for t in self.order:
            if self.folded(t):
                scratch = graphviz.Digraph()
                self.add_tensor(scratch, t, self.op_node(t))
                lines[self.op_node(t)] = scratch.body[-1].strip()
        return lines

    def add_collapsed_clusters(self, dot: graphviz.Digraph) -> None:
        """Each cluster as one box naming its ops."""
        for c, cluster in enumerate(self.clusters):
            ops = [t.op for t in cluster.members if t.parents]
            dot.node(
                f"fn{c}",
                _op_label(cluster.name, f"{len(ops)} ops: " + ", ".join(ops), None),
                shape="box",
                style="rounded,filled",
                fillcolor=OP_FILL,
                margin="0.15,0.08",
            )

    def edges_of(self, t: Tensor, edges: list[tuple[str, str]]) -> None:
        """Add to ``edges`` the arrows into the op that made ``t`` and out of it to ``t``."""
        op = self.op_node(t)
        for edge in [*((self.tensor_node(p), op) for p in t.parents), (op, self.tensor_node(t))]:
            merged = edge[0].startswith("fn") or edge[1].startswith("fn")
            if edge[0] != edge[1] and not (merged and edge in edges):  # x * x keeps both arrows
                edges.append(edge)

    # ------------------------------------------------ the whole picture

    def digraph(self, rankdir: str, title: str | None) -> graphviz.Digraph:
        dot = _new_digraph(rankdir, title)
        box = {"style": "dashed,rounded", "color": "#777777", "fontsize": "14"}
        subgraphs = [
            graphviz.Digraph(name=f"cluster_{c}", graph_attr={"label": cluster.name, **box})
            for c, cluster in enumerate(self.clusters)
        ]
        if self.collapse:
            self.add_collapsed_clusters(dot)
        edges: list[tuple[str, str]] = []
        for t in self.order:
            target = subgraphs[self.home[t]] if t in self.home and not self.collapse else dot
            if not self.hidden(t) and not self.folded(t):
                self.add_tensor(target, t)
            if t.parents:
                self.add_op(target, t)
                self.edges_of(t, edges)
        if not self.collapse:
            for sub in subgraphs:
                dot.subgraph(sub)
        for tail, head in edges:
            dot.edge(tail, head)
        return dot


# ---------------------------------------------------------------- render


def _missing_dot(source: str, path: Path) -> GraphvizNotFoundError:
    """Save the DOT text next to ``path`` and build the error that says so, in one line."""
    dot_path = outputs.write_text(path.with_suffix(".dot"), source)
    form = path.suffix[1:].lower() or "png"
    # `dot -Tpng` makes the picture itself; an explorer page is more than Graphviz's output
    remake = f": dot -T{form} {dot_path} -o {path}" if form in ("png", "svg", "pdf") else ""
    what = f"{path} (its DOT text is in {dot_path}{remake})"
    return GraphvizNotFoundError(extras.skipped(what, "dot"), dot_path)


def render(
    root: Tensor,
    path: str | Path,
    *,
    dpi: int | None = None,
    slide: str | None = "16:9",
    **to_dot_options: Any,
) -> Path:
    """Draw ``root``'s graph into ``path``: PNG, SVG or PDF by its extension.

    By default the picture fits a 16:9 slide (:mod:`lecture.slides`: a long
    chain wrapped onto rows, the canvas padded to the ratio, 1920 px wide);
    ``slide="4:3"`` for the older shape, ``slide=None`` for the drawing at its
    natural width (``graph --wide``). ``dpi`` sets the resolution. Other options
    go to :func:`to_dot`. Without Graphviz's ``dot`` program, the DOT text is
    saved next to ``path`` and :class:`GraphvizNotFoundError` says how to install it.

    One picture: to fit, it may be drawn compact or with its clusters collapsed
    (:func:`_slide_source`), which hides the rules of a collapsed cluster's ops.
    :func:`render_slides` cuts such a picture into slides instead.
    """
    return _render("render", root, Path(path), dpi, slide, to_dot_options, cut=False)[0]


def render_slides(
    root: Tensor,
    path: str | Path,
    *,
    dpi: int | None = None,
    slide: str | None = "16:9",
    **to_dot_options: Any,
) -> list[Path]:
    """Draw ``root``'s graph on as many slides as it takes to show everything asked: the paths written.

    As :func:`render` when one slide is enough; else (typically with
    ``show_rules=True``: a graph with every op's local rule) the graph is cut
    along its ranks into 2, 3 or 4 pictures, ``path``'s name with ``-1``,
    ``-2``, ... (``rules-1.png``, ``rules-2.png``), each fitted to the slide
    and meeting the slide rule (:func:`_slide_sources`). The tensor one slide
    ends with is drawn again where the next starts. ``slide=None``: one
    picture at natural width, as :func:`render`. A picture an earlier call
    left in the other form (``path`` itself, or ``path``-k) is removed, so
    the folder never mixes two drawings.
    """
    return _render("render_slides", root, Path(path), dpi, slide, to_dot_options, cut=True)


def _render(
    who: str,
    root: Tensor,
    path: Path,
    dpi: int | None,
    slide: str | None,
    options: dict[str, Any],
    *,
    cut: bool,
) -> list[Path]:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{who}: cannot write {path.name!r}: the extension {path.suffix or '(none)'!r} is not "
            "one of .png, .svg, .pdf"
        )
    if slide is not None and slide not in slides.RATIOS:
        raise ValueError(f"{who}: slide must be one of {', '.join(slides.RATIOS)} or None, got {slide!r}")
    dot = to_dot(root, **options)
    if dpi is not None:
        dot.attr(dpi=str(dpi))
    if shutil.which("dot") is None:
        raise _missing_dot(dot.source, path)
    try:
        if slide is None:
            sources = [dot.source]
        elif cut:
            sources = _slide_sources(root, options, slide, dpi)
        else:
            sources = [_slide_source(root, options, slide, dpi)]
        pictures = [graphviz.Source(source).pipe(format=fmt) for source in sources]
    except graphviz.ExecutableNotFound:
        raise _missing_dot(dot.source, path) from None
    # Each file whole or not at all: a temporary file renamed into place.
    if len(pictures) == 1:
        written = [outputs.write_bytes(path, pictures[0])]
    else:
        paths = [path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(1, len(pictures) + 1)]
        written = [outputs.write_bytes(part, picture) for part, picture in zip(paths, pictures)]
    if cut:  # a picture of an earlier run in the other form (one file, or more slides) would mislead
        older = [path, *path.parent.glob(f"{glob.escape(path.stem)}-[0-9]{glob.escape(path.suffix)}")]
        for old in older:
            if old not in written:
                old.unlink(missing_ok=True)
    return written


def _slide_text_px(source: str, dpi: int | None) -> float:
    """How tall the smallest text of a fitted source is when its picture fills the slide."""
    resolution = float(dpi) if dpi is not None else slides.SLIDE[0] / slides.canvas_inches(source)
    return slides.text_px(slides.min_font_pt(source), resolution, slides.SLIDE)


def _slide_source(root: Tensor, options: dict[str, Any], shape: str, dpi: int | None) -> str:
    """The DOT source of the mildest drawing that meets the slide rule (:mod:`lecture.slides`).

    Tried in order: the drawing as asked, wrapped onto rows; then compact (each
    unnamed intermediate inside its op); then, if a cluster was given, collapsed
    (cross_entropy as one node); then both. The first whose smallest text is at
    least ``slides.MIN_TEXT_PX`` on a 1920×1080 slide is drawn, else the last.
    """
    steps: list[dict[str, Any]] = [{}, {"compact": True}]
    if options.get("clusters"):
        steps += [{"collapse": True}, {"compact": True, "collapse": True}]
    source = ""
    for extra in steps:
        source = slides.fit(to_dot(root, **{**options, **extra}).source, shape, dpi)
        if _slide_text_px(source, dpi) >= slides.MIN_TEXT_PX:
            break
    return source


MAX_SLIDES = 4  # a graph cut into more slides than this is better read in the explorer


def _slide_sources(root: Tensor, options: dict[str, Any], shape: str, dpi: int | None) -> list[str]:
    """One fitted DOT source per slide: the fewest slides that show everything asked at the rule's size.

    One slide when :func:`_slide_source`'s drawing meets the rule and hides
    nothing asked for: collapsing a cluster hides its ops' rules and the red
    marks inside it, so then (unless ``collapse`` was asked) it does not
    count (:func:`_collapse_hides`). Else the
    drawing as asked, then compact, cut into 2, 3, ... ``MAX_SLIDES`` pieces
    (``slides.split``, a compact box handed over as its tensor): the first cut
    whose every piece meets the rule. If none does, the one slide, or (when it
    would hide the rules) the cut whose smallest text is largest.
    """
    single = _slide_source(root, options, shape, dpi)
    collapsed = re.search(r"^\t+fn\d+ \[", single, re.M) is not None
    hides_rules = collapsed and not options.get("collapse") and _collapse_hides(root, options)
    if _slide_text_px(single, dpi) >= slides.MIN_TEXT_PX and not hides_rules:
        return [single]
    best: tuple[float, list[str]] | None = None
    for parts in range(2, MAX_SLIDES + 1):
        for extra in ({}, {"compact": True}):
            drawing_options = {**options, **extra}
            source = to_dot(root, **drawing_options).source
            handoffs = _Drawing.of(root, **_drawing_options(drawing_options)).handoffs()
            pieces = [slides.fit(piece, shape, dpi) for piece in slides.split(source, parts, handoffs)]
            smallest = min(_slide_text_px(piece, dpi) for piece in pieces)
            if smallest >= slides.MIN_TEXT_PX:
                return pieces
            if best is None or smallest > best[0]:
                best = (smallest, pieces)
    assert best is not None
    return best[1] if hides_rules else [single]


def _collapse_hides(root: Tensor, options: dict[str, Any]) -> bool:
    """Whether collapsing the clusters would hide something asked for: a rule, or a red mark inside."""
    members = {t for c in _find_clusters(graph_order(root), options.get("clusters")) for t in c.members}
    if options.get("show_rules") and any(t.parents for t in members):
        return True
    marked = {*options.get("highlight", ()), *options.get("highlight_ops", ())}
    return any(t in members and t is not root for t in marked)


def _drawing_options(options: dict[str, Any]) -> dict[str, Any]:
    """:func:`to_dot`'s options without the ones that only place the picture (rankdir, title)."""
    return {key: value for key, value in options.items() if key not in ("rankdir", "title")}


# ---------------------------------------------------------------- backward frames


@dataclass
class _Layout:
    """Where ``dot`` put every node and edge once; every frame is drawn at these places."""

    nodes: dict[str, dict[str, str]]  # node name → pos (points), width and height (inches)
    edges: dict[tuple[str, str], list[str]]  # (tail, head) → spline of each such edge, in order
    width: float  # bounding box, points
    height: float

    @classmethod
    def from_json(cls, text: str | bytes) -> _Layout:
        data = json.loads(text)
        objects = data.get("objects", [])
        names = {obj["_gvid"]: obj["name"] for obj in objects}
        nodes = {
            obj["name"]: {"pos": obj["pos"] + "!", "width": obj["width"], "height": obj["height"]}
            for obj in objects
            if "pos" in obj and "nodes" not in obj  # clusters have "nodes"; frames draw none
        }
        edges: dict[tuple[str, str], list[str]] = {}
        for edge in data.get("edges", []):
            edges.setdefault((names[edge["tail"]], names[edge["head"]]), []).append(edge["pos"])
        _, _, width, height = (float(v) for v in data["bb"].split(","))
        return cls(nodes, edges, width, height)


@dataclass
class _FrameStyle:
    """How one frame draws a tensor, an op and an edge."""

    fill: str
    border: str
    ink: str


def _frame_captions(root: Tensor, steps: list[engine.Step], labels: dict[Tensor, str]) -> list[list[str]]:
    """The text above each frame: what this step does, its rule, and the shapes of what flows."""
    captions = []
    top = labels[root]
    for k, step in enumerate(steps):
        node, name = step.node, labels[step.node]
        head = (
            f"Step {k + 1} of {len(steps)}: ∂{top}/∂{name} has arrived, shape {shape_text(step.grad.shape)}."
        )
        if node.grad_fn is None:
            lines = [head, f"{name} is a leaf: its gradient is complete and is added into {name}.grad."]
        else:
            args = ", ".join(labels[p] for p in node.parents)
            sent = ", ".join(
                f"∂{top}/∂{labels[p]} {shape_text(g.shape)}"
                + (
                    " (summed over the broadcast axes)"
                    if g.shape != node.shape and node.op in BROADCASTING_OPS
                    else ""
                )
                for p, g in zip(node.parents, step.parent_grads)
                if g is not None
            )
            lines = [
                head,
                f"{name} = {node.op}({args});  local rule: {node.grad_fn.rule}",
                f"chain rule sends back: {sent}",
            ]
        captions.append(lines)
    return captions


@dataclass
class _Frame:
    """The graph at one moment of the backward walk: which steps are done, current, or waiting.

    Node names as in :func:`to_dot`: ``t<k>`` for a tensor, ``op<k>`` for the op that made it.
    """

    root: Tensor
    order: list[Tensor]
    steps: list[engine.Step]
    current: int | None  # the step being drawn; None: every gradient shown (the layout pass)
    compact: bool = False  # an unnamed intermediate drawn inside the op that made it, as in to_dot
    collapsed: _Cluster | None = None  # a cluster drawn as one box, lit while any of its steps runs
    names: dict[Tensor, str] = field(init=False)
    labels: dict[Tensor, str] = field(init=False)
    step_of: dict[Tensor, int] = field(init=False)  # tensor → the step that processed it
    sent: dict[tuple[str, str], int] = field(init=False)  # edge → the step that sent a gradient along it

    def __post_init__(self) -> None:
        self.names = {t: f"t{k}" for k, t in enumerate(self.order)}
        self.labels = tensor_labels(self.root)
        self.step_of = {s.node: k for k, s in enumerate(self.steps)}
        self.members = set(self.collapsed.members) if self.collapsed else set()
        self.sent = {}
        for k, s in enumerate(self.steps):
            if s.node.grad_fn is None:
                continue
            op = self.op_node(s.node)
            self.sent[(op, self.node_of(s.node))] = k
            for p, g in zip(s.node.parents, s.parent_grads):
                if g is not None:
                    self.sent[(self.node_of(p), op)] = k

    def hidden(self, t: Tensor) -> bool:
        """Inside the collapsed box: everything but the box's output."""
        return t in self.members and self.collapsed is not None and t is not self.collapsed.output

    def folded(self, t: Tensor) -> bool:
        """Compact: an unnamed intermediate is drawn inside its op (a collapsed box hides its own)."""
        return (
            self.compact and not t.name and bool(t.parents) and t is not self.root and t not in self.members
        )

    def op_node(self, t: Tensor) -> str:
        return "fn0" if t in self.members else f"op{self.names[t][1:]}"

    def node_of(self, t: Tensor) -> str:
        """The node an arrow to or from ``t`` ends at."""
        if self.hidden(t):
            return "fn0"
        return self.op_node(t) if self.folded(t) else self.names[t]

    def edges_of(self, t: Tensor) -> list[tuple[str, str]]:
        """The arrows into the op that made ``t`` and out of it, none inside the collapsed box."""
        op = self.op_node(t)
        edges = [*((self.node_of(p), op) for p in t.parents), (op, self.node_of(t))]
        return [(a, b) for a, b in edges if a != b]

    def state(self, k: int | None) -> str:
        """``done``, ``current`` or ``waiting``, for the thing step ``k`` processes."""
        done = len(self.steps) if self.current is None else self.current  # steps before it are finished
        if k is None or k > done:
            return "waiting"
        return "current" if k == done and self.current is not None else "done"

    def look(self, k: int | None, fill: str) -> _FrameStyle:
        return {
            "waiting": _FrameStyle("#f7f7f7", FAINT, FAINT),
            "current": _FrameStyle(CURRENT_FILL, CURRENT, INK),
            "done": _FrameStyle(fill, INK, INK),
        }[self.state(k)]

    def sections(self, t: Tensor, look: _FrameStyle) -> list[Section]:
        """The gradient ``t`` has received so far."""
        at = self.step_of.get(t)
        sections = []
        if t.requires_grad:
            grad = self.steps[at].grad if at is not None else None
            lines = summarize(grad) if grad is not None else ["unreachable"]
            # A gradient not computed yet is written in the fill colour: the record
            # keeps its size from frame to frame, and the number is not given away.
            shown = self.state(at) != "waiting" or self.current is None
            top = self.labels[self.root]
            sections.append(Section(f"∂{top}/∂{self.labels[t]}", lines, INK if shown else look.fill))
        return sections

    def add_tensor(self, dot: graphviz.Digraph, t: Tensor, pinned: dict[str, str]) -> None:
        """A tensor's record, with the gradient it has received so far."""
        if self.hidden(t) or self.folded(t):
            return
        kind = kind_of(t, self.root)
        look = self.look(self.step_of.get(t), FILL[kind])
        sections = self.sections(t, look)
        label = _record(
            self.labels[t],
            kind,
            f"{shape_text(t.shape)}  {t.dtype}",
            sections,
            fill=look.fill,
            border=look.border,
            ink=look.ink,
            border_width=2,
            small=FRAME_TEXT_PT,
        )
        dot.node(self.names[t], label, **pinned)

    def add_op(self, dot: graphviz.Digraph, t: Tensor, pinned: dict[str, str]) -> None:
        """The op that made ``t``, lit when its step comes: an oval, or (compact) a box holding ``t``."""
        if t in self.members:
            return  # drawn once, by add_collapsed
        look = self.look(self.step_of.get(t), OP_FILL)
        if self.folded(t):
            dot.node(
                self.op_node(t),
                _op_label(
                    t.op,
                    op_text(t),
                    None,
                    look.ink,
                    output=f"{self.labels[t]} · {shape_text(t.shape)}",
                    sections=self.sections(t, look),
                    small=FRAME_TEXT_PT,
                ),
                shape="box",
                style="rounded,filled",
                fillcolor=look.fill,
                color=look.border,
                penwidth="2",
                margin="0.12,0.05",
                **pinned,
            )
            return
        dot.node(
            self.op_node(t),
            _op_label(t.op, op_text(t), None, look.ink, small=FRAME_TEXT_PT),
            shape="ellipse",
            style="filled",
            fillcolor=look.fill,
            color=look.border,
            penwidth="2",
            margin="0.05,0.03",
            **pinned,
        )

    def add_collapsed(self, dot: graphviz.Digraph, pinned: dict[str, str]) -> None:
        """The collapsed cluster as one box: orange while any of its steps runs, done after the last."""
        assert self.collapsed is not None
        ops = [t for t in self.collapsed.members if t.grad_fn is not None]
        ks = sorted(self.step_of[t] for t in ops if t in self.step_of)
        k = self.current if self.current in ks else (ks[0] if ks else None)
        look = self.look(k, OP_FILL)
        label = _op_label(
            self.collapsed.name,
            f"{len(ops)} ops: " + ", ".join(t.op for t in ops),
            None,
            look.ink,
            small=FRAME_TEXT_PT,
        )
        dot.node(
            "fn0",
            label,
            shape="box",
            style="rounded,filled",
            fillcolor=look.fill,
            color=look.border,
            penwidth="2",
            margin="0.15,0.08",
            **pinned,
        )

    def add_edges(self, dot: graphviz.Digraph, layout: _Layout | None) -> None:
        """Every arrow, bold once a gradient has travelled it back, at its place in ``layout``."""
        splines = {edge: list(positions) for edge, positions in layout.edges.items()} if layout else {}
        drawn: set[tuple[str, str]] = set()
        for t in self.order:
            if t.grad_fn is None:
                continue
            for edge in self.edges_of(t):
                if edge[0] == "fn0" or edge[1] == "fn0":  # one arrow per pair at the collapsed box
                    if edge in drawn:
                        continue
                    drawn.add(edge)
                if layout is not None and not splines.get(edge):
                    continue  # on another part of a graph cut into parts
                when = self.state(self.sent.get(edge))
                pen = {"waiting": (FAINT, "1.2"), "current": (CURRENT, "3.5"), "done": (INK, "2.5")}[when]
                extra = {"pos": splines[edge].pop(0)} if edge in splines else {}
                # The gradient flows against the arrow; `dir=back` would move the arrowheads and the layout.
                dot.edge(*edge, color=pen[0], penwidth=pen[1], **extra)


def _frame_dot(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    current: int | None,
    rankdir: str,
    layout: _Layout | None = None,
    caption: list[str] | None = None,
    *,
    compact: bool = False,
    collapsed: _Cluster | None = None,
) -> graphviz.Digraph:
    """The graph as it stands at step ``current`` of the backward walk.

    With ``current=None`` every gradient is shown: that version only sets the
    layout, which is then pinned for every frame. With a layout, what has no
    place in it is not drawn: a graph cut into parts has one layout per part.
    """
    frame = _Frame(root, order, steps, current, compact, collapsed)
    dot = _new_digraph(rankdir)
    if layout is not None:
        dot.attr(bb=f"0,0,{layout.width:.2f},{layout.height:.2f}", splines="true")

    def placed(name: str) -> bool:
        return layout is None or name in layout.nodes

    def pinned(name: str) -> dict[str, str]:
        return layout.nodes[name] if layout is not None else {}

    if collapsed is not None and placed("fn0"):
        frame.add_collapsed(dot, pinned("fn0"))
    for t in order:
        if placed(frame.names[t]):  # folded, hidden, or on another part: not here
            frame.add_tensor(dot, t, pinned(frame.names[t]))
        if t.grad_fn is not None and placed(frame.op_node(t)):
            frame.add_op(dot, t, pinned(frame.op_node(t)))
    frame.add_edges(dot, layout)
    if caption is not None and layout is not None:
        body = "<BR/>".join(html.escape(line) for line in caption)
        dot.node(
            "caption",
            f'<<FONT POINT-SIZE="15">{body}</FONT>>',
            shape="plaintext",
            fixedsize="true",
            **layout.nodes["caption"],
        )
    return dot


READING_MS = (1500, 200)  # a frame of the GIF: 1.5 s to find the orange node, then 0.2 s a word


def caption_delays(captions: Sequence[Sequence[str]]) -> list[int]:
    """How long the GIF holds each frame, in ms: 1.5 s + 0.2 s per word of its caption.

    0.2 s a word is 300 words a minute, a quick reader: a three-line caption
    (about 30 words) stays up 7.5 s, long enough to read it once while the
    picture is explained; a leaf's two lines go by in about 4 s.
    """
    base, per_word = READING_MS
    return [base + per_word * sum(len(line.split()) for line in caption) for caption in captions]


def backward_frames(
    root: Tensor,
    out_dir: str | Path,
    *,
    gif: bool = False,
    delay_ms: int | None = None,
    dpi: int | None = None,
    rankdir: str = "LR",
    slide: str | None = "16:9",
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
    compact: bool = False,
    collapse: bool = False,
) -> list[Path]:
    """One PNG per step of the backward walk: ``frame_001.png``, ``frame_002.png``, ...

    Each frame highlights the node being processed with the gradient that just
    reached it, draws in bold the edges the gradient has already travelled, and
    greys out the rest. ``dot`` lays the graph out once; every frame is drawn at
    those positions (``neato -n2``), so the frames play as an animation. With
    ``gif=True``, Pillow also writes ``frames.gif``: each frame held long enough
    to read its caption (:func:`caption_delays`), or ``delay_ms`` each, the last
    three times as long. The walk is ``engine.walk``: no ``.grad`` changes.

    By default the frames fit a 16:9 slide as :func:`render`'s graphs do: the
    chain wrapped onto rows, and drawn compact (each unnamed intermediate inside
    its op) or with the one cluster in ``clusters`` collapsed into a box, the
    first of these that keeps the smallest text at least ``slides.MIN_TEXT_PX``
    on the slide (:func:`frames_plan`). ``slide=None`` draws exactly as asked.

    The set is built in a private temporary folder inside ``out_dir`` and then
    moved into place file by file (each move atomic), and older ``frame_*.png``
    beyond the new count are removed: an interrupted run leaves whole files, and
    two runs into the same folder both succeed.
    """
    steps = loss_steps(root, "backward_frames")
    if delay_ms is not None and delay_ms <= 0:
        raise ValueError(f"backward_frames: delay_ms must be positive, got {delay_ms}")
    if gif and not extras.have("Pillow"):
        raise ImportError("backward_frames: " + extras.skipped("the animated GIF (gif=True)", "Pillow"))
    if not extras.have("dot"):
        raise GraphvizNotFoundError(extras.skipped("the backward frames", "dot"), None)
    out_dir = Path(out_dir)
    plan = frames_plan(
        root, rankdir=rankdir, slide=slide, dpi=dpi, clusters=clusters, compact=compact, collapse=collapse
    )
    order, captions = plan.order, plan.captions

    names = [f"frame_{k + 1:03d}.png" for k in range(len(captions))]
    with outputs.private_folder(out_dir) as private:
        made = []
        for name, (k, caption) in zip(names, enumerate(captions)):
            frame = _frame_dot(
                root,
                order,
                steps,
                k,
                rankdir,
                plan.layouts[plan.part_of[k]],
                caption,
                compact=plan.compact,
                collapsed=plan.collapsed,
            )
            frame.attr(**plan.canvases[plan.part_of[k]])
            made.append(private / name)
            made[-1].write_bytes(frame.pipe(format="png", engine="neato", neato_no_op=2))  # private folder
        _same_size(made)
        if gif:
            delays = [delay_ms] * len(made) if delay_ms else caption_delays(captions)
            _write_gif(made, private / "frames.gif", delays)
        # The finished set goes into place one atomic rename at a time; the GIF last.
        for path in made:
            os.replace(path, out_dir / path.name)
        if gif:
            os.replace(private / "frames.gif", out_dir / "frames.gif")
    for old in out_dir.glob("frame_*.png"):
        if old.name not in names:  # left by an earlier run with more steps
            old.unlink(missing_ok=True)
    return [out_dir / name for name in names]


@dataclass
class FramesPlan:
    """How :func:`backward_frames` draws: the drawing chosen, the pinned layouts, captions and canvas.

    A graph too big for one slide is cut into parts (``slides.split``): each
    part has its own layout, and each frame shows the part that holds the node
    of its step. Every frame has the same canvas.
    """

    order: list[Tensor]
    compact: bool
    collapsed: _Cluster | None
    layouts: list[_Layout]  # one per part of the graph (one part unless it had to be cut)
    part_of: list[int]  # the part each frame shows
    captions: list[list[str]]
    canvases: list[dict[str, str]]  # each part's pad and dpi attributes
    size_pt: tuple[float, float]  # the canvas, in points
    font_pt: float  # the smallest text drawn

    @property
    def layout(self) -> _Layout:
        """The first part's layout (the only one when the graph is not cut)."""
        return self.layouts[0]

    @property
    def canvas(self) -> dict[str, str]:
        return self.canvases[0]

    @property
    def text_px(self) -> float:
        """How tall the smallest text is when a frame fills the 1920×1080 slide."""
        width, height = self.size_pt
        return self.font_pt * min(slides.SLIDE[0] / width, slides.SLIDE[1] / height)


CAPTION_PT = 15  # the caption above a frame
# The smallest text on a frame, in points (10 on a graph): a frame's records carry their gradients,
# and at 10 points the frame would need a canvas too short for them to meet the slide rule.
FRAME_TEXT_PT = 12


def frames_plan(
    root: Tensor,
    *,
    rankdir: str = "LR",
    slide: str | None = "16:9",
    dpi: int | None = None,
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
    compact: bool = False,
    collapse: bool = False,
) -> FramesPlan:
    """The mildest drawing of the frames that meets the slide rule, laid out once.

    Tried in order, as for :func:`render`: as asked, then compact, then (given a
    cluster) collapsed, then both; each wrapped onto rows by ``slides.fit``'s
    rule. Then the last of these cut into 2, 3, ... ``MAX_SLIDES`` parts, each
    frame showing the part where its step is (the two-layer net's walk: the
    loss and the second layer, then the first layer from ``H1`` back). The
    first whose smallest text is at least ``slides.MIN_TEXT_PX`` when a frame
    fills the slide is kept, else the last. With ``slide=None``, as asked.
    """
    steps = loss_steps(root, "backward_frames")
    if slide is not None and slide not in slides.RATIOS:
        raise ValueError(
            f"backward_frames: slide must be one of {', '.join(slides.RATIOS)} or None, got {slide!r}"
        )
    order = graph_order(root)
    found = _find_clusters(order, clusters)
    if len(found) > 1:
        raise ValueError(f"backward_frames: at most one cluster can be collapsed, got {len(found)}")
    cluster = found[0] if found else None
    if collapse and cluster is None:
        raise ValueError("backward_frames: collapse=True needs a cluster: clusters={name: (output, inputs)}")
    tries = [(compact, collapse)]
    if slide is not None:
        tries += [(True, collapse), *([(compact, True), (True, True)] if cluster else [])]
    tries = list(dict.fromkeys(tries))
    cuts = [(*tries[-1], parts) for parts in range(2, MAX_SLIDES + 1)] if slide is not None else []
    plan = None
    for fold, shut, parts in [*((fold, shut, 1) for fold, shut in tries), *cuts]:
        collapsed = cluster if shut else None
        plan = _plan_frames(root, order, steps, rankdir, slide, dpi, fold, collapsed, parts)
        if plan.text_px >= slides.MIN_TEXT_PX:
            break
    assert plan is not None
    return plan


def _plan_frames(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    slide: str | None,
    dpi: int | None,
    compact: bool,
    collapsed: _Cluster | None,
    parts: int,
) -> FramesPlan:
    """The frames drawn one way, cut into ``parts`` parts, each part laid out on its best rows."""
    full = _frame_dot(root, order, steps, None, rankdir, compact=compact, collapsed=collapsed)
    font = min(slides.min_font_pt(full.source), CAPTION_PT)
    pieces = slides.split_nodes(full.source, parts)
    where = _Frame(root, order, steps, None, compact, collapsed)
    part_of = [
        next(p for p, (own, _) in enumerate(pieces) if where.node_of(step.node) in own) for step in steps
    ]
    captions = _frame_captions(root, steps, tensor_labels(root))
    if len(pieces) > 1:  # the picture changes with the part: say which part of the graph this is
        for k, caption in enumerate(captions):
            caption[0] = caption[0].replace(
                ":", f" (part {part_of[k] + 1} of {len(pieces)} of the graph):", 1
            )
    layouts: list[_Layout] = []
    sizes: list[tuple[float, float]] = []
    for p, source in enumerate(slides.split(full.source, parts)):
        ks = [k for k in range(len(steps)) if part_of[k] == p]
        best: tuple[tuple[bool, float], _Layout, list[list[str]], tuple[float, float]] | None = None
        # The layout every frame of the part is pinned to: wrapped onto rows like `graph` for a slide,
        # unless wide; the number of rows chosen with the caption strip counted, as the frame shows it.
        for rows in range(1, slides.MAX_ROWS + 1) if slide is not None else [1]:
            wrapped, in_order = slides.wrapped_rows(source, rows)
            layout = _Layout.from_json(graphviz.Source(wrapped).pipe(format="json"))
            tall = layout.width / layout.height < slides.RATIOS.get(slide or "", 0)
            part_captions = [list(captions[k]) for k in ks]
            _place_caption(layout, part_captions)
            size = _frame_points(layout, slide)
            score = (in_order, min(slides.SLIDE[0] / size[0], slides.SLIDE[1] / size[1]))
            if best is None or score > best[0]:
                best = (score, layout, part_captions, size)
            if tall:  # already taller than the slide: more rows only shrink the text
                break
        assert best is not None
        _, layout, part_captions, size = best
        for k, caption in zip(ks, part_captions):
            captions[k] = caption
        if slide is not None:
            size = _drawn_size(root, order, steps, rankdir, layout, part_captions, compact, collapsed, slide)
        layouts.append(layout)
        sizes.append(size)
    size = (max(w for w, _ in sizes), max(h for _, h in sizes))  # each at the slide's ratio, so this is too
    canvases = [_frame_canvas(layout, size, slide, dpi) for layout in layouts]
    return FramesPlan(order, compact, collapsed, layouts, part_of, captions, canvases, size, font)


def _drawn_size(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    layout: _Layout,
    captions: list[list[str]],
    compact: bool,
    collapsed: _Cluster | None,
    slide: str,
) -> tuple[float, float]:
    """The canvas of a frame as ``neato`` draws it at ``layout``, padded to the slide's shape.

    An arrow drawn at its place can reach past the layout's box (a long arrow back to an
    earlier row); the box is grown to what is drawn, so that the padding gives the canvas.
    """
    frame = _frame_dot(
        root,
        order,
        steps,
        None,
        rankdir,
        layout,
        captions[0] if captions else None,
        compact=compact,
        collapsed=collapsed,
    )
    drawn = json.loads(frame.pipe(format="json", engine="neato", neato_no_op=2))
    _, _, width, height = (float(v) for v in drawn["bb"].split(","))
    layout.width, layout.height = max(layout.width, width), max(layout.height, height)
    return _frame_points(layout, slide)


def _frame_points(layout: _Layout, slide: str | None) -> tuple[float, float]:
    """The frame's canvas in points: the drawing with a margin, padded to the slide's shape."""
    width, height = layout.width + 12, layout.height + 12
    if slide is None:
        return width, height
    ratio = slides.RATIOS[slide]
    if width / height > ratio:
        height = width / ratio
    else:
        width = height * ratio
    return width, height


def _frame_canvas(
    layout: _Layout, size: tuple[float, float], slide: str | None, dpi: int | None
) -> dict[str, str]:
    """Resolution and padding of a frame: 1920 px wide and padded to the slide's shape, or as given."""
    if slide is None:
        return {"dpi": str(dpi or 96)}
    width, height = size
    pad = f"{(width - layout.width) / 2 / 72:.4f},{(height - layout.height) / 2 / 72:.4f}"
    return {"pad": pad, "dpi": f"{dpi if dpi is not None else slides.SLIDE[0] / (width / 72):.3f}"}


def _place_caption(layout: _Layout, captions: list[list[str]]) -> None:
    """Wrap every caption to the graph's width and reserve a strip above the graph for it."""
    chars = max(40, int(layout.width / 8.2))  # about 8 points per character at 15 points
    for k, caption in enumerate(captions):
        captions[k] = [line for text in caption for line in textwrap.wrap(text, chars)]
    lines = max(len(c) for c in captions)
    height = 20.0 * lines + 12
    y = layout.height + 8 + height / 2
    layout.nodes["caption"] = {
        "pos": f"{layout.width / 2:.2f},{y:.2f}!",
        "width": f"{layout.width / 72:.4f}",
        "height": f"{height / 72:.4f}",
    }
    layout.height += 8 + height


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, read from its header (bytes 16–24), without Pillow."""
    header = path.read_bytes()[:24]
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _same_size(paths: list[Path]) -> None:
    """Pad every frame onto a white canvas of the largest frame's size.

    The pinned layout already makes them agree; this guarantees it for the
    animation, and needs Pillow only in the case it has work to do.
    """
    sizes = [png_size(path) for path in paths]
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    if all(size == (width, height) for size in sizes):
        return
    from PIL import Image

    for path, size in zip(paths, sizes):
        if size != (width, height):
            with Image.open(path) as image:
                canvas = Image.new("RGB", (width, height), "white")
                canvas.paste(image.convert("RGB"), (0, 0))
            canvas.save(path)  # in backward_frames' private folder


def _write_gif(paths: list[Path], gif_path: Path, delays: list[int]) -> None:
    """An animated GIF of the frames, looping, the last frame held three times as long."""
    from PIL import Image

    frames = [Image.open(path).convert("RGB") for path in paths]
    durations = [*delays[:-1], 3 * delays[-1]]
    frames[0].save(  # in backward_frames' private folder
        gif_path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True
    )
    for frame in frames:
        frame.close()


def __getattr__(name: str) -> Any:
    # The explorer page draws with this module's records, so it is imported on first use.
    if name in ("to_html", "explore"):
        from . import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
