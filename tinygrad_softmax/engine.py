"""Reverse mode: order the graph, then walk it backwards applying the chain rule.

Both steps are loops over an explicit stack, never recursion, so a chain of
100,000 ops is as easy as a chain of ten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import anomaly
from .ops import unbroadcast

if TYPE_CHECKING:
    from .tensor import Tensor


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on and that requires grad, inputs first.

    Depth-first, iterative: a node is emitted after all of its parents, and the
    order is the same on every run because ``parents`` is an ordered tuple.
    A node reached twice (a diamond) is visited once.
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
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


@dataclass(frozen=True)
class Step:
    """One step of the backward walk: the chain rule applied at one node.

    ``grad`` is dL/d``node`` (complete when the step runs); ``parent_grads[i]``
    is the contribution this node sends to ``node.parents[i]`` (summed back to
    the parent's shape), or None when that parent needs no gradient.
    """

    node: Tensor
    grad: np.ndarray
    parent_grads: tuple[np.ndarray | None, ...]


def walk(root: Tensor, grad: np.ndarray) -> Iterator[Step]:
    """Apply the chain rule node by node, from ``root`` back to the leaves.

    Gradients live in a dict local to this walk; nothing is written to any
    tensor. ``backward`` below stores the result; the explainers watch the steps.
    """
    order = topological_order(root)
    grads: dict[int, np.ndarray] = {id(root): grad}
    for node in reversed(order):
        # Every node in `order` lies on a path to root, so its gradient is complete
        # by the time the reversed walk reaches it.
        node_grad = grads[id(node)]
        fn = node.grad_fn
        if fn is None:  # a leaf: nothing to pass on
            yield Step(node, node_grad, ())
            continue
        parent_grads = list(fn.backward(node_grad))
        for i, (parent, parent_grad) in enumerate(zip(node.parents, parent_grads)):
            if not parent.requires_grad or parent_grad is None:
                parent_grads[i] = None
                continue
            if parent_grad.shape != parent.shape:
                parent_grad = parent_grads[i] = unbroadcast(parent_grad, parent.shape)
            if anomaly.enabled:
                anomaly.check_backward(node, parent, parent_grad)
            key = id(parent)
            # `+` makes a new array: a gradient may be shared by several nodes.
            grads[key] = grads[key] + parent_grad if key in grads else parent_grad
        yield Step(node, node_grad, tuple(parent_grads))


def backward(root: Tensor, grad: np.ndarray) -> None:
    """Propagate ``grad`` (dL/droot) to every tensor in root's graph; add it to ``.grad``.

    The walk finishes before any ``.grad`` is written, so an error half way
    leaves every ``.grad`` as it was, and a second call sees none of the first's work.
    """
    results = [(step.node, step.grad) for step in walk(root, grad)]
    stored: set[int] = set()
    for node, g in results:
        if g.dtype != node.data.dtype:
            g = g.astype(node.data.dtype)
        # Give each .grad an array of its own, so that editing one in place
        # never changes another (add's backward hands one array to both inputs).
        if id(g) in stored or g.base is not None or not g.flags.writeable:
            g = g.copy()
        stored.add(id(g))
        node.grad = g if node.grad is None else node.grad + g
