"""From the recorded graph to the formula: the engine's backward rules run on symbolic values.

:func:`derive` walks the graph of a loss backwards exactly as the engine does
(reverse topological order, gradients added where a tensor feeds several ops,
summed back to an input's shape where broadcasting stretched it), but hands
each rule from ``ops.py`` :class:`~.expr.Expr` values instead of arrays. What
comes back is the gradient as a formula; :class:`~.simplify.Simplifier` then
applies its named identities. Every formula is computed with NumPy from the
graph's arrays and compared with the engine's own gradient before it is shown.

Two walks give two views: the *chain* view names the gradient of each named
intermediate (``∂L/∂W = ∂L/∂Z · Xᵀ``), the *expanded* view writes everything
in the forward values (``∂L/∂W = (1/N) (softmax(Z) − onehot(y)) · Xᵀ``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ... import engine, ops
from ...compiler.expr import (
    Expr,
    as_shape,
    evaluate,
    lift,
    num,
    onehot,
    var,
    walk,
)
from ...compiler.formula import add_parent_grads, forward_expr
from ...compiler.formula import rule_of as _rule_of
from ...compiler.simplify import Simplifier
from ...derivatives import grad as engine_grad
from ...functional import STEP_NAMES
from ...tensor import Tensor
from .render import Sizes, index_form, latex, unicode

TOLERANCE = 1e-12  # float64: the formula and the engine's gradient agree to this, entry by entry
# Atoms that mean the identities stopped before a closed form: the formula is shown, and said so.
UNSIMPLIFIED = ("exp", "log", "scatter", "gather", "max", "eq", "reshape", "sce")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class DerivationError(RuntimeError):
    """A derived formula disagrees with the engine's gradient (it is then never printed as a result)."""


@dataclass
class Formula:
    """∂L/∂``name`` as derived: the formula, what its entries are, and how well it matched the engine."""

    name: str
    expr: Expr
    shape: tuple[int, ...]
    error: float
    identities: list[str]
    simplified: bool
    letters: tuple[str, ...] = ()

    def lhs(self, latex_form: bool = False) -> str:
        return latex(var("dL/d" + self.name, 0.0)) if latex_form else unicode(var("dL/d" + self.name, 0.0))


@dataclass
class Derivation:
    """The formulas of one loss: definitions, the chain view, the expanded view, and the sizes' names."""

    title: str
    sizes: Sizes
    definitions: list[tuple[str, Expr]]
    chain: list[Formula]
    expanded: list[Formula]
    notes: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)

    @property
    def simplified(self) -> bool:
        return all(f.simplified for f in (*self.chain, *self.expanded))

    @property
    def worst_error(self) -> float:
        return max((f.error for f in (*self.chain, *self.expanded)), default=0.0)

    def formula(self, name: str, view: str = "expanded") -> Formula:
        for f in self.chain if view == "chain" else self.expanded:
            if f.name == name:
                return f
        raise KeyError(f"derive: no formula for ∂L/∂{name}")

    def index_line(self, f: Formula) -> str:
        """``∂L/∂W_cd = (1/N) Σₙ (p_cn − y_cn) x_dn``: one entry of the formula."""
        lhs = f.lhs() + ("_" + "".join(f.letters) if f.letters else "")
        return f"{lhs} = {index_form(f.expr, f.letters, self.sizes)}"


# ---------------------------------------------------------------- the forward values, as formulas


def display_name(t: Tensor, counter: list[int]) -> str:
    name = t.name or ""
    if name == "max (detached)":
        return "m"
    if _IDENTIFIER.match(name):
        return name
    counter[0] += 1
    return f"t{counter[0]}"


def _one_hot_labels(data: np.ndarray, axis: int) -> np.ndarray | None:
    """The labels of a constant that is a one-hot matrix along ``axis`` (one 1 per line, else 0)."""
    if data.ndim <= axis or data.size == 0 or not np.all((data == 0) | (data == 1)):
        return None
    if not np.all(data.sum(axis=axis) == 1):
        return None
    return np.asarray(data.argmax(axis=axis))


