"""Backprop in the browser: one self-contained HTML page that steps through the backward walk.

    to_html(loss, "explorer.html")   write the page (opens from file://, no network)
    explore(loss)                    the same page inline in Jupyter (a sandboxed iframe)

The page holds everything it needs: the graph drawn by Graphviz (inline SVG,
four times: plain, with values, with gradients, with both, so the toggles never
squeeze a record), the numbers as inline JSON, and a little inline JavaScript
(``web/explorer.js``) and CSS (``web/explorer.css``). The steps are the steps of
``engine.walk``, the same ones ``explain`` prints and the frames draw; nothing is
written to any ``.grad``.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from ... import analytic, engine
from ...functional import check_labels
from ...tensor import Tensor
from .. import outputs
from ..training.classifier import Classifier
from .dot import pipe as run_dot
from .graph import (
    broadcast_note,
    graph_order,
    kind_of,
    loss_steps,
    op_text,
    own_name,
    shape_text,
    summarize,
    tensor_labels,
    wrt,
)
from .viz.drawing import find_clusters
from .viz.look import FILL as TENSOR_FILL
from .viz.look import OP_FILL, OP_LINE, Section, new_digraph, op_label, record
from .viz.rendering import missing_dot

__all__ = [
    "to_html",
    "explore",
    "page",
    "classifier_page",
    "Explorer",
    "SIZE_BUDGET",
    "FULL_LIMIT",
    "DRAWN_LIMIT",
]

# Limits, stated in the page whenever they apply.
FULL_LIMIT = 400  # an array with more entries is kept in the page as its min, max and mean only
DRAWN_LIMIT = 150  # with more tensors, values and gradients are left off the drawing (tooltips keep them)
MAX_TENSORS = 3000  # beyond this Graphviz takes minutes and the page is no longer readable
SIZE_BUDGET = 300_000  # bytes: the page of the linear softmax classifier stays below this (tested)

# Graphviz writes these text colours into the SVG; they only mark which lines are
# values and which are gradients, and are swapped for real colours and classes below.
_VALUES_MARK = "#010203"
_GRADS_MARK = "#010204"
_INK = "#1a1a1a"

Clusters = Mapping[str, tuple[Tensor, Sequence[Tensor]]]  # name: (output, inputs), as in viz.to_dot

VARIANTS = {"plain": (False, False), "values": (True, False), "grads": (False, True), "both": (True, True)}

# ---------------------------------------------------------------- numbers as JSON


def _number(x: float) -> float | str:
    """A float for JSON; NaN and infinities as the strings the page prints."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _array(a: np.ndarray) -> dict[str, Any]:
    """An array for the page: in full up to FULL_LIMIT entries, else its min, max and mean."""
    a = np.asarray(a)
    out: dict[str, Any] = {"shape": list(a.shape), "text": shape_text(a.shape)}
    if a.dtype.kind == "b":
        a = a.astype(np.int8)
    if a.size <= FULL_LIMIT:
        flat = [_number(float(x)) for x in a.astype(np.float64).ravel()]
        out["data"] = flat
    else:
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        out["summary"] = {
            "min": _number(float(finite.min())) if finite.size else "nan",
            "max": _number(float(finite.max())) if finite.size else "nan",
            "mean": _number(float(finite.mean())) if finite.size else "nan",
        }
    return out


# ---------------------------------------------------------------- the drawing


@dataclass
class _Graph:
    """What the drawing and the page share: the order, the names, the steps."""

    root: Tensor
    order: list[Tensor]
    ids: dict[Tensor, str]  # t<k>, as in the PNGs
    labels: dict[Tensor, str]  # its name or t<k>
    steps: list[engine.Step]
    step_of: dict[Tensor, int]  # its step in the walk
    compact: bool

    @property
    def top(self) -> str:
        return self.labels[self.root]

    def folded(self, t: Tensor) -> bool:
        """In a compact drawing an unnamed intermediate lives inside the op that made it."""
        return self.compact and not own_name(t) and bool(t.parents) and t is not self.root

    def op_node(self, t: Tensor) -> str:
        return f"op{self.ids[t][1:]}"

    def tensor_node(self, t: Tensor) -> str:
        return self.op_node(t) if self.folded(t) else self.ids[t]

    def edges(self, t: Tensor) -> list[tuple[str, str]]:
        """The arrows into and out of the op that made ``t`` (one per parent, so x·x has two)."""
        op = self.op_node(t)
        edges = [(self.tensor_node(p), op) for p in t.parents]
        if not self.folded(t):
            edges.append((op, self.ids[t]))
        return edges


