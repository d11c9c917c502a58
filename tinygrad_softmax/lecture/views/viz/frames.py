"""One frame of the backward walk: the graph as it stands at one step, pinned to a layout.

:func:`frame_dot` draws it: the node being processed orange with the gradient
that just reached it, what is done in black with its gradient, what waits in
grey. :mod:`.animation` lays the graph out once and draws every frame with it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import graphviz
import numpy as np

from .... import engine
from ....functional import STEP_NAMES
from ....tensor import Tensor
from ...numbers import number
from ..graph import (
    BROADCASTING_OPS,
    SMALL,
    graph_order,
    kind_of,
    op_text,
    own_name,
    shape_text,
    summarize,
    symbol,
    tensor_labels,
    wrt,
)
from .drawing import Cluster
from .look import CURRENT, CURRENT_FILL, FAINT, FILL, INK, OP_FILL, Section, new_digraph, op_label, record

__all__ = ["CAPTION_PT", "FRAME_TEXT_PT", "Layout", "View", "frame_captions", "Frame", "frame_dot"]

CAPTION_PT = 15  # the caption above a frame
# The smallest text on a frame, in points (10 on a graph): a frame's records carry their gradients,
# and at 10 points the frame would need a canvas too short for them to meet the slide rule.
FRAME_TEXT_PT = 12


@dataclass
class Layout:
    """Where ``dot`` put every node and edge once; every frame is drawn at these places."""

    nodes: dict[str, dict[str, str]]  # node name → pos (points), width and height (inches)
    edges: dict[tuple[str, str], list[str]]  # (tail, head) → spline of each such edge, in order
    width: float  # bounding box, points
    height: float

    @classmethod
    def from_json(cls, text: str | bytes) -> Layout:
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
            # An arrow wrapping to the next row ("" here) is routed by neato when drawn (slides.picture).
            spline = "" if edge.get("constraint") == "false" else edge["pos"]
            edges.setdefault((names[edge["tail"]], names[edge["head"]]), []).append(spline)
        _, _, width, height = (float(v) for v in data["bb"].split(","))
        return cls(nodes, edges, width, height)


def frame_numbers(array: np.ndarray) -> list[str]:
    """An array as a frame writes it: up to 20 entries in full, two decimals, no brackets (one line per row);
    a larger one as its min, max and mean. Narrow, so that the steps fit a slide with their numbers."""
    array = np.asarray(array)
    if array.size == 1 or array.size > SMALL:
        return summarize(array)
    rows = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array[None]
    cells = [[number(v, ".2f") for v in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


@dataclass(frozen=True)
class View:
    """One way a frame draws the graph: compact or not, which cluster is one box, values written or not."""

    compact: bool = False
    collapsed: Cluster | None = None
    values: bool = False


@dataclass
class _FrameStyle:
    """How one frame draws a tensor, an op and an edge."""

    fill: str
    border: str
    ink: str
    width: (
        int  # of the border: the node being processed has the thickest, so it stands out in black and white
    )


def frame_captions(root: Tensor, steps: list[engine.Step], labels: dict[Tensor, str]) -> list[list[str]]:
    """The text above each frame: what this step does, its rule, and the shapes of what flows."""
    captions = []
    top = labels[root]
    logits = _one_sample_logits(root)  # drawn with its blackboard of numbers, if one sample
    for k, step in enumerate(steps):
        node, name = step.node, labels[step.node]
        shape = shape_text(step.grad.shape)
        head = f"Step {k + 1} of {len(steps)}: ∂{top}/∂{wrt(name)} has arrived, shape {shape}."
        if node.grad_fn is None:
            lines = [head, f"{name} is a leaf: its gradient is complete and is added into {name}.grad."]
        else:
            args = ", ".join(symbol(labels[p]) for p in node.parents)
            sent = ", ".join(
                f"∂{top}/∂{wrt(labels[p])} {shape_text(g.shape)}"
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
        if logits is not None and node is logits:
            lines.append(_blackboard(logits, step.grad, top, name))
        captions.append(lines)
    return captions


def _one_sample_logits(root: Tensor) -> Tensor | None:
    """cross_entropy's logits (what its ``Z − max`` step shifts), if they hold one sample."""
    for t in graph_order(root):
        if t.name == STEP_NAMES[0] and t.op == "sub":
            logits = t.parents[0]
            return logits if logits.data.size == max(logits.shape, default=1) > 1 else None
    return None


def _blackboard(logits: Tensor, grad: np.ndarray, labels_top: str, logits_name: str) -> str:
    """With one sample the gradient at the logits is the blackboard's dz = p − y: the numbers."""
    z = logits.data.ravel()
    p = np.exp(z - z.max())
    p /= p.sum()
    dz = grad.ravel()
    y = np.rint(p - dz)  # one-hot: p − dz, up to rounding

    def row(a: np.ndarray, spec: str) -> str:
        return "[" + ",\u00a0".join(number(v, spec) for v in a) + "]"  # no-break spaces: kept on one line

    return (
        f"one sample (N = 1): ∂{labels_top}/∂{logits_name} = dz = p − y = {row(dz, '.3f')}, "
        f"with p = softmax(z) = {row(p, '.3f')} and y = {row(y, '.0f')}"
    )