class Forward:
    """The formula of each tensor's value: named tensors are symbols, the rest their op on their inputs."""

    def __init__(self, class_axis: int) -> None:
        self.class_axis = class_axis
        self.exprs: dict[Tensor, Expr] = {}
        self.definitions: list[tuple[str, Expr]] = []
        self.counter = [0]
        self.names: dict[Tensor, str] = {}

    def of(self, t: Tensor) -> Expr:
        found = self.exprs.get(t)
        if found is not None:
            return found
        # Iterative: parents first, so a long chain needs no recursion.
        stack = [t]
        while stack:
            top = stack[-1]
            waiting = [p for p in top.parents if p not in self.exprs]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            if top not in self.exprs:
                self.exprs[top] = self._make(top)
        return self.exprs[t]

    def _make(self, t: Tensor) -> Expr:
        data = t._data
        fn = t.grad_fn
        if fn is None:
            hot = None if t.requires_grad else _one_hot_labels(data, self.class_axis)
            if hot is not None:
                return onehot(var("y", hot), self.class_axis, data.shape)
            if not t.requires_grad and not t.name and (data.ndim == 0 or np.all(data == data.flat[0])):
                return lift(data)  # a number written into the loss (2 * t, t / N) is that number
            name = display_name(t, self.counter)
            self.names[t] = name
            return var(name, data, constant=not t.requires_grad)
        value = forward_expr(fn, [self.exprs[p] for p in t.parents])
        # cross_entropy's steps carry the derivation's names (exp, L) for the pictures; here they stay
        # formulas, so that softmax and the loss are recognised in them.
        if t.name and t.name not in STEP_NAMES and _IDENTIFIER.match(t.name):
            self.names[t] = t.name
            self.definitions.append((t.name, value))
            return var(t.name, data)
        return value


# ---------------------------------------------------------------- the backward walk on formulas


def backward_formulas(
    loss: Tensor, forward: Forward, stop_at: set[Tensor] | None = None, simplifier: Simplifier | None = None
) -> tuple[dict[Tensor, Expr], dict[Tensor, tuple[Expr, list[str]]]]:
    """∂L/∂t for every tensor t of the graph that requires grad, as formulas (``engine._chain_rule``).

    With ``stop_at``, the gradient of each of those tensors is simplified when
    complete and passed on as a symbol ∂L/∂name (the chain view). Returns the
    raw formulas and, for ``stop_at``, the simplified ones.
    """
    grads: dict[Tensor, Expr] = {loss: num(1)}
    done: dict[Tensor, Expr] = {}
    named: dict[Tensor, tuple[Expr, list[str]]] = {}
    for node in reversed(engine.topological_order(loss)):
        g = grads.pop(node, None)
        if g is None:
            continue
        done[node] = g
        fn = node.grad_fn
        if fn is None:
            continue
        if stop_at is not None and node in stop_at and simplifier is not None:
            simplifier.used = []
            simple = simplifier.simplify(g)
            named[node] = (simple, list(simplifier.used))
            value = as_shape(evaluate(simple), node._data.shape)
            g = var("dL/d" + forward.names[node], value)
        inputs = [forward.of(p) for p in node.parents]
        out = forward.of(node)
        rule = _rule_of(fn, inputs[0])
        add_parent_grads(grads, node, rule.backward(g, *inputs, out))
    return done, named


def _is_simplified(e: Expr) -> bool:
    return not any(
        node.kind in UNSIMPLIFIED or (node.kind == "var" and node.attrs[0].startswith("K("))
        for node in walk(e)
    )


def derive(
    loss: Tensor,
    wrt: Sequence[Tensor],
    class_axis: int,
    sizes: Sizes,
    title: str = "",
    letters: dict[str, tuple[str, ...]] | None = None,
) -> Derivation:
    """The formulas of ∂loss/∂t for each t in ``wrt`` (named tensors), checked against the engine.

    Raises :class:`DerivationError` if a formula differs from the engine's
    gradient by more than :data:`TOLERANCE` in some entry.
    """
    if loss.shape != ():
        raise ValueError(f"derive: the loss must be a scalar, got shape {loss.shape}")
    for t in wrt:
        if not (t.name and _IDENTIFIER.match(t.name)):
            raise ValueError(
                "derive: every tensor to differentiate by needs a name (a letter, then letters or digits), "
                f"got {t.name!r}"
            )
        if not t.requires_grad:
            raise ValueError(f"derive: {t.name} does not require grad, so the loss has no gradient by it")
    engine_grads = dict(zip(wrt, engine_grad(loss, list(wrt))))
    letters = letters or {}

    def formulas(view: str) -> tuple[list[Formula], Forward]:
        forward = Forward(class_axis)
        forward.of(loss)
        simplifier = Simplifier()
        intermediates = {t for t in wrt if t.grad_fn is not None}
        raw, named = backward_formulas(loss, forward, intermediates if view == "chain" else None, simplifier)
        out = []
        for t in wrt:
            expected = engine_grads[t]
            if expected is None or t not in raw:
                raise ValueError(f"derive: the loss does not depend on {t.name}")
            simplifier.used = []
            expr, used = named[t] if t in named else (simplifier.simplify(raw[t]), simplifier.used)
            got = as_shape(evaluate(expr), t._data.shape)
            error = float(np.max(np.abs(got - expected.data))) if got.size else 0.0
            assert t.name is not None
            if not error <= TOLERANCE:  # NaN counts as a mismatch
                raise DerivationError(
                    f"derive: the formula for ∂L/∂{t.name} differs from the engine's gradient by {error:.3g} "
                    f"(more than {TOLERANCE:g}): {unicode(expr, sizes)}"
                )
            out.append(
                Formula(
                    t.name,
                    expr,
                    t._data.shape,
                    error,
                    list(used),
                    _is_simplified(expr),
                    letters.get(t.name, ()),
                )
            )
        return out, forward

    chain, forward = formulas("chain")
    expanded, _ = formulas("expanded")
    return Derivation(title, sizes, forward.definitions, chain, expanded)