def _dot(
    g: _Graph,
    values: bool,
    grads: bool,
    rankdir: str,
    clusters: Clusters | None,
) -> graphviz.Digraph:
    """The graph for one variant of the drawing: records, ops, and the walk's gradients on request."""
    dot = new_digraph(rankdir)
    found = find_clusters(g.order, clusters)
    home = {t: c for c, cl in enumerate(found) for t in cl.members}
    subgraphs = [
        graphviz.Digraph(
            name=f"cluster_{c}",
            graph_attr={"label": cl.name, "style": "dashed,rounded", "color": "#777777", "fontsize": "14"},
        )
        for c, cl in enumerate(found)
    ]

    def sections(t: Tensor) -> list[Section]:
        out = []
        if values:
            out.append(Section("data", summarize(t.data), _VALUES_MARK))
        if grads and t.requires_grad:
            k = g.step_of.get(t)
            lines = summarize(g.steps[k].grad) if k is not None else ["unreachable"]
            out.append(Section(f"∂{g.top}/∂{wrt(g.labels[t])}", lines, _GRADS_MARK))
        return out

    for t in g.order:
        target = subgraphs[home[t]] if t in home else dot
        name = g.ids[t]
        kind = kind_of(t, g.root)
        if not g.folded(t):
            target.node(
                name,
                record(
                    g.labels[t],
                    kind,
                    f"{shape_text(t.shape)}  {t.dtype}",
                    sections(t),
                    fill=TENSOR_FILL[kind],
                    border="#888888" if kind in ("input", "constant") else _INK,
                    border_width=2 if kind == "root" else 1,
                ),
            )
        if t.grad_fn is None:
            continue
        if g.folded(t):
            target.node(
                g.op_node(t),
                op_label(
                    t.op, op_text(t), None, output=f"{name} · {shape_text(t.shape)}", sections=sections(t)
                ),
                shape="box",
                style="rounded,filled",
                fillcolor=OP_FILL,
                color=OP_LINE,
                margin="0.12,0.05",
            )
        else:
            target.node(
                g.op_node(t),
                op_label(t.op, op_text(t), None),
                shape="ellipse",
                style="filled",
                fillcolor=OP_FILL,
                color=OP_LINE,
                margin="0.05,0.03",
            )
    for sub in subgraphs:
        dot.subgraph(sub)
    for t in g.order:
        if t.grad_fn is not None:
            for tail, head in g.edges(t):
                dot.edge(tail, head)
    return dot


_GROUP = re.compile(
    r'<g id="(?:node|edge|clust|graph)\d+" class="(node|edge|cluster|graph)">\s*<title>(.*?)</title>'
)
_TEXT_MARK = re.compile(rf'fill="({_VALUES_MARK}|{_GRADS_MARK})"')


