"""The chain-rule ledger: the backward walk written out, one line per step.

For every step of ``engine.walk``: the node, the op that made it, the op's
local rule, the shape of the gradient that arrived from above, and the shapes
of the gradients it sends to its parents. Given the logits of a softmax
cross-entropy, the ledger sets autograd's ∂L/∂Z next to the closed form
``(P − Y)/N`` (from ``analytic``, which never uses the engine), so it ends in
the derivation's result.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ... import analytic, engine
from ...functional import check_labels
from ...tensor import Tensor
from ..numbers import array_text
from .graph import broadcast_note, loss_steps, shape_text, tensor_labels

__all__ = ["LogitsReference", "LedgerRow", "ledger_rows", "explain"]


class LogitsReference(NamedTuple):
    """Which tensor holds the logits of a softmax cross-entropy, its integer labels, and its class axis."""

    logits: Tensor
    labels: Any
    axis: int


@dataclass(frozen=True)
class LedgerRow:
    """One backward step, as text."""

    step: int
    node: str
    op: str  # ``add(t2, b)``, or ``leaf``
    rule: str
    upstream: str  # shape of ∂L/∂node
    sent: str  # what goes to each parent
    note: str = ""  # the comparison with (P − Y)/N, at the logits


@dataclass(frozen=True)
class _Comparison:
    logits: Tensor
    name: str
    autograd: np.ndarray
    closed_form: np.ndarray
    axis: int

    @property
    def difference(self) -> float:
        return float(np.max(np.abs(self.autograd - self.closed_form)))


def _sent(step: engine.Step, labels: dict[Tensor, str]) -> str:
    parts = []
    for parent, grad in zip(step.node.parents, step.parent_grads):
        name = labels[parent]
        if grad is None:
            parts.append(f"{name} (needs no grad)")
            continue
        text = f"{name} {shape_text(grad.shape)}"
        if note := broadcast_note(step.node, parent):
            text += f" ({note})"
        parts.append(text)
    return ", ".join(parts)


def _compare(
    steps: list[engine.Step],
    labels: dict[Tensor, str],
    reference: LogitsReference | tuple[Any, Any, int] | None,
) -> _Comparison | None:
    """Autograd's gradient at the logits next to ``analytic.logits_grad``: (P − Y)/N."""
    if reference is None:
        return None
    logits, classes, axis = reference
    at_logits = [s for s in steps if s.node is logits]
    if not at_logits:
        raise ValueError(
            f"explain: the reference logits (shape {getattr(logits, 'shape', None)}) are not on the backward "
            "walk from the root; pass the tensor the loss was computed from, with requires_grad"
        )
    classes = check_labels(classes, logits.shape, axis, "explain")
    closed = analytic.logits_grad(logits.data, classes, axis)
    return _Comparison(logits, labels[logits], at_logits[0].grad, closed, axis % logits.ndim)


def _build(
    root: Tensor, reference: LogitsReference | tuple[Any, Any, int] | None
) -> tuple[list[LedgerRow], _Comparison | None, str]:
    """The rows, the comparison at the logits (if asked for), and the root's label."""
    steps = loss_steps(root, "explain")
    labels = tensor_labels(root)
    comparison = _compare(steps, labels, reference)
    top = labels[root]
    rows = []
    for k, step in enumerate(steps, start=1):
        name = labels[step.node]
        fn = step.node.grad_fn
        note = ""
        if comparison is not None and step.node is comparison.logits:
            note = f"at the logits: ∂{top}/∂{name} = (P − Y)/N, max |difference| {comparison.difference:.1e}"
        rows.append(
            LedgerRow(
                step=k,
                node=name,
                op=f"{fn.name}({', '.join(labels[p] for p in step.node.parents)})" if fn else "leaf",
                rule=fn.rule if fn is not None else f"complete: added into {name}.grad",
                upstream=shape_text(step.grad.shape),
                sent=_sent(step, labels) if fn is not None else "",
                note=note,
            )
        )
    return rows, comparison, top


def ledger_rows(
    root: Tensor, reference: LogitsReference | tuple[Any, Any, int] | None = None
) -> list[LedgerRow]:
    """One :class:`LedgerRow` per step of ``engine.walk(root)``, in the walk's order."""
    return _build(root, reference)[0]


def _side_by_side(left: np.ndarray, right: np.ndarray, titles: tuple[str, str]) -> list[str]:
    """Two arrays printed next to each other, with a title above each."""
    options = {"precision": 4, "floatmode": "fixed", "suppress_small": True, "max_line_width": 120}
    a = array_text(left, **options).splitlines()
    b = array_text(right, **options).splitlines()
    width = max(len(line) for line in [titles[0], *a]) + 4
    lines = [f"{titles[0]:<{width}}{titles[1]}"]
    lines += [f"{x:<{width}}{y}" for x, y in zip(a, b)]
    return lines


