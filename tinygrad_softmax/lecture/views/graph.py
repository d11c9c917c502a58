"""Reading a recorded graph, for the viewers: order, names, shapes and the backward steps.

The pictures (``viz``) and the chain-rule ledger (``ledger``) both read the
graph the same way; this module is what they share. It needs NumPy only (no
Graphviz), and it never changes the graph. Tensors are hashable by identity,
so every table here is keyed by the tensor itself.
"""

from __future__ import annotations

import numpy as np

from ... import engine
from ...functional import STEP_NAMES
from ...tensor import Tensor
from ..numbers import array_text, number

__all__ = [
    "BROADCASTING_OPS",
    "graph_order",
    "tensor_labels",
    "symbol",
    "wrt",
    "own_name",
    "shape_text",
    "summarize",
    "kind_of",
    "op_text",
    "summed_axes",
    "broadcast_note",
    "loss_steps",
]

BROADCASTING_OPS = ("add", "sub", "mul", "div")  # elementwise ops whose inputs may be broadcast
SMALL = 20  # arrays with at most this many entries are printed in full


def graph_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on, inputs first, constants included.

    An iterative depth-first walk over the ordered ``parents`` tuples, so the
    order (and every ``t<k>`` name) is the same on every run. Unlike the engine's
    order it keeps the tensors that need no gradient (``X``, the detached max):
    the picture shows the whole forward graph.
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in reversed(node.parents):
            if parent not in visited:
                stack.append((parent, False))
    return order


def tensor_labels(root: Tensor) -> dict[Tensor, str]:
    """Each tensor → its name, or ``t<k>`` (k its position in :func:`graph_order`)."""
    return {t: t.name or f"t{k}" for k, t in enumerate(graph_order(root))}


def own_name(t: Tensor) -> bool:
    """Whether ``t`` carries a name of its own: not none, and not one of the derivation's
    ``STEP_NAMES`` that ``cross_entropy`` gives its steps (a compact drawing folds those into their ops)."""
    return bool(t.name) and t.name not in STEP_NAMES


def shape_text(shape: tuple[int, ...]) -> str:
    """``3×5`` for a matrix, ``(3,)`` for a vector, ``scalar`` for a 0-d array."""
    if not shape:
        return "scalar"
    return f"({shape[0]},)" if len(shape) == 1 else "×".join(str(n) for n in shape)


def summarize(array: np.ndarray) -> list[str]:
    """Lines showing an array: in full when small, else its min, max and mean."""
    array = np.asarray(array)
    if array.size == 1:
        return [number(array.item(), ".4g")]
    if array.size <= SMALL:
        text = array_text(array, precision=3, floatmode="fixed", suppress_small=True, max_line_width=200)
        return text.splitlines()
    low, high, mean = (number(v, ".3g") for v in (array.min(), array.max(), array.mean()))
    return [f"min {low}  max {high}", f"mean {mean}"]


def kind_of(t: Tensor, root: Tensor) -> str:
    """What a tensor is to the reader: the root (the loss), a parameter, an input, a constant, or ''."""
    if t is root:
        return "root"
    if t.parents:
        return ""
    if t.requires_grad:
        return "parameter"
    return "input" if t.name else "constant"


def op_text(t: Tensor) -> str:
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


def summed_axes(parent: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``out`` that broadcasting added or stretched for an input of shape ``parent``.

    They are the axes the input's gradient is summed over (``ops.sum_to``):
    ``summed_axes((3, 1), (3, 5)) == (1,)``, ``summed_axes((3,), (5, 3)) == (0,)``.
    """
    extra = len(out) - len(parent)
    return tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(parent) if n == 1 and out[extra + i] != 1
    )


def broadcast_note(node: Tensor, parent: Tensor) -> str | None:
    """What the chain rule did to ``parent``'s gradient if ``node``'s op broadcast ``parent``, else None.

    ``summed over axis 1: the adjoint of broadcasting`` for ``b`` (3×1) in ``Z = t2 + b`` (3×5).
    """
    if node.op not in BROADCASTING_OPS or parent.shape == node.shape:
        return None
    axes = summed_axes(parent.shape, node.shape)
    which = f"axis {axes[0]}" if len(axes) == 1 else f"axes {axes}"
    return f"summed over {which}: the adjoint of broadcasting"


def loss_steps(root: Tensor, who: str) -> list[engine.Step]:
    """The steps of ``engine.walk`` from a scalar loss (starting at ∂loss/∂loss = 1).

    ``who`` names the caller in errors.
    """
    if not root.requires_grad:
        raise ValueError(
            f"{who}: the root {shape_text(root.shape)} does not require grad, so no gradient flows"
        )
    if root.data.size != 1:
        raise ValueError(f"{who}: the root must be a scalar loss, got shape {root.shape}")
    return list(engine.walk(root, np.ones_like(root.data)))


def symbol(name: str) -> str:
    """The symbol a node's name defines: ``S = Σ exp`` draws the node of ``S``, whose gradient is ∂L/∂S."""
    return name.split(" = ")[0]


def wrt(name: str) -> str:
    """The node as the denominator of ∂L/∂…: its symbol, in brackets when it is more than one word.

    ``∂loss/∂(Z − max)`` cannot be read as ``∂loss/∂Z`` minus something.
    """
    name = symbol(name)
    return f"({name})" if any(c in name for c in " −+·") else name