# ---------------------------------------------------------------- where the factors come from


def shape_text(shape: tuple[int, ...], sizes: Sizes) -> str:
    """(3, 4) as C×D."""
    return "×".join(sizes.name(n) or str(n) for n in shape) if shape else "a number"


def _passed_on_name(node: Tensor, users: dict[Tensor, list[tuple[Tensor, int]]]) -> str:
    """The node's name, or that of the add it feeds (add passes the gradient on unchanged): W X → Z."""
    if node.name:
        return node.name
    after = users.get(node, [])
    if len(after) == 1 and after[0][0].grad_fn is not None and after[0][0].op == "add" and after[0][0].name:
        return str(after[0][0].name)
    return "out"


def origins(loss: Tensor, wrt: Sequence[Tensor], sizes: Sizes) -> list[str]:
    """Which rule brings the 1/N, each transpose and each sum over the batch, read from the graph."""
    lines: list[str] = []
    order = engine.topological_order(loss)
    samples = next((n for n, name in sizes.names.items() if name == "N"), None)
    for node in reversed(order):  # from the loss down: the first division by N is where 1/N enters
        fn = node.grad_fn
        if fn is None:
            continue
        if isinstance(fn, ops.Mean) and fn.count == samples:
            lines.append(
                f"1/N: the mean's rule ({fn.rule}, n = N = {samples}, the samples averaged); "
                "every later rule only carries the factor along"
            )
            break
        if fn.name == "div" and node.parents[1].grad_fn is None and node.parents[1]._data.size == 1:
            divisor = float(node.parents[1]._data.reshape(-1)[0])
            if divisor == samples:
                lines.append(
                    f"1/N: the division's rule ({fn.rule}, in₂ = N = {samples}); "
                    "every later rule only carries the factor along"
                )
                break
    users: dict[Tensor, list[tuple[Tensor, int]]] = {}
    for node in order:
        for i, parent in enumerate(node.parents):
            users.setdefault(parent, []).append((node, i))
    for t in wrt:
        for node, i in users.get(t, []):
            fn = node.grad_fn
            assert fn is not None and t.name is not None
            out = _passed_on_name(node, users)
            if isinstance(fn, ops.MatMul):
                a, b = (p.name or "·" for p in node.parents)
                other = node.parents[1 - i]
                grad = f"∂L/∂{out} · {other.name}ᵀ" if i == 0 else f"{other.name}ᵀ · ∂L/∂{out}"
                lines.append(
                    f"ᵀ in ∂L/∂{t.name}: {t.name} is in{'₁₂'[i]} of the matmul {a} · {b}, whose rule is "
                    f"{fn.rule}: ∂L/∂{t.name} = {grad}; it has {t.name}'s own shape "
                    f"{shape_text(t.shape, sizes)}, from ∂L/∂{out} ({shape_text(node.shape, sizes)}) and "
                    f"{other.name} ({shape_text(other.shape, sizes)})"
                )
            elif fn.name == "add" and t.shape != node.shape:
                lines.append(
                    f"Σ in ∂L/∂{t.name}: add's rule passes ∂L/∂{out} on unchanged, but {t.name} "
                    f"({shape_text(t.shape, sizes)}) was broadcast to {shape_text(node.shape, sizes)}, "
                    f"so the engine sums the gradient back to {t.name}'s shape "
                    "(ops.unbroadcast, the adjoint of broadcasting)"
                )
    return lines


def formula_lines(loss: Tensor, logits: Tensor, axis: int) -> list[str]:
    """The chain view for a viewer (the explorer's last view): ∂L/∂Z, then each named parameter's.

    The sizes are named from the logits (C along ``axis``, N along the other) and the
    parameters' other dimension (D); a size that would be ambiguous is written as its number.
    """
    from .render import unicode

    params = [t for t in engine.topological_order(loss) if t.grad_fn is None and t.name and t.requires_grad]
    params = [t for t in params if _IDENTIFIER.match(t.name or "")]
    names: dict[int, str] = {}
    if logits.ndim == 2:
        C, N = logits.shape[axis % 2], logits.shape[1 - axis % 2]
        names = {C: "C", N: "N"} if C != N else {}
        others = {n for t in params for n in t.shape} - {C, N, 1}
        if len(others) == 1 and names:
            names[others.pop()] = "D"
    name = logits.name if logits.name and _IDENTIFIER.match(logits.name) else None
    if name is None:
        raise ValueError("derive: the logits need a name to be written in a formula")
    d = derive(loss, [logits, *params], axis % logits.ndim, Sizes(names))
    return [f"{f.lhs()} = {unicode(f.expr, d.sizes)}" for f in d.chain]