def _ending(comparison: _Comparison, top: str) -> list[str]:
    name = comparison.name
    return [
        f"At the logits {name} ({shape_text(comparison.autograd.shape)}, classes on axis {comparison.axis}), "
        f"autograd's ∂{top}/∂{name} next to the closed form (P − Y)/N:",
        *(
            "  " + line
            for line in _side_by_side(
                comparison.autograd,
                comparison.closed_form,
                (f"∂{top}/∂{name} (chain rule, step by step)", "(P − Y)/N (analytic.logits_grad)"),
            )
        ),
        f"max |∂{top}/∂{name} − (P − Y)/N| = {comparison.difference:.2e}",
    ]


HEADERS = ("step", "node", "op", "local rule", "∂{top}/∂node", "sends to parents")
WRAP = (4, 16, 22, 38, 12, 40)  # column widths of the plain-text table with wide=True
NARROW = (4, 9, 14, 30, 11, 22)  # the default: with the gaps, 100 columns (a projector's terminal)
WIDTH = 100


def _plain(rows: list[LedgerRow], top: str, limits: tuple[int, ...] = NARROW) -> list[str]:
    headers = [h.format(top=top) for h in HEADERS]
    cells = [[str(r.step), r.node, r.op, r.rule, r.upstream, r.sent] for r in rows]
    widths = [min(limit, max(len(headers[i]), *(len(c[i]) for c in cells))) for i, limit in enumerate(limits)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for row, cell in zip(rows, cells):
        wrapped = [textwrap.wrap(text, width) or [""] for text, width in zip(cell, widths)]
        for line in range(max(len(w) for w in wrapped)):
            parts = [w[line] if line < len(w) else "" for w in wrapped]
            parts[0] = parts[0].rjust(widths[0])
            out.append("  ".join(p.ljust(w) for p, w in zip(parts, widths)).rstrip())
        if row.note:
            indent = " " * (widths[0] + 2)
            out += textwrap.wrap(
                row.note,
                sum(widths) + 2 * len(widths),
                initial_indent=indent + "└─ ",
                subsequent_indent=indent + "   ",
            )
    return out


def _markdown(rows: list[LedgerRow], top: str) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    headers = [h.format(top=top) for h in HEADERS]
    out = ["| " + " | ".join(headers) + " |", "|---:|---|---|---|---|---|"]
    for r in rows:
        rule = cell(r.rule) + (f"<br>**{cell(r.note)}**" if r.note else "")
        out.append(f"| {r.step} | `{r.node}` | {r.op} | {rule} | {r.upstream} | {cell(r.sent)} |")
    return out


def explain(
    root: Tensor,
    *,
    markdown: bool = False,
    reference: LogitsReference | tuple[Any, Any, int] | None = None,
    wide: bool = False,
) -> str:
    """The chain-rule ledger of ``root``'s backward walk, as an aligned table (or Markdown).

    The plain table fits 100 columns (a terminal on a projector), wrapping long
    cells; ``wide=True`` gives every column the room it wants.

    ``reference=(Z, labels, axis)`` names the logits of a softmax cross-entropy:
    the ledger then compares ∂L/∂Z with the closed form (P − Y)/N and ends with the
    largest difference. Nothing is written to any ``.grad``.
    """
    rows, comparison, top = _build(root, reference)
    intro = [
        f"Chain-rule ledger for {top}: {len(rows)} backward steps in reverse topological order.",
        f"Each step takes ∂{top}/∂node (complete by then) and applies the op's local rule "
        "to get the gradient for each parent.",
    ]
    if markdown:
        lines = [f"### Chain-rule ledger for `{top}`", "", *intro[1:], "", *_markdown(rows, top)]
        if comparison is not None:
            ending = _ending(comparison, top)
            lines += ["", ending[0], "", "```", *ending[1:-1], "```", "", ending[-1]]
    else:
        if not wide:
            intro = [line for text in intro for line in textwrap.wrap(text, WIDTH)]
        lines = [*intro, "", *_plain(rows, top, WRAP if wide else NARROW)]
        if comparison is not None:
            ending = _ending(comparison, top)
            if not wide:
                ending = [*textwrap.wrap(ending[0], WIDTH), *ending[1:]]
            lines += ["", *ending]
    return "\n".join(lines) + "\n"
