"""The graph as DOT: :func:`to_dot`, with its clusters (cross_entropy in a dashed box) and compact folds.

Node names: ``t<k>`` for the k-th tensor of ``graph_order``, ``op<k>`` for the
op that made it, ``fn<c>`` for the c-th cluster drawn as one node. Every name
comes from the walk order, so the same graph gives the same DOT text on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import graphviz

from ....tensor import Tensor
from ..graph import graph_order, kind_of, op_text, own_name, shape_text, summarize
from .look import FILL, INK, OP_FILL, OP_LINE, RED, Section, new_digraph, op_label, record

__all__ = ["Cluster", "find_clusters", "to_dot", "Drawing"]


# ---------------------------------------------------------------- clusters


@dataclass
class Cluster:
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


def find_clusters(
    order: list[Tensor], clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None
) -> list[Cluster]:
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
    found: list[Cluster] = []
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
        found.append(Cluster(name, output, [t for t in order if t in members]))
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
    drawing = Drawing.of(
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
class Drawing:
    """One drawing of a graph: which node stands for which tensor, and how each is drawn.

    Node names: ``t<k>`` for the k-th tensor of :func:`graph_order`, ``op<k>``
    for the op that made it, ``fn<c>`` for the c-th cluster drawn as one node.
    """

    root: Tensor
    order: list[Tensor]
    clusters: list[Cluster]
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
    ) -> Drawing:
        """The drawing :func:`to_dot` makes with these options."""
        order = graph_order(root)
        return cls(
            root,
            order,
            find_clusters(order, clusters),
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
        if not self.compact or own_name(t) or not t.parents or t is self.root:
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
            record(
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
            # The op in red, solid, only when its rule is wrong; a tensor in red (its gradient wrong,
            # sent back by a later op) gets a dashed red border, so a rule that passed is not marked.
            red_op, red_tensor = t in self.red_ops, t in self.highlight
            # A rounded box, not an oval: it holds a tensor too, and a box is narrower.
            target.node(
                self.op_node(t),
                op_label(
                    t.op,
                    op_text(t),
                    rule,
                    RED if red_op else INK,
                    output=f"{t.name or self.names[t]} · {shape_text(t.shape)}",
                    output_ink=RED if red_op or red_tensor else None,
                    sections=self.sections(t),
                ),
                shape="box",
                style="rounded,filled" if red_op or not red_tensor else "rounded,filled,dashed",
                fillcolor=OP_FILL,
                color=RED if red_op or red_tensor else OP_LINE,
                penwidth="3" if red_op or red_tensor else "1",
                margin="0.12,0.05",
            )
        elif not self.in_collapsed(t):
            red = t in self.red_ops  # only then is the pen set, so other drawings keep their DOT text
            target.node(
                self.op_node(t),
                op_label(t.op, op_text(t), rule, RED if red else INK),
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
                op_label(cluster.name, f"{len(ops)} ops: " + ", ".join(ops), None),
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
        dot = new_digraph(rankdir, title)
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
