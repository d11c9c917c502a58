"""Reverse mode: order the graph, then walk it backwards applying the chain rule.

Both steps are loops over an explicit stack, never recursion, so a chain of
100,000 ops is as easy as a chain of ten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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


def backward(root: Tensor, grad: np.ndarray) -> None:
    """Propagate ``grad`` (dL/droot) to every tensor in root's graph; add it to ``.grad``.

    Gradients are collected in a dict local to this walk and written to
    ``.grad`` only once the walk has finished, so an error half way leaves
    every ``.grad`` as it was, and a second call sees none of the first's work.
    """
    order = topological_order(root)
    grads: dict[int, np.ndarray] = {id(root): grad}
    for node in reversed(order):
        fn = node.grad_fn
        if fn is None:
            continue
        # Every node in `order` lies on a path to root, so its gradient is complete
        # by the time the reversed walk reaches it.
        parent_grads = fn.backward(grads[id(node)])
        for parent, parent_grad in zip(node.parents, parent_grads):
            if not parent.requires_grad or parent_grad is None:
                continue
            if parent_grad.shape != parent.shape:
                parent_grad = unbroadcast(parent_grad, parent.shape)
            key = id(parent)
            # `+` makes a new array: a gradient may be shared by several nodes.
            grads[key] = grads[key] + parent_grad if key in grads else parent_grad

    stored: set[int] = set()
    for node in order:
        g = grads[id(node)]
        if g.dtype != node.data.dtype:
            g = g.astype(node.data.dtype)
        # Give each .grad an array of its own, so that editing one in place
        # never changes another (add's backward hands one array to both inputs).
        if id(g) in stored or g.base is not None or not g.flags.writeable:
            g = g.copy()
        stored.add(id(g))
        node.grad = g if node.grad is None else node.grad + g
