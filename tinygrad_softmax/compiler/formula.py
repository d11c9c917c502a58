"""The derived program: the gradient as the identities simplify it, written as NumPy lines.

The engine's backward rules from ``ops.py`` run once more on the traced graph,
this time on :class:`~.expr.Expr` values (formulas, not arrays); the named
identities of :mod:`.simplify` bring each gradient to its closed form, e.g.
``(softmax(Z) − onehot(y))/N`` for the linear softmax classifier, and
:func:`derived_program` writes those formulas as the lines that follow the
step program's forward. Where the identities stop before a closed form (an
``exp``, a ``log`` or a scatter is left), there is no derived program and
the reason says which gradient kept what. The program written here is run
against the step program before it is used (see :mod:`.trace`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops
from ..functional import STEP_NAMES
from ..tensor import Tensor
from .expr import (
    Expr,
    Picks,
    binary,
    gather,
    lift,
    matmul,
    num,
    onehot,
    reduction,
    sum_to,
    var,
    walk,
)
from .simplify import Simplifier

# Atoms that mean the identities stopped before a closed form.
UNSIMPLIFIED = ("exp", "log", "scatter", "gather", "max", "eq", "reshape", "sce")


def forward_expr(fn: ops.Op, args: list[Expr]) -> Expr:
    """An op's output as a formula of its inputs' formulas (the viewer reads the op's name and settings)."""
    name = fn.name
    if name in ("add", "sub", "mul", "div"):
        return binary(name, *args)
    (x, *_) = args
    if name == "matmul":
        return matmul(*args)
    if name == "neg":
        return -x
    if name == "pow":
        return x**fn.exponent  # type: ignore[attr-defined]
    if name in ("exp", "log", "relu"):
        return Expr(name, (x,), (), x.shape)
    if name in ("sum", "max"):
        return reduction(name, x, fn.axes, fn.keepdims)  # type: ignore[attr-defined]
    if name == "mean":
        return reduction("sum", x, fn.axes, fn.keepdims) / fn.count  # type: ignore[attr-defined]
    if isinstance(fn, ops.Gather):
        return gather(x, fn)
    if isinstance(fn, ops.Transpose):
        return x.transpose(fn.order)
    if isinstance(fn, ops.Reshape):
        return x.reshape(fn.shape)
    if isinstance(fn, ops.Expand):
        return Expr("expand", (x,), (fn.shape,), fn.shape)
    if isinstance(fn, ops.SumTo):
        return sum_to(x, fn.shape)
    if isinstance(fn, ops.ScatterAdd):
        return Expr._apply(fn, x)
    return Expr("sce", (x,), (name,), ())


class _SymbolicOneHot(ops.SoftmaxCrossEntropy):
    """The fused op with Y as the formula onehot(y) (its own ``one_hot`` builds an array)."""

    __slots__ = ("hot",)
    hot: Expr

    def one_hot(self) -> Any:
        return self.hot


def rule_of(fn: ops.Op, z: Expr, labels: Expr | None = None) -> ops.Op:
    """The op whose ``backward`` runs on formulas: the fused loss's with Y as ``onehot(labels)``."""
    if not isinstance(fn, ops.SoftmaxCrossEntropy):
        return fn
    shadow = _SymbolicOneHot(fn.axis, fn.labels)
    shadow.needs_grad = fn.needs_grad
    shadow.count = fn.count
    shadow.hot = onehot(var("y", fn.labels) if labels is None else labels, fn.axis, z.shape)
    return shadow


def closed_form(e: Expr) -> str:
    """Empty if ``e`` is a closed form; else the atoms the identities left (``exp, log``)."""
    left = sorted(
        {n.kind for n in walk(e) if n.kind in UNSIMPLIFIED}
        | {"a constant array" for n in walk(e) if n.kind == "var" and str(n.attrs[0]).startswith("K(")}
    )
    return ", ".join(left)


# ---------------------------------------------------------------- from the traced graph to formulas


@dataclass
class Labels:
    """Where a label vector of a formula comes from in the program: its code and its positions' name."""

    index: str  # code for the labels with the class axis kept (size 1), as the gather reads them
    axis: int
    positions: str  # the program's ``picked`` tuple for these labels


class _CompileSimplifier(Simplifier):
    """The identities, with each label vector named after the program's labels."""

    def __init__(self, labels: dict[Any, Labels]) -> None:
        super().__init__()
        self.program_labels = labels
        self.by_name: dict[str, Labels] = {}

    def label_vector(self, picks: Picks) -> Expr:
        found = self.labels.get(picks.token)
        if found is None:
            where = self.program_labels.get(picks.token)
            name = f"labels{len(self.labels)}"
            found = var(name, np.squeeze(picks.index, axis=picks.axis))
            self.labels[picks.token] = found
            if where is not None:
                self.by_name[name] = where
        return found


@dataclass
class Derived:
    """The gradients of the traced graph as simplified formulas, with the names the forward gave."""

    grads: dict[int, Expr]  # argument position -> ∂L/∂argument
    forward_names: dict[Any, str]  # an Expr's key -> the forward variable that holds it
    intermediate: dict[Any, str]  # a simplified gradient's key -> "d" + the forward tensor's name
    labels: dict[str, Labels]
    exps: list[tuple[Expr, str]] = field(default_factory=list)  # exp(a − m) lines of the forward
    sums: dict[Any, str] = field(default_factory=dict)  # Σ_k of a forward line -> its name


def derive_trace(
    root: Tensor,
    leaves: dict[Tensor, str],
    wanted: dict[Tensor, int],
    name_of: Callable[[Tensor], str | None],
    labels: dict[Any, Labels],
    constants: set[str],
) -> Derived | str:
    """∂root/∂t for each t in ``wanted`` as simplified formulas, or why there are none.

    ``leaves``: the tensors the program reads by name (arguments, constants);
    ``name_of``: the forward variable of a recorded op's output; ``constants``: the
    names whose values are the same on every call (the program's constants).
    """
    order = _every_node(root)
    exprs = _forward(order, leaves, name_of, constants)
    if isinstance(exprs, str):
        return exprs
    simplifier = _CompileSimplifier(labels)
    done = _backward(root, order, exprs, simplifier)
    if isinstance(done, str):
        return done
    out: dict[int, Expr] = {}
    for t, position in wanted.items():
        if t not in done:
            continue
        simple = simplifier.simplify(done[t])
        left = closed_form(simple)
        if left:
            return f"∂L/∂{leaves.get(t, 'x')} keeps {left} after the identities"
        out[position] = simple
    derived = Derived(out, {}, _gradient_names(root, done, name_of, simplifier), simplifier.by_name)
    for t, e in exprs.items():
        name = name_of(t)
        if name is None:
            continue
        if t.grad_fn is not None and t.parents:
            derived.forward_names.setdefault(e.key, name)
        if e.kind == "exp" and e.args[0].kind == "sub":
            derived.exps.append((e, name))
        if e.kind == "sum" and e.attrs[1]:
            derived.sums[e.key] = name
    return derived


def _forward(
    order: list[Tensor],
    leaves: dict[Tensor, str],
    name_of: Callable[[Tensor], str | None],
    constants: set[str],
) -> dict[Tensor, Expr] | str:
    """Each tensor's value as a formula: the program's named values are symbols, the rest their op's."""
    exprs: dict[Tensor, Expr] = {}
    for t in order:
        fn = t.grad_fn
        if fn is None or not t.parents:
            name = leaves.get(t) or name_of(t)
            if name is None:
                return "a value of the graph has no name in the program"
            data = np.asarray(t._data)
            if data.ndim == 0 and name == repr(data[()]):
                exprs[t] = num(data[()].item())
            else:  # what is read on every call is no constant: no fact about this call's numbers holds
                exprs[t] = var(name, data, constant=name in constants and not t.requires_grad)
            continue
        if any(p not in exprs for p in t.parents):
            return "the graph reads a value recorded outside it"
        exprs[t] = forward_expr(fn, [exprs[p] for p in t.parents])
    return exprs


def _backward(
    root: Tensor, order: list[Tensor], exprs: dict[Tensor, Expr], simplifier: _CompileSimplifier
) -> dict[Tensor, Expr] | str:
    """∂root/∂t for every tensor t that requires grad: the engine's walk, each rule run on formulas."""
    grads: dict[Tensor, Expr] = {root: num(1)}
    done: dict[Tensor, Expr] = {}
    for node in reversed(order):
        g = grads.pop(node, None)
        if g is None:
            continue
        done[node] = g
        fn = node.grad_fn
        if fn is None:
            continue
        inputs = [exprs[p] for p in node.parents]
        hot = None
        if isinstance(fn, ops.SoftmaxCrossEntropy):
            hot = simplifier.label_vector(Picks(ops.Gather(fn.axis, fn.picks.index)))
        try:
            sent = rule_of(fn, inputs[0], hot).backward(g, *inputs, exprs[node])
        except (TypeError, ValueError) as error:
            return f"the rule of {fn.name} has no symbolic form here ({error})"
        add_parent_grads(grads, node, sent)
    return done


def add_parent_grads(grads: dict[Tensor, Expr], node: Tensor, sent: Any) -> None:
    """Add what a rule sent back into ``grads``, each as an expression of its parent's shape."""
    for parent, parent_grad in zip(node.parents, sent):
        if parent_grad is None or not parent.requires_grad:
            continue
        if not isinstance(parent_grad, Expr):
            parent_grad = lift(parent_grad)
        if parent_grad.shape != parent._data.shape:
            parent_grad = ops.sum_to(parent_grad, parent._data.shape)
        earlier = grads.get(parent)
        grads[parent] = parent_grad if earlier is None else earlier + parent_grad


def _gradient_names(
    root: Tensor, done: dict[Tensor, Expr], name_of: Callable[[Tensor], str | None], simplifier: Simplifier
) -> dict[Any, str]:
    """A simplified gradient's key -> "d" + the tensor whose gradient it is (dZ)."""
    intermediate: dict[Any, str] = {}
    named_by_fn: set[Any] = set()
    for t, g in done.items():  # the latest tensor first
        name = name_of(t)
        if t.grad_fn is not None and name is not None and t is not root:
            simple = simplifier.simplify(g)
            if closed_form(simple) or simple.key in named_by_fn:
                continue
            # A tensor fn named (Z) names its gradient (dZ); else the earliest of the graph.
            intermediate[simple.key] = "d" + name
            if t.name and t.name not in STEP_NAMES:
                named_by_fn.add(simple.key)
    return intermediate


def _every_node(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` is computed from, inputs first (with or without gradient)."""
    seen = {root}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return sorted(seen, key=lambda t: t.serial)
