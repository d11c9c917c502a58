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
    exprs: dict[Tensor, Expr] = {}
    forward_names: dict[Any, str] = {}
    order = _every_node(root)
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
        missing = [p for p in t.parents if p not in exprs]
        if missing:
            return "the graph reads a value recorded outside it"
        exprs[t] = forward_expr(fn, [exprs[p] for p in t.parents])
        name = name_of(t)
        if name is not None:
            forward_names.setdefault(exprs[t].key, name)
    simplifier = _CompileSimplifier(labels)
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
        rule = rule_of(fn, inputs[0], hot)
        try:
            sent = rule.backward(g, *inputs, exprs[node])
        except (TypeError, ValueError) as error:
            return f"the rule of {fn.name} has no symbolic form here ({error})"
        for parent, parent_grad in zip(node.parents, sent):
            if parent_grad is None or not parent.requires_grad:
                continue
            if not isinstance(parent_grad, Expr):
                parent_grad = lift(parent_grad)
            if parent_grad.shape != parent._data.shape:
                parent_grad = ops.sum_to(parent_grad, parent._data.shape)
            earlier = grads.get(parent)
            grads[parent] = parent_grad if earlier is None else earlier + parent_grad
    out: dict[int, Expr] = {}
    for t, position in wanted.items():
        if t not in done:
            continue
        simple = simplifier.simplify(done[t])
        left = closed_form(simple)
        if left:
            return f"∂L/∂{leaves.get(t, 'x')} keeps {left} after the identities"
        out[position] = simple
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
    derived = Derived(out, forward_names, intermediate, simplifier.by_name)
    for t, e in exprs.items():
        name = name_of(t)
        if name is None:
            continue
        if e.kind == "exp" and e.args[0].kind == "sub":
            derived.exps.append((e, name))
        if e.kind == "sum" and e.attrs[1]:
            derived.sums[e.key] = name
    return derived


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


# ---------------------------------------------------------------- formulas as NumPy lines


ELEMENTWISE_CODE = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_MAKES_A_FRESH_FLOAT = ("add", "sub", "mul", "div", "neg", "softmax", "matmul", "pow", "relu")


class _Coder:
    """Writes formulas as lines: each node shared by several formulas, or worth a name, once."""

    def __init__(self, derived: Derived, taken: set[str]) -> None:
        self.derived = derived
        self.taken = taken
        self.lines: list[str] = []
        self.names: dict[Any, str] = {}  # an Expr's key -> the variable holding it
        self.uses: dict[Any, int] = {}
        self.fresh_floats: set[str] = set()  # variables holding a new float array only this code made

    def count(self, e: Expr) -> None:
        stack = [e]
        while stack:
            node = stack.pop()
            self.uses[node.key] = self.uses.get(node.key, 0) + 1
            if self.uses[node.key] == 1 and node.key not in self.derived.forward_names:
                stack.extend(node.args)

    def fresh(self, base: str) -> str:
        base = base if base.isidentifier() else "t"
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def line(self, e: Expr, base: str, code: str, fresh_float: bool) -> str:
        name = self.fresh(self.derived.intermediate.get(e.key, base))
        self.lines.append(f"{name} = {code}")
        self.names[e.key] = name
        if fresh_float:
            self.fresh_floats.add(name)
        return name

    def name(self, e: Expr, base: str = "t") -> str:
        """The variable that holds ``e`` (a line written for it if needed)."""
        known = self.names.get(e.key) or self.derived.forward_names.get(e.key)
        if known is not None:
            return known
        return self.line(e, base, self.code(e), e.kind in _MAKES_A_FRESH_FLOAT)

    def operand(self, e: Expr) -> str:
        """``e`` as an operand: a name or a number, a line of its own if it is used more than once."""
        if e.kind == "num":
            return _number(e.attrs[0])
        if e.kind == "var":
            return str(e.attrs[0])
        known = self.names.get(e.key) or self.derived.forward_names.get(e.key)
        if known is not None:
            return known
        if self.uses.get(e.key, 0) > 1 or e.kind in ("softmax", "onehot", "sub", "matmul"):
            minus_y = e.kind == "sub" and e.args[1].kind == "onehot"
            return self.name(e, "P_minus_Y" if minus_y else _BASES.get(e.kind, "t"))
        code = self.code(e)
        return code if e.kind in ("transpose", "sum", "exp", "log") else f"({code})"

    def in_place(self, kind: str, a: Expr, b: Expr, shape: tuple[int, ...]) -> str | None:
        """``np.op(a, b, out=a)`` when ``a`` is a new float array of the result's shape read nowhere else."""
        if kind not in ELEMENTWISE_CODE or a.shape != shape or self.uses.get(a.key, 0) != 1:
            return None
        left = self.operand(a)
        if left not in self.fresh_floats:
            return None
        ufunc = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}[kind]
        self.fresh_floats.discard(left)
        return f"np.{ufunc}({left}, {self.operand(b)}, out={left})"

    def code(self, e: Expr) -> str:
        kind, args = e.kind, e.args
        if kind in ("var", "num"):
            return self.operand(e)
        if kind == "sub" and args[1].kind == "onehot" and args[1].args[0].kind == "var":
            where = self.derived.labels.get(str(args[1].args[0].attrs[0]))
            if where is not None and args[0].shape == e.shape:
                left = self.operand(args[0])
                if left not in self.fresh_floats or self.uses.get(args[0].key, 0) != 1:
                    left = f"{left}.copy()"
                self.fresh_floats.discard(left)
                return f"minus_onehot({left}, {where.positions})"
        if kind in ELEMENTWISE_CODE:
            a, b = args
            if kind == "mul" and a.kind == "num" and b.shape == e.shape:
                a, b = b, a  # the number last: c·X is computed as X * c
            if kind == "mul" and b.kind == "num" and _is_reciprocal(b.attrs[0]):
                kind, b = "div", num(1 / b.attrs[0])
            done = self.in_place(kind, a, b, e.shape)
            if done is not None:
                return done
            return f"{self.operand(a)} {ELEMENTWISE_CODE[kind]} {self.operand(b)}"
        x = args[0] if args else None
        if kind == "neg":
            return f"-{self.operand(x)}"  # type: ignore[arg-type]
        if kind == "pow":
            return f"{self.operand(x)} ** {_number(e.attrs[0])}"  # type: ignore[arg-type]
        if kind == "relu":
            return f"np.maximum({self.operand(x)}, 0)"  # type: ignore[arg-type]
        if kind == "gt":
            return f"{self.operand(args[0])} > {self.operand(args[1])}"
        if kind == "matmul":
            return f"product({self.operand(args[0])}, {self.operand(args[1])})"
        if kind == "transpose":
            axes = e.attrs[0]
            if len(axes) == 2:
                return f"{self.operand(x)}.T"  # type: ignore[arg-type]
            return f"np.transpose({self.operand(x)}, {axes})"  # type: ignore[arg-type]
        if kind == "sum":
            axes, keepdims = e.attrs
            return f"{self.operand(x)}.sum(axis={axes}, keepdims={keepdims})"  # type: ignore[arg-type]
        if kind == "expand":
            return f"np.broadcast_to({self.operand(x)}, {e.attrs[0]})"  # type: ignore[arg-type]
        if kind == "softmax":
            return self.softmax(x, e.attrs[0])  # type: ignore[arg-type]
        if kind == "onehot":
            where = self.derived.labels.get(str(x.attrs[0]))  # type: ignore[union-attr]
            if where is None:
                raise _NoCode("labels the program does not read")
            return f"onehot({where.positions}, {e.shape})"
        raise _NoCode(f"no code for {kind}")

    def softmax(self, a: Expr, axis: int) -> str:
        """softmax(a) as the forward's E / S if it has E = exp(a − m), S = Σ E (m constant along axis)."""
        for e, name in self.derived.exps:
            shifted = e.args[0]
            m = shifted.args[1]
            if shifted.args[0].key == a.key and (m.ndim == 0 or m.shape[axis] == 1):
                total = self.derived.sums.get(reduction("sum", e, axis, True).key)
                if total is not None:
                    return f"{name} / {total}"
        return f"softmax({self.operand(a)}, {axis})"