def _clean_svg(svg: str, variant: str) -> str:
    """Graphviz's SVG made fit to inline in a page.

    The XML prolog, the DOCTYPE and the namespace attributes go (an HTML parser
    needs none of them, and they are the only web addresses Graphviz writes);
    each ``<title>`` becomes a ``data-name`` (a title would pop up as a second,
    browser-made tooltip); the marked text colours become classes the page's
    toggles and steps can show and hide.
    """
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->\n?", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", svg)
    svg = re.sub(
        r'<svg width="[^"]*" height="[^"]*"', f'<svg class="graph" data-variant="{variant}"', svg, count=1
    )

    def group(match: re.Match[str]) -> str:
        kind, title = match.group(1), html.unescape(match.group(2))
        if kind == "node":
            return f'<g class="node" data-name="{html.escape(title)}">'
        if kind == "edge":
            tail, head = title.split("->")
            return f'<g class="edge" data-tail="{html.escape(tail)}" data-head="{html.escape(head)}">'
        return f'<g class="{kind}">'

    svg = _GROUP.sub(group, svg)

    # Inside each node, the first gradient line is the heading (∂loss/∂W): it stays
    # visible, while the numbers under it wait for their step.
    def node_block(block: re.Match[str]) -> str:
        first = True

        def text(mark: re.Match[str]) -> str:
            nonlocal first
            if mark.group(1) == _VALUES_MARK:
                return f'fill="{_INK}" class="nv"'
            cls = "gh" if first else "ng"
            first = False
            return f'fill="{_INK}" class="{cls}"'

        return _TEXT_MARK.sub(text, block.group(0))

    svg = re.sub(r'<g class="node".*?</g>', node_block, svg, flags=re.S)
    svg = re.sub(r"\n+", "\n", svg)
    return svg.strip()


# ---------------------------------------------------------------- the page's data


def _step_data(g: _Graph, k: int) -> dict[str, Any]:
    """Everything the caption of step ``k`` shows, and which nodes and arrows light up."""
    step = g.steps[k]
    node = step.node
    name = g.labels[node]
    data: dict[str, Any] = {
        "tensor": g.ids[node],
        "node": g.tensor_node(node),
        "name": name,
        "shape": shape_text(node.shape),
        "grad": _array(step.grad),
        "edges": [],
    }
    if node.grad_fn is None:
        data["leaf"] = True
        data["rule"] = f"complete: added into {name}.grad"
        return data
    data["leaf"] = False
    data["op"] = node.op
    data["settings"] = op_text(node)
    data["expr"] = f"{name} = {node.op}({', '.join(g.labels[p] for p in node.parents)})"
    data["rule"] = node.grad_fn.rule
    data["inputs"] = [{"name": g.labels[p], "shape": shape_text(p.shape)} for p in node.parents]
    sent = []
    for parent, grad in zip(node.parents, step.parent_grads):
        entry: dict[str, Any] = {"name": g.labels[parent]}
        if grad is None:
            entry["none"] = True
        else:
            entry["shape"] = shape_text(grad.shape)
            if note := broadcast_note(node, parent):
                entry["note"] = note
        sent.append(entry)
    data["sent"] = sent
    edges = g.edges(node)
    carried = [
        (g.tensor_node(p), g.op_node(node))
        for p, gr in zip(node.parents, step.parent_grads)
        if gr is not None
    ]
    data["edges"] = [list(e) for e in edges if e in carried or e[0] == g.op_node(node)]
    return data


def _tensor_data(g: _Graph, t: Tensor) -> dict[str, Any]:
    kind = kind_of(t, g.root)
    data: dict[str, Any] = {
        "name": g.labels[t],
        "id": g.ids[t],
        "kind": kind or "intermediate",
        "shape": shape_text(t.shape),
        "dtype": str(t.dtype),
        "values": _array(t.data),
        "requiresGrad": t.requires_grad,
    }
    k = g.step_of.get(t)
    if k is not None:
        data["step"] = k
        data["grad"] = _array(g.steps[k].grad)
    if t.grad_fn is not None:
        data["op"] = t.op
        data["expr"] = f"{g.labels[t]} = {t.op}({', '.join(g.labels[p] for p in t.parents)})"
        data["rule"] = t.grad_fn.rule
        data["settings"] = op_text(t)
    return data


def _comparison(g: _Graph, reference: Any) -> dict[str, Any] | None:
    """∂L/∂Z from the walk next to the closed form (P − Y)/N from ``analytic``, as the ledger does."""
    if reference is None:
        return None
    logits, classes, axis = reference
    if not isinstance(logits, Tensor) or logits not in g.step_of:
        raise ValueError(
            f"to_html: the reference logits (shape {getattr(logits, 'shape', None)}) are not on the backward "
            "walk from the root; pass the tensor the loss was computed from, with requires_grad"
        )
    classes = check_labels(classes, logits.shape, axis, "to_html")
    autograd = g.steps[g.step_of[logits]].grad
    closed = analytic.logits_grad(logits.data, classes, axis)
    return {
        "name": g.labels[logits],
        "node": g.tensor_node(logits),
        "axis": axis % logits.ndim,
        "autograd": _array(autograd),
        "closed": _array(closed),
        "difference": float(np.max(np.abs(autograd - closed))),
        "formula": _derived_formula(g.root, logits, axis),
    }


