"""The backward walk on symbolic values: each rule from ``ops.py`` writes its own lines.

This is ``engine._chain_rule`` (reverse topological order, gradients summed
where a tensor feeds several ops, ``sum_to`` where broadcasting stretched an
input) with :class:`Sym` values in place of arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import engine, ops
from ..tensor import Tensor
from .program import Program
from .symbolic import ATOM, Sym


def array(t: Tensor) -> np.ndarray:
    # The tensor's own array, read only: `.data` would hand out a copy of one a graph
    # holds (copy on write), and the trace recognises tensors by their memory.
    return t._data


def walk(
    program: Program, root: Tensor, syms: dict[Tensor, Sym], recorded_args: dict[Tensor, int]
) -> dict[Tensor, Sym]:
    """``engine._chain_rule`` on Sym values: each rule from ops.py writes its own lines."""
    order = engine.topological_order(root)
    # How many gradients each tensor will receive, so the last one gets the plain name dZ.
    expected: dict[Tensor, int] = {}
    for node in order:
        for parent in node.parents:
            if parent.requires_grad:
                expected[parent] = expected.get(parent, 0) + 1
    arrived: dict[Tensor, int] = {}
    grads: dict[Tensor, Sym] = {}
    ones = Sym(program, np.ones(np.shape(array(root)), dtype=array(root).dtype))
    ones.template = f"np.ones({np.shape(array(root))}, dtype=np.{array(root).dtype.name})"
    program.emit(program.fresh("d" + (syms[root].name or "loss")), ones, "dL/dL = 1")
    grads[root] = ones
    finished: dict[Tensor, Sym] = {}
    for node in reversed(order):
        g = grads.pop(node)
        finished[node] = g
        fn = node.grad_fn
        if fn is None:
            continue
        inputs = [syms[p] for p in node.parents]
        rule_grads = fn.backward(g, *inputs, syms[node])
        for i, (parent, parent_grad) in enumerate(zip(node.parents, rule_grads)):
            if parent_grad is None or not parent.requires_grad:
                continue
            if not isinstance(parent_grad, Sym):
                parent_grad = program.constant(np.asarray(parent_grad))
            if parent_grad.shape != array(parent).shape:
                parent_grad = ops.sum_to(parent_grad, array(parent).shape)
            arrived[parent] = arrived.get(parent, 0) + 1
            k, total = arrived[parent], expected[parent]
            base = "d" + (syms[parent].name or "t")
            rule = f"{fn.name} backward → ∂L/∂{'in' if len(node.parents) == 1 else 'in' + '₁₂'[i]}"
            if parent_grad.name is None:
                program.emit(program.fresh(base if total == 1 else f"{base}_{k}"), parent_grad, rule)
            elif total == 1 and (parent.name or parent in recorded_args) and syms[parent].name:
                # The rule passes the gradient on unchanged (add, sub): a line only to name dZ.
                alias = Sym(program, parent_grad.value, "{0}", (parent_grad,))
                parent_grad = program.emit(program.fresh(base), alias, rule)
            if parent in grads:
                total_grad = grads[parent] + parent_grad
                name = program.fresh(base if k == total else f"{base}_acc")
                program.emit(name, total_grad, f"{syms[parent].name} feeds {total} ops: their gradients add")
                grads[parent] = total_grad
            else:
                grads[parent] = parent_grad
    return {t: finished[t] for t in recorded_args if t in finished}


def own(program: Program, g: Sym, dtype: np.dtype[Any], returned: set[str], name: str) -> str:
    """The line that makes a returned gradient an array of its own (as ``engine.backward`` does)."""
    value = np.asarray(g.value)
    if g.dtype != dtype:
        cast = Sym(program, value.astype(dtype), f"{{0}}.astype(np.{dtype.name})", (g,))
        return program.emit(program.fresh(name), cast, once=False).name or name
    shared = (
        g.name in returned
        or g.name is None
        or g.name in program.arguments  # the caller's own array (or a view of it, below)
        or (value.base is not None and not _turned_product(g))
        or not isinstance(g.value, np.ndarray)
    )
    if shared or g.name in program.fixed or not value.flags.writeable:
        copied = np.array(value)
        last = program.lines[-1]
        if (
            last.target == g.name
            and last.section != "once"
            and isinstance(g.value, np.ndarray)
            and g.name not in returned
        ):
            # The line that made it, made to copy: nothing reads it before it is returned.
            code = last.code if g.precedence == ATOM or g.template == "{0}" else f"({last.code})"
            last.code, last.comment, last.copied = (
                f"{code}.copy()",
                last.comment + "; an array of its own",
                True,
            )
            return g.name
        sym = Sym(program, copied, "{0}.copy()" if isinstance(g.value, np.ndarray) else "np.array({0})", (g,))
        return program.emit(program.fresh(name), sym, "an array of its own", once=False).name or name
    return g.name  # type: ignore[return-value]


def _turned_product(g: Sym) -> bool:
    """``(B.T @ A.T).T``: a view, but of a product no other name holds, so already an array of its own."""
    inner = g.args[0] if g.template == "{0}.T" and g.args else None
    return (
        isinstance(inner, Sym)
        and inner.name is None
        and inner.template == "{0} @ {1}"
        and isinstance(inner.value, np.ndarray)
        and inner.value.base is None
    )