class _NoCode(Exception):
    pass


_BASES = {"softmax": "P", "onehot": "Y"}


def _scale_inside(e: Expr, uses: dict[Any, int]) -> Expr:
    """c·(A B) = (c·A) B and c·Σ A = Σ (c·A), with c put on the factor other gradients share.

    The identity "numbers out of a product" read backwards: the number then scales
    the shared factor once (``dZ = (P − Y)/N``), not each gradient made from it.
    """
    if e.kind == "mul" and e.args[0].kind == "num":
        c, x = e.args

        def scaled(a: Expr) -> Expr:
            return binary("mul", c, a)
    elif e.kind == "div" and e.args[1].kind == "num":
        x, c = e.args

        def scaled(a: Expr) -> Expr:
            return binary("div", a, c)
    else:
        return e
    if x.kind == "matmul":
        a, b = x.args
        if uses.get(b.key, 0) > uses.get(a.key, 0):
            return matmul(a, scaled(b))
        if uses.get(a.key, 0) > 1:
            return matmul(scaled(a), b)
    if x.kind == "sum" and uses.get(x.args[0].key, 0) > 1:
        return reduction("sum", scaled(x.args[0]), x.attrs[0], x.attrs[1])
    return e


def _is_reciprocal(c: Any) -> bool:
    from fractions import Fraction

    return isinstance(c, Fraction) and c.numerator == 1 and c.denominator > 1


def _number(c: Any) -> str:
    from fractions import Fraction

    if isinstance(c, Fraction):
        return str(c.numerator) if c.denominator == 1 else repr(c.numerator / c.denominator)
    return repr(float(c))


def derived_lines(
    derived: Derived, arg_names: list[str], shapes: dict[int, tuple[int, ...]], taken: set[str]
) -> tuple[list[str], dict[int, str]] | str:
    """The backward as lines from the formulas, and the variable of each argument's gradient."""
    coder = _Coder(derived, taken)
    for e in derived.grads.values():
        coder.count(e)
    derived.grads = {i: _scale_inside(e, coder.uses) for i, e in derived.grads.items()}
    coder.uses = {}
    for e in derived.grads.values():
        coder.count(e)
    names: dict[int, str] = {}
    try:
        for position, e in derived.grads.items():
            base = "d" + arg_names[position]
            shape = shapes[position]
            if e.kind in ("var", "num") or e.key in derived.forward_names or e.key in coder.names:
                code = f"np.array(np.broadcast_to({coder.operand(e)}, {shape}))"
                name = coder.fresh(base)
                coder.lines.append(f"{name} = {code}")
            else:
                name = coder.line(e, base, coder.code(e), False)
                if e.shape != shape:
                    coder.lines.append(f"{name} = np.array(np.broadcast_to({name}, {shape}))")
            names[position] = name
    except _NoCode as why:
        return str(why)
    return coder.lines, names