def _derived_formula(root: Tensor, logits: Tensor, axis: int) -> list[str] | None:
    """The formulas the engine derives from this graph (``tinygrad-softmax derive``), or None if it cannot."""
    from ..derive.derivation import DerivationError, formula_lines

    try:
        return formula_lines(root, logits, axis)
    except (DerivationError, ValueError, TypeError):  # an op with no symbolic form, an unnamed logit
        return None


def _page_data(g: _Graph, reference: Any, title: str, drawn: bool) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for t in g.order:
        info = _tensor_data(g, t)
        if g.folded(t):
            nodes[g.op_node(t)] = {"folded": True, **info}
            continue
        nodes[g.ids[t]] = info
        if t.grad_fn is not None:
            nodes[g.op_node(t)] = {
                "isOp": True,
                "op": t.op,
                "settings": op_text(t),
                "rule": t.grad_fn.rule,
                "expr": info["expr"],
                "output": g.labels[t],
                "step": info.get("step"),
            }
    edge_step: dict[str, int] = {}
    for k in range(len(g.steps)):
        for tail, head in _step_data(g, k)["edges"]:
            edge_step[f"{tail}->{head}"] = k
    leaves = [{"name": g.labels[s.node], "grad": _array(s.grad)} for s in g.steps if s.node.grad_fn is None]
    summarised = any(t.data.size > FULL_LIMIT for t in g.order)
    return {
        "title": title,
        "top": g.top,
        "steps": [_step_data(g, k) for k in range(len(g.steps))],
        "nodes": nodes,
        "edgeStep": edge_step,
        "leaves": leaves,
        "comparison": _comparison(g, reference),
        "limits": {"full": FULL_LIMIT, "summarised": summarised, "drawn": drawn, "drawnLimit": DRAWN_LIMIT},
    }


# ---------------------------------------------------------------- the page


def _asset(name: str) -> str:
    return (resources.files(__package__) / "web" / name).read_text(encoding="utf-8")


def page(
    root: Tensor,
    *,
    reference: Any = None,
    clusters: Clusters | None = None,
    compact: bool = False,
    rankdir: str = "LR",
    title: str | None = None,
) -> str:
    """The explorer page for ``root``'s backward walk, as one HTML string.

    ``reference=(Z, labels, axis)`` names the logits of a softmax cross-entropy:
    the last view then sets ∂L/∂Z next to the closed form (P − Y)/N and their
    largest difference. ``clusters`` and ``compact`` draw as in ``viz.to_dot``.
    Without Graphviz's ``dot`` program the DOT text is saved as ``explorer.dot``
    in the current folder and :class:`GraphvizNotFoundError` says how to install it.
    """
    return _build(root, Path("explorer.html"), reference, clusters, compact, rankdir, title)


