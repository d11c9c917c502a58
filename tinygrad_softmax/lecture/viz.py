"""Pictures of the recorded graph: tensors as records, ops as ovals, the loss at the end.

A viewer only reads the graph (``parents``, ``op``, ``grad_fn.params()``, names,
data, grads) and never changes it. Node ids come from a counter in walk order,
so the same graph gives byte-identical DOT text on every run.

    to_dot(loss)                    a graphviz.Digraph (a notebook shows it inline)
    render(loss, "graph.png")       PNG, SVG or PDF by the file's extension
    backward_frames(loss, "out")    one picture per step of the backward walk
"""

from __future__ import annotations

import html
import json
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from .. import engine
from ..tensor import Tensor

__all__ = [
    "GraphvizNotFoundError",
    "graph_order",
    "tensor_labels",
    "summarize",
    "to_dot",
    "render",
    "backward_frames",
]

FORMATS = ("png", "svg", "pdf")
SMALL = 20  # arrays with at most this many entries are printed in full

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

INSTALL_HELP = (
    "Install Graphviz, which provides `dot`:\n"
    "  Debian/Ubuntu: sudo apt-get install graphviz\n"
    "  macOS:         brew install graphviz\n"
    "  Windows:       winget install graphviz   (or: choco install graphviz)\n"
    "  conda:         conda install -c conda-forge graphviz"
)


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not on PATH. ``dot_path`` is where the DOT text was saved."""

    def __init__(self, message: str, dot_path: Path) -> None:
        super().__init__(message)
        self.dot_path = dot_path


# ---------------------------------------------------------------- reading the graph


def graph_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on, inputs first, constants included.

    An iterative depth-first walk over the ordered ``parents`` tuples, so the
    order (and every ``t<k>`` name) is the same on every run. Unlike the engine's
    order it keeps the tensors that need no gradient (``X``, the detached max):
    the picture shows the whole forward graph.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in reversed(node.parents):
            if id(parent) not in visited:
                stack.append((parent, False))
    return order


def tensor_labels(root: Tensor) -> dict[int, str]:
    """``id(tensor)`` → its name, or ``t<k>`` (k its position in :func:`graph_order`)."""
    return {id(t): t.name or f"t{k}" for k, t in enumerate(graph_order(root))}


def shape_text(shape: tuple[int, ...]) -> str:
    """``3×5`` for a matrix, ``(3,)`` for a vector, ``scalar`` for a 0-d array."""
    if not shape:
        return "scalar"
    return f"({shape[0]},)" if len(shape) == 1 else "×".join(str(n) for n in shape)


def summarize(array: np.ndarray) -> list[str]:
    """Lines showing an array: in full when small, else its min, max and mean."""
    array = np.asarray(array)
    if array.size == 1:
        return [f"{array.item():.4g}"]
    if array.size <= SMALL:
        text = np.array2string(array, precision=3, floatmode="fixed", suppress_small=True, max_line_width=200)
        return text.splitlines()
    return [f"min {array.min():.3g}  max {array.max():.3g}", f"mean {array.mean():.3g}"]


def _kind(t: Tensor, root: Tensor) -> str:
    """What a tensor is to the reader: the root (the loss), a parameter, an input, a constant, or ''."""
    if t is root:
        return "root"
    if t.parents:
        return ""
    if t.requires_grad:
        return "parameter"
    return "input" if t.name else "constant"


def _op_text(t: Tensor) -> str:
    """The op's settings, short: ``axis=0, keepdims``, ``all axes``, ``axis=0, index 1×5``."""
    assert t.grad_fn is not None
    parts = []
    for key, value in t.grad_fn.params().items():
        if key == "index":
            parts.append(f"index {shape_text(value)}")
        elif key == "axis" and value is None:
            parts.append("all axes")
        elif key == "keepdims":
            parts.append("keepdims" if value else "")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(part for part in parts if part)


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
) -> str:
    """A tensor as a record: ``name  kind | shape dtype | values | grad``."""
    kind_html = f'  <FONT POINT-SIZE="10" COLOR="{ink}"><I>{html.escape(kind)}</I></FONT>' if kind else ""
    name_html = f'<FONT POINT-SIZE="15" COLOR="{ink}"><B>{html.escape(title)}</B></FONT>'
    rows = [
        f"<TR><TD>{name_html}{kind_html}</TD></TR>",
        f'<TR><TD><FONT POINT-SIZE="11" COLOR="{ink}">{html.escape(subtitle)}</FONT></TD></TR>',
    ]
    for section in sections:
        body = "<BR/>".join(html.escape(line) for line in [section.heading, *section.lines])
        rows.append("<HR/>")
        rows.append(
            f'<TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="10" '
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
) -> str:
    """An op node's label: the op's name in bold, its settings, optionally its local rule.

    A compact drawing folds the op's output into it: ``output`` (``t7 · 3×5``)
    goes under the settings, and the output's values and gradient at the bottom.
    """
    rows = [f'<FONT POINT-SIZE="14" COLOR="{ink}"><B>{html.escape(name)}</B></FONT>']
    if detail:
        rows.append(f'<FONT POINT-SIZE="10" COLOR="{ink}">{html.escape(detail)}</FONT>')
    if output:
        rows.append(f'<FONT POINT-SIZE="11" COLOR="{ink}">{html.escape(output)}</FONT>')
    if rule:
        lines = "<BR/>".join(html.escape(line) for line in _rule_lines(rule))
        rows.append(f'<FONT POINT-SIZE="10" COLOR="{ink}"><I>{lines}</I></FONT>')
    # One table cell per part keeps an underscore in the name clear of the line below.
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    for section in sections:
        body = "<BR/>".join(html.escape(line) for line in [section.heading, *section.lines])
        cells += (
            f'<HR/><TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT FACE="{MONO}" POINT-SIZE="10" '
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


def _find_clusters(
    order: list[Tensor], clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None
) -> list[_Cluster]:
    """For each ``name: (output, inputs)``: the tensors on a path from the inputs to the output.

    The inputs are left out, the output is kept, and constants that feed only
    the cluster's own ops (the detached max) join it.
    """
    if not clusters:
        return []
    position = {id(t): k for k, t in enumerate(order)}
    consumers: dict[int, list[Tensor]] = {}
    for t in order:
        for p in t.parents:
            consumers.setdefault(id(p), []).append(t)
    found: list[_Cluster] = []
    taken: dict[int, str] = {}
    for name, (output, inputs) in clusters.items():
        if id(output) not in position:
            raise ValueError(f"to_dot: the output of cluster {name!r} is not in the drawn graph")
        input_ids = {id(t) for t in inputs}
        downstream = set(input_ids)
        for t in order:  # inputs come first, so one pass reaches every descendant
            if any(id(p) in downstream for p in t.parents):
                downstream.add(id(t))
        upstream = {id(output)}
        for t in reversed(order):
            if id(t) in upstream:
                upstream.update(id(p) for p in t.parents)
        member_ids = {k for k in downstream & upstream if k not in input_ids}
        if id(output) not in member_ids:
            raise ValueError(
                f"to_dot: cluster {name!r}: its output {output.name or 'tensor'} {shape_text(output.shape)} "
                "does not depend on any of its inputs"
            )
        for t in order:
            users = consumers.get(id(t), [])
            if not t.parents and id(t) not in input_ids and users and all(id(u) in member_ids for u in users):
                member_ids.add(id(t))
        for k in member_ids:
            if k in taken:
                raise ValueError(
                    f"to_dot: clusters {taken[k]!r} and {name!r} overlap; clusters must be disjoint"
                )
            taken[k] = name
        found.append(_Cluster(name, output, [t for t in order if id(t) in member_ids]))
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
) -> graphviz.Digraph:
    """The graph that made ``root``, as a ``graphviz.Digraph``.

    Tensors are records (name or ``t<k>``, shape, dtype; values and gradients on
    request), ops are ovals labelled with their settings, and arrows follow the
    forward pass. Parameters are green, inputs and constants grey, the loss red.

    ``show_rules`` writes each op's local derivative on it; ``highlight`` draws
    the given tensors in red; ``clusters={"cross_entropy": (loss, [Z])}`` boxes
    the nodes between ``Z`` (excluded) and ``loss`` (included), and with
    ``collapse=True`` each cluster becomes one node, its output still shown.

    ``compact=True`` draws every unnamed tensor made by an op (not the root)
    inside the op that made it: ``exp`` over ``t7 · 3×5``, with its values and
    gradient on request. Named tensors and leaves keep their records, and every
    ``t<k>`` is the same as in the full drawing. A chain of ops needs half as many
    ranks, so a left-to-right picture is much narrower.
    """
    order = graph_order(root)
    ids = {id(t): f"t{k}" for k, t in enumerate(order)}
    red = {id(t) for t in highlight}
    found = _find_clusters(order, clusters)
    home: dict[int, int] = {id(t): c for c, cl in enumerate(found) for t in cl.members}
    dot = _new_digraph(rankdir, title)
    subgraphs = [
        graphviz.Digraph(
            name=f"cluster_{c}",
            graph_attr={"label": cl.name, "style": "dashed,rounded", "color": "#777777", "fontsize": "14"},
        )
        for c, cl in enumerate(found)
    ]

    def hidden(t: Tensor) -> bool:
        """In a collapsed cluster, everything but the output is hidden."""
        return collapse and id(t) in home and t is not found[home[id(t)]].output

    def folded(t: Tensor) -> bool:
        """In a compact drawing, an unnamed intermediate is drawn inside the op that made it.

        A collapsed cluster already hides its insides, so compact leaves it alone.
        """
        if not compact or t.name or not t.parents or t is root:
            return False
        return not (collapse and id(t) in home)

    def op_node(t: Tensor) -> str:
        return f"fn{home[id(t)]}" if collapse and id(t) in home else f"op{ids[id(t)][1:]}"

    def tensor_node(t: Tensor) -> str:
        if folded(t):
            return op_node(t)
        return f"fn{home[id(t)]}" if hidden(t) else ids[id(t)]

    def sections_of(t: Tensor) -> list[Section]:
        sections = []
        if show_values:
            sections.append(Section("data", summarize(t.data)))
        if show_grads:
            if t.grad is not None:
                sections.append(Section("grad", summarize(t.grad)))
            else:
                sections.append(Section("grad", ["None" if t.requires_grad else "None (no grad needed)"]))
        return sections

    if collapse:
        for c, cl in enumerate(found):
            ops = [t.op for t in cl.members if t.parents]
            dot.node(
                f"fn{c}",
                _op_label(cl.name, f"{len(ops)} ops: " + ", ".join(ops), None),
                shape="box",
                style="rounded,filled",
                fillcolor=OP_FILL,
                margin="0.15,0.08",
            )
    edges: list[tuple[str, str]] = []
    for t in order:
        target = subgraphs[home[id(t)]] if id(t) in home and not collapse else dot
        is_red = id(t) in red
        if not hidden(t) and not folded(t):
            kind = _kind(t, root)
            target.node(
                ids[id(t)],
                _record(
                    t.name or ids[id(t)],
                    kind,
                    f"{shape_text(t.shape)}  {t.dtype}",
                    sections_of(t),
                    fill=FILL[kind],
                    border=RED if is_red else (INK if kind != "input" and kind != "constant" else "#888888"),
                    border_width=3 if is_red else (2 if kind == "root" else 1),
                    ink=RED if is_red else INK,
                ),
            )
        if not t.parents:
            continue
        assert t.grad_fn is not None
        if folded(t):
            # A rounded box, not an oval: it holds a tensor too, and a box is narrower.
            target.node(
                op_node(t),
                _op_label(
                    t.op,
                    _op_text(t),
                    t.grad_fn.rule if show_rules else None,
                    RED if is_red else INK,
                    output=f"{ids[id(t)]} · {shape_text(t.shape)}",
                    sections=sections_of(t),
                ),
                shape="box",
                style="rounded,filled",
                fillcolor=OP_FILL,
                color=RED if is_red else OP_LINE,
                penwidth="3" if is_red else "1",
                margin="0.12,0.05",
            )
        elif not (collapse and id(t) in home):
            target.node(
                op_node(t),
                _op_label(t.op, _op_text(t), t.grad_fn.rule if show_rules else None),
                shape="box" if show_rules else "ellipse",
                style="rounded,filled" if show_rules else "filled",
                fillcolor=OP_FILL,
                color=OP_LINE,
                margin="0.12,0.05" if show_rules else "0.05,0.03",
            )
        for edge in [*((tensor_node(p), op_node(t)) for p in t.parents), (op_node(t), tensor_node(t))]:
            merged = edge[0].startswith("fn") or edge[1].startswith("fn")
            if edge[0] != edge[1] and not (merged and edge in edges):  # x * x keeps both arrows
                edges.append(edge)
    for sub in subgraphs:
        if not collapse:
            dot.subgraph(sub)
    for tail, head in edges:
        dot.edge(tail, head)
    return dot