@dataclass
class Frame:
    """The graph at one moment of the backward walk: which steps are done, current, or waiting.

    Node names as in :func:`to_dot`: ``t<k>`` for a tensor, ``op<k>`` for the op that made it.
    """

    root: Tensor
    order: list[Tensor]
    steps: list[engine.Step]
    current: int | None  # the step being drawn; None: every gradient shown (the layout pass)
    compact: bool = False  # an unnamed intermediate drawn inside the op that made it, as in to_dot
    collapsed: Cluster | None = None  # a cluster drawn as one box, lit while any of its steps runs
    values: bool = False  # each tensor's values written above its gradient
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
            self.compact
            and not own_name(t)
            and bool(t.parents)
            and t is not self.root
            and t not in self.members
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
            "waiting": _FrameStyle("#f7f7f7", FAINT, FAINT, 1),
            "current": _FrameStyle(CURRENT_FILL, CURRENT, INK, 5),
            "done": _FrameStyle(fill, INK, INK, 2),
        }[self.state(k)]

    def sections(self, t: Tensor, look: _FrameStyle) -> list[Section]:
        """``t``'s values (if asked), and the gradient it has received so far."""
        at = self.step_of.get(t)
        # The values right under the name and shape, without a heading; the gradient under its own.
        sections = [Section("", frame_numbers(t.data), look.ink)] if self.values else []
        if t.requires_grad:
            grad = self.steps[at].grad if at is not None else None
            lines = frame_numbers(grad) if grad is not None else ["unreachable"]
            # A gradient not computed yet is written in the fill colour: the record
            # keeps its size from frame to frame, and the number is not given away.
            shown = self.state(at) != "waiting" or self.current is None
            top = self.labels[self.root]
            sections.append(Section(f"∂{top}/∂{wrt(self.labels[t])}", lines, INK if shown else look.fill))
        return sections

    def add_tensor(self, dot: graphviz.Digraph, t: Tensor, pinned: dict[str, str]) -> None:
        """A tensor's record, with the gradient it has received so far."""
        if self.hidden(t) or self.folded(t):
            return
        kind = kind_of(t, self.root)
        look = self.look(self.step_of.get(t), FILL[kind])
        sections = self.sections(t, look)
        label = record(
            self.labels[t],
            kind,
            f"{shape_text(t.shape)}  {t.dtype}",
            sections,
            fill=look.fill,
            border=look.border,
            ink=look.ink,
            border_width=look.width,
            small=FRAME_TEXT_PT,
            padding=2,
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
                op_label(
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
                penwidth=str(look.width),
                margin="0.12,0.05",
                **pinned,
            )
            return
        dot.node(
            self.op_node(t),
            op_label(t.op, op_text(t), None, look.ink, small=FRAME_TEXT_PT),
            shape="ellipse",
            style="filled",
            fillcolor=look.fill,
            color=look.border,
            penwidth=str(look.width),
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
        label = op_label(
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
            penwidth=str(look.width),
            margin="0.15,0.08",
            **pinned,
        )

    def add_edges(self, dot: graphviz.Digraph, layout: Layout | None) -> None:
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
                if layout is not None and layout.edges and not splines.get(edge):
                    continue  # on another part of a graph cut into parts (a grid layout has no splines)
                when = self.state(self.sent.get(edge))
                # Told apart by line style too: dashed while waiting, thickest for the step being drawn.
                pen = {
                    "waiting": (FAINT, "1.2", "dashed"),
                    "current": (CURRENT, "4.5", "solid"),
                    "done": (INK, "2.5", "solid"),
                }[when]
                spline = splines[edge].pop(0) if edge in splines else ""
                extra = {"pos": spline} if spline else {}
                # The gradient flows against the arrow; `dir=back` would move the arrowheads and the layout.
                dot.edge(*edge, color=pen[0], penwidth=pen[1], style=pen[2], **extra)


def frame_dot(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    current: int | None,
    rankdir: str,
    layout: Layout | None = None,
    caption: list[str] | None = None,
    *,
    view: View | None = None,
) -> graphviz.Digraph:
    """The graph as it stands at step ``current`` of the backward walk, drawn as ``view`` says.

    With ``current=None`` every gradient is shown: that version only sets the
    layout, which is then pinned for every frame. With a layout, what has no
    place in it is not drawn: a graph cut into parts has one layout per part.
    """
    view = view or View()
    frame = Frame(root, order, steps, current, view.compact, view.collapsed, view.values)
    dot = new_digraph(rankdir)
    if layout is not None:
        dot.attr(bb=f"0,0,{layout.width:.2f},{layout.height:.2f}", splines="true")

    def placed(name: str) -> bool:
        return layout is None or name in layout.nodes

    def pinned(name: str) -> dict[str, str]:
        return layout.nodes[name] if layout is not None else {}

    if view.collapsed is not None and placed("fn0"):
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