# Inside <script>, "</script" ends the element and "<!--" then "<script" changes where it ends; a line
# break U+2028/U+2029 ends a line of older JavaScript. JSON has < > & only inside strings, where \u
# escapes mean the same, so these never appear raw whatever a tensor is named.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> str:
    """``data`` as JSON that can stand inside an HTML ``<script>`` element as it is."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_ESCAPES[m.group()], text)


def _build(
    root: Tensor,
    path: Path,
    reference: Any,
    clusters: Clusters | None,
    compact: bool,
    rankdir: str,
    title: str | None,
) -> str:
    """The page; ``path`` is where it will go (the DOT text is saved beside it if ``dot`` is missing)."""
    steps = loss_steps(root, "to_html")
    order = graph_order(root)
    if len(order) > MAX_TENSORS:
        raise ValueError(
            f"to_html: the graph has {len(order)} tensors; the page draws at most {MAX_TENSORS} "
            "(build the expression from fewer, larger tensors)"
        )
    g = _Graph(
        root=root,
        order=order,
        ids={t: f"t{k}" for k, t in enumerate(order)},
        labels=tensor_labels(root),
        steps=steps,
        step_of={s.node: k for k, s in enumerate(steps)},
        compact=compact,
    )
    data = _page_data(g, reference, title or f"Backprop, step by step: {g.top}", len(order) <= DRAWN_LIMIT)
    variants = VARIANTS if data["limits"]["drawn"] else {"plain": VARIANTS["plain"]}
    svgs = []
    for variant, (values, grads) in variants.items():
        dot = _dot(g, values, grads, rankdir, clusters)
        if shutil.which("dot") is None:
            raise missing_dot(dot.source, path)
        try:
            svg = run_dot(dot.source, "svg", what=f"a graph of {len(order)} tensors").decode("utf-8")
        except graphviz.ExecutableNotFound:
            raise missing_dot(dot.source, path) from None
        svgs.append(_clean_svg(svg, variant))
    text = script_json(data)
    parts = {
        "TITLE": html.escape(data["title"]),
        "CSS": _asset("explorer.css"),
        "SVGS": "\n".join(svgs),
        "DATA": text,
        "JS": _asset("explorer.js"),
    }
    # One pass, so a {{...}} inside a title or a script is never filled in itself.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _asset("explorer.html"))


def to_html(
    root: Tensor,
    path: str | Path,
    *,
    reference: Any = None,
    clusters: Clusters | None = None,
    compact: bool = False,
    rankdir: str = "LR",
    title: str | None = None,
) -> Path:
    """Write the explorer page for ``root``'s backward walk to ``path`` and return the path.

    One self-contained file: open it from disk in any browser, offline. The
    options are those of :func:`page`. Without Graphviz's ``dot`` program the DOT
    text is saved next to ``path`` and :class:`GraphvizNotFoundError` says how to
    install it. The file is written whole or not at all.
    """
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"to_html: cannot write {path.name!r}: the page's file name must end in .html")
    outputs.check_file(path, "the page")
    return outputs.write_text(path, _build(root, path, reference, clusters, compact, rankdir, title))


def classifier_page(model: Classifier, path: str | Path, *, compact: bool = False) -> Path:
    """The page for the linear softmax classifier (``tinygrad-softmax explore`` and the demo).

    The ops of cross_entropy sit in a dashed box, and the last view compares
    ∂loss/∂Z with the closed form (P − Y)/N.
    """
    return to_html(
        model.loss,
        path,
        reference=(model.Z, model.labels, model.class_axis),
        clusters={"cross_entropy": (model.loss, [model.Z])},
        compact=compact,
        title=f"Backprop, step by step: the linear softmax classifier ({model.layout} layout)",
    )


@dataclass
class Explorer:
    """The explorer page, shown inline by Jupyter in a sandboxed iframe (its own scripts and styles)."""

    html: str
    height: int = 820

    def _repr_html_(self) -> str:
        # srcdoc keeps the page in the notebook; the sandbox lets its script run
        # but keeps it away from the notebook's page, cookies and storage.
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {self.height}px; border: 1px solid #ccc" '
            'title="backward pass explorer"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (whole or not at all)."""
        return outputs.write_text(path, self.html)


def explore(
    root: Tensor,
    *,
    reference: Any = None,
    clusters: Clusters | None = None,
    compact: bool = False,
    rankdir: str = "LR",
    title: str | None = None,
    height: int = 820,
) -> Explorer:
    """The explorer page for ``root`` as an object Jupyter shows inline (``height`` in pixels).

    The other options are those of :func:`page`; ``.save(path)`` writes the page.
    """
    if height <= 0:
        raise ValueError(f"explore: height must be a positive number of pixels, got {height}")
    return Explorer(
        page(root, reference=reference, clusters=clusters, compact=compact, rankdir=rankdir, title=title),
        height,
    )