# ---------------------------------------------------------------- render


def _missing_dot(source: str, path: Path) -> GraphvizNotFoundError:
    """Save the DOT text next to ``path`` and build the error that says so."""
    dot_path = path.with_suffix(".dot")
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(source, encoding="utf-8")
    return GraphvizNotFoundError(
        f"render: Graphviz's `dot` program was not found on PATH, so {path.name} could not be drawn.\n"
        f"The DOT source was saved to {dot_path}; render it later with: dot -T{path.suffix[1:] or 'png'} "
        f"{dot_path} -o {path}\n{INSTALL_HELP}",
        dot_path,
    )


def render(root: Tensor, path: str | Path, *, dpi: int | None = None, **to_dot_options: Any) -> Path:
    """Draw ``root``'s graph into ``path``: PNG, SVG or PDF by its extension.

    ``dpi`` sets the resolution (for slides, 150–300). Other options go to
    :func:`to_dot`. Without Graphviz's ``dot`` program, the DOT text is saved
    next to ``path`` and :class:`GraphvizNotFoundError` says how to install it.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"render: cannot write {path.name!r}: the extension {path.suffix or '(none)'!r} is not "
            "one of .png, .svg, .pdf"
        )
    dot = to_dot(root, **to_dot_options)
    if dpi is not None:
        dot.attr(dpi=str(dpi))
    if shutil.which("dot") is None:
        raise _missing_dot(dot.source, path)
    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise _missing_dot(dot.source, path) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


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


def _frame_captions(root: Tensor, steps: list[engine.Step], labels: dict[int, str]) -> list[list[str]]:
    """The text above each frame: what this step does, its rule, and the shapes of what flows."""
    captions = []
    top = labels[id(root)]
    for k, step in enumerate(steps):
        node, name = step.node, labels[id(step.node)]
        head = (
            f"Step {k + 1} of {len(steps)}: ∂{top}/∂{name} has arrived, shape {shape_text(step.grad.shape)}."
        )
        if node.grad_fn is None:
            lines = [head, f"{name} is a leaf: its gradient is complete and is added into {name}.grad."]
        else:
            args = ", ".join(labels[id(p)] for p in node.parents)
            sent = ", ".join(
                f"∂{top}/∂{labels[id(p)]} {shape_text(g.shape)}"
                + (
                    " (summed over the broadcast axes)"
                    if g.shape != node.shape and node.op in _BROADCASTING
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


_BROADCASTING = ("add", "sub", "mul", "div")


def _frame_dot(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    current: int | None,
    rankdir: str,
    layout: _Layout | None = None,
    caption: list[str] | None = None,
) -> graphviz.Digraph:
    """The graph as it stands at step ``current`` of the backward walk.

    With ``current=None`` every gradient is shown: that version only sets the
    layout, which is then pinned for every frame.
    """
    ids = {id(t): f"t{k}" for k, t in enumerate(order)}
    labels = tensor_labels(root)
    top = labels[id(root)]
    step_of = {id(s.node): k for k, s in enumerate(steps)}
    done = len(steps) if current is None else current  # steps before `done` are finished
    sent: dict[tuple[str, str], int] = {}  # edge → the step that sent a gradient along it
    for k, s in enumerate(steps):
        if s.node.grad_fn is None:
            continue
        op = f"op{ids[id(s.node)][1:]}"
        sent[(op, ids[id(s.node)])] = k
        for p, g in zip(s.node.parents, s.parent_grads):
            if g is not None:
                sent[(ids[id(p)], op)] = k

    def state(k: int | None) -> str:
        if k is None or k > done:
            return "waiting"
        return "current" if k == done and current is not None else "done"

    def style(k: int | None, fill: str) -> _FrameStyle:
        return {
            "waiting": _FrameStyle("#f7f7f7", FAINT, FAINT),
            "current": _FrameStyle(CURRENT_FILL, CURRENT, INK),
            "done": _FrameStyle(fill, INK, INK),
        }[state(k)]

    dot = _new_digraph(rankdir)
    if layout is not None:
        bbox = f"0,0,{layout.width:.2f},{layout.height:.2f}"
        dot.attr(bb=bbox, splines="true")

    def pinned(name: str) -> dict[str, str]:
        return layout.nodes[name] if layout is not None else {}

    for t in order:
        at = step_of.get(id(t))
        kind = _kind(t, root)
        look = style(at, FILL[kind])
        sections = []
        if t.requires_grad:
            grad = steps[at].grad if at is not None else None
            lines = summarize(grad) if grad is not None else ["unreachable"]
            # A gradient not computed yet is written in the fill colour: the record
            # keeps its size from frame to frame, and the number is not given away.
            shown = state(at) != "waiting" or current is None
            sections.append(Section(f"∂{top}/∂{labels[id(t)]}", lines, INK if shown else look.fill))
        dot.node(
            ids[id(t)],
            _record(
                labels[id(t)],
                kind,
                f"{shape_text(t.shape)}  {t.dtype}",
                sections,
                fill=look.fill,
                border=look.border,
                ink=look.ink,
                border_width=2,
            ),
            **pinned(ids[id(t)]),
        )
        if t.grad_fn is None:
            continue
        op = f"op{ids[id(t)][1:]}"
        look = style(at, OP_FILL)
        dot.node(
            op,
            _op_label(t.op, _op_text(t), None, look.ink),
            shape="ellipse",
            style="filled",
            fillcolor=look.fill,
            color=look.border,
            penwidth="2",
            margin="0.05,0.03",
            **pinned(op),
        )
    splines = {edge: list(positions) for edge, positions in layout.edges.items()} if layout else {}
    for t in order:
        if t.grad_fn is None:
            continue
        op = f"op{ids[id(t)][1:]}"
        for edge in [*((ids[id(p)], op) for p in t.parents), (op, ids[id(t)])]:
            when = state(sent.get(edge))
            pen = {"waiting": (FAINT, "1.2"), "current": (CURRENT, "3.5"), "done": (INK, "2.5")}[when]
            extra = {"pos": splines[edge].pop(0)} if edge in splines else {}
            # The gradient flows against the arrow; `dir=back` would move the arrowheads and the layout.
            dot.edge(*edge, color=pen[0], penwidth=pen[1], **extra)
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


def _dot_programs_missing(source: str, path: Path) -> GraphvizNotFoundError | None:
    """The error to raise when ``dot`` or ``neato`` is not on PATH (the DOT text saved), else None."""
    if shutil.which("dot") is not None and shutil.which("neato") is not None:
        return None
    return _missing_dot(source, path)


def loss_steps(root: Tensor, who: str) -> list[engine.Step]:
    """The steps of ``engine.walk`` from a scalar loss (seed 1); ``who`` names the caller in errors."""
    if not root.requires_grad:
        raise ValueError(
            f"{who}: the root {shape_text(root.shape)} does not require grad, so no gradient flows"
        )
    if root.data.size != 1:
        raise ValueError(f"{who}: the root must be a scalar loss, got shape {root.shape}")
    return list(engine.walk(root, np.ones_like(root.data)))


def backward_frames(
    root: Tensor,
    out_dir: str | Path,
    *,
    gif: bool = False,
    delay_ms: int = 900,
    dpi: int = 96,
    rankdir: str = "LR",
) -> list[Path]:
    """One PNG per step of the backward walk: ``frame_001.png``, ``frame_002.png``, ...

    Each frame highlights the node being processed with the gradient that just
    reached it, draws in bold the edges the gradient has already travelled, and
    greys out the rest. ``dot`` lays the graph out once; every frame is drawn at
    those positions (``neato -n2``), so the frames play as an animation. With
    ``gif=True``, Pillow also writes ``frames.gif`` (``delay_ms`` per frame, the
    last held three times as long). The walk is ``engine.walk``: no ``.grad``
    changes. Earlier ``frame_*.png`` files in ``out_dir`` are replaced.
    """
    steps = loss_steps(root, "backward_frames")
    if delay_ms <= 0:
        raise ValueError(f"backward_frames: delay_ms must be positive, got {delay_ms}")
    if gif:
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise ImportError(
                "backward_frames: gif=True needs Pillow: pip install 'tinygrad_softmax[demo]' (or pillow)"
            ) from None
    order = graph_order(root)
    labels = tensor_labels(root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    full = _frame_dot(root, order, steps, None, rankdir)
    missing = _dot_programs_missing(full.source, out_dir / "graph.png")
    if missing is not None:
        raise missing
    layout = _Layout.from_json(full.pipe(format="json"))
    captions = _frame_captions(root, steps, labels)
    _place_caption(layout, captions)

    for old in sorted(out_dir.glob("frame_*.png")):
        old.unlink()
    paths = []
    for k, caption in enumerate(captions):
        frame = _frame_dot(root, order, steps, k, rankdir, layout, caption)
        frame.attr(dpi=str(dpi))
        path = out_dir / f"frame_{k + 1:03d}.png"
        path.write_bytes(frame.pipe(format="png", engine="neato", neato_no_op=2))
        paths.append(path)
    _same_size(paths)
    if gif:
        _write_gif(paths, out_dir / "frames.gif", delay_ms)
    return paths


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
            canvas.save(path)


def _write_gif(paths: list[Path], gif_path: Path, delay_ms: int) -> None:
    """An animated GIF of the frames, looping, the last frame held longer."""
    from PIL import Image

    frames = [Image.open(path).convert("RGB") for path in paths]
    durations = [delay_ms] * (len(frames) - 1) + [3 * delay_ms]
    frames[0].save(
        gif_path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True
    )
    for frame in frames:
        frame.close()
