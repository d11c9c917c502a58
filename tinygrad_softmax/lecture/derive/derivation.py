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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import engine, ops
from ...derivatives import grad as engine_grad
from ...tensor import Tensor
from .expr import Expr, as_shape, binary, evaluate, gather, lift, matmul, num, onehot, reduction, sum_to, var, walk
from .render import Sizes, index_form, latex, unicode
from .simplify import Simplifier

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
        if t.name and _IDENTIFIER.match(t.name):
            self.names[t] = t.name
            self.definitions.append((t.name, value))
            return var(t.name, data)
        return value


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
        return x ** fn.exponent  # type: ignore[attr-defined]
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


def _rule_of(fn: ops.Op, z: Expr) -> ops.Op:
    if not isinstance(fn, ops.SoftmaxCrossEntropy):
        return fn
    shadow = _SymbolicOneHot(fn.axis, fn.labels)
    shadow.needs_grad = fn.needs_grad
    shadow.count = fn.count
    shadow.hot = onehot(var("y", fn.labels), fn.axis, z.shape)
    return shadow


# ---------------------------------------------------------------- the backward walk on formulas


def backward_formulas(
    loss: Tensor, forward: Forward, stop_at: set[Tensor] | None = None, simplifier: Simplifier | None = None
) -> tuple[dict[Tensor, Expr], dict[Tensor, Expr]]:
    """∂L/∂t for every tensor t of the graph that requires grad, as formulas (``engine._chain_rule``).

    With ``stop_at``, the gradient of each of those tensors is simplified when
    complete and passed on as a symbol ∂L/∂name (the chain view). Returns the
    raw formulas and, for ``stop_at``, the simplified ones.
    """
    grads: dict[Tensor, Expr] = {loss: num(1)}
    done: dict[Tensor, Expr] = {}
    named: dict[Tensor, Expr] = {}
    for node in reversed(engine.topological_order(loss)):
        g = grads.pop(node, None)
        if g is None:
            continue
        done[node] = g
        fn = node.grad_fn
        if fn is None:
            continue
        if stop_at is not None and node in stop_at and simplifier is not None:
            simple = simplifier.simplify(g)
            named[node] = simple
            value = as_shape(evaluate(simple), node._data.shape)
            g = var("dL/d" + forward.names[node], value)
        inputs = [forward.of(p) for p in node.parents]
        out = forward.of(node)
        rule = _rule_of(fn, inputs[0])
        for parent, parent_grad in zip(node.parents, rule.backward(g, *inputs, out)):
            if parent_grad is None or not parent.requires_grad:
                continue
            if not isinstance(parent_grad, Expr):
                parent_grad = lift(parent_grad)
            if parent_grad.shape != parent._data.shape:
                parent_grad = ops.sum_to(parent_grad, parent._data.shape)
            earlier = grads.get(parent)
            grads[parent] = parent_grad if earlier is None else earlier + parent_grad
    return done, named


def _is_simplified(e: Expr) -> bool:
    return not any(
        node.kind in UNSIMPLIFIED or (node.kind == "var" and node.attrs[0].startswith("K(")) for node in walk(e)
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
            raise ValueError(f"derive: every tensor to differentiate by needs a name (a letter, then letters or digits), got {t.name!r}")
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
            expr = named[t] if t in named else simplifier.simplify(raw[t])
            got = as_shape(evaluate(expr), t._data.shape)
            error = float(np.max(np.abs(got - expected.data))) if got.size else 0.0
            assert t.name is not None
            if not error <= TOLERANCE:  # NaN counts as a mismatch
                raise DerivationError(
                    f"derive: the formula for ∂L/∂{t.name} differs from the engine's gradient by {error:.3g} "
                    f"(more than {TOLERANCE:g}): {unicode(expr, sizes)}"
                )
            out.append(
                Formula(t.name, expr, t._data.shape, error, list(simplifier.used), _is_simplified(expr),
                        letters.get(t.name, ()))
            )
        return out, forward

    chain, forward = formulas("chain")
    expanded, _ = formulas("expanded")
    return Derivation(title, sizes, forward.definitions, chain, expanded)


# ---------------------------------------------------------------- the lecture's models and losses


LossFn = Callable[[Tensor, np.ndarray, int], Tensor]


def _picked_log_p(log_p: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    picks = np.expand_dims(labels, axis)
    return log_p.gather(axis, picks)


def _log_softmax_lse(Z: Tensor, axis: int) -> Tensor:
    """log p = Z − logsumexp(Z), logsumexp(Z) = m + log Σ exp(Z − m)."""
    m = Z.detach().max(axis=axis, keepdims=True)
    m.name = "max (detached)"
    return Z - (m + (Z - m).exp().sum(axis=axis, keepdims=True).log())


def _log_softmax_unshifted(Z: Tensor, axis: int) -> Tensor:
    return Z - Z.exp().sum(axis=axis, keepdims=True).log()


def _one_hot(Z: Tensor, labels: np.ndarray, axis: int) -> np.ndarray:
    from ...analytic import one_hot

    C = Z.shape[axis]
    return one_hot(labels, C, axis=axis)


def _cross_entropy(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    return F.cross_entropy(Z, labels, axis=axis)


def _logsumexp(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    return -_picked_log_p(_log_softmax_lse(Z, axis), labels, axis).mean()


def _no_shift(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    return -_picked_log_p(_log_softmax_unshifted(Z, axis), labels, axis).mean()


def _sum_over_n(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    return -_picked_log_p(F.log_softmax(Z, axis), labels, axis).sum() / labels.size


def _one_hot_product(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    Y = Tensor(_one_hot(Z, labels, axis), name="Y")
    return -(Y * F.log_softmax(Z, axis)).sum() / labels.size


LABEL_SMOOTHING = 0.1


def _label_smoothing(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    C = Z.shape[axis]
    q = Tensor((1 - LABEL_SMOOTHING) * _one_hot(Z, labels, axis) + LABEL_SMOOTHING / C, name="q")
    return -(q * F.log_softmax(Z, axis)).sum() / labels.size


def class_weights(C: int) -> np.ndarray:
    """The weight of each class in the class-weighted loss: 1, 2, 3, ... (fixed, so the formula is reproducible)."""
    return np.arange(1.0, C + 1.0)


def _class_weighted(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    picked = _picked_log_p(F.log_softmax(Z, axis), labels, axis)
    weights = np.expand_dims(class_weights(Z.shape[axis])[labels], axis)
    w = Tensor(weights, name="w")
    total = Tensor(weights.sum(), name="K")
    return -(w * picked).sum() / total


def _squared_error(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    Y = Tensor(_one_hot(Z, labels, axis), name="Y")
    return ((F.softmax(Z, axis) - Y) ** 2).sum() / labels.size


@dataclass(frozen=True)
class LossVariant:
    name: str
    summary: str
    fn: LossFn
    legend: tuple[str, ...] = ()


LOSSES: dict[str, LossVariant] = {
    v.name: v
    for v in (
        LossVariant("cross-entropy", "F.cross_entropy: log-softmax (max-shifted), gather, mean", _cross_entropy),
        LossVariant("logsumexp", "log p = Z − logsumexp(Z), logsumexp = m + log Σ exp(Z − m)", _logsumexp),
        LossVariant("no-shift", "log p = Z − log Σ exp(Z), no max shift", _no_shift),
        LossVariant("sum-over-n", "−(Σ log p_y)/N instead of the mean", _sum_over_n),
        LossVariant("one-hot-product", "−Σ(Y ⊙ log p)/N instead of gather", _one_hot_product),
        LossVariant(
            "label-smoothing",
            f"−Σ(q ⊙ log p)/N, q = (1 − ε)·onehot(y) + ε/C, ε = {LABEL_SMOOTHING}",
            _label_smoothing,
            (f"q = (1 − ε)·onehot(y) + ε/C, ε = {LABEL_SMOOTHING}",),
        ),
        LossVariant(
            "class-weighted",
            "−Σₙ w_yₙ log p_yₙ / Σₙ w_yₙ, class weights 1, 2, ..., C",
            _class_weighted,
            ("w = the weight of each sample's class (1, 2, ..., C)", "K = Σₙ w"),
        ),
        LossVariant("squared-error", "Σ(softmax(Z) − Y)²/N, squared error on the softmax output", _squared_error),
    )
}


@dataclass(frozen=True)
class Problem:
    """The sizes and the random seed of one derivation."""

    layout: str = "column"
    model: str = "linear"
    samples: int = 5
    classes: int = 3
    features: int = 4
    hidden: int = 6
    seed: int = 0

    def sizes(self) -> Sizes:
        named = {"N": self.samples, "C": self.classes, "D": self.features}
        if self.model == "mlp":
            named["H"] = self.hidden
        values = list(named.values())
        if len(set(values)) != len(values):
            given = ", ".join(f"{k} = {v}" for k, v in named.items())
            raise ValueError(
                f"derive: the sizes must differ from each other, so that each is named in the formula; got {given}"
            )
        return Sizes({v: k for k, v in named.items()})


def _tensor(rng: np.random.Generator, shape: tuple[int, ...], name: str, requires_grad: bool) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=requires_grad, name=name)


def derive_model(problem: Problem, loss: str = "cross-entropy") -> Derivation:
    """Build the model on random float64 inputs, record the loss, and derive its formulas."""
    sizes = problem.sizes()
    if loss not in LOSSES:
        raise ValueError(f"derive: unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    if problem.layout not in ("column", "row"):
        raise ValueError(f"derive: layout must be 'column' or 'row', got {problem.layout!r}")
    if problem.model not in ("linear", "mlp"):
        raise ValueError(f"derive: model must be 'linear' or 'mlp', got {problem.model!r}")
    rng = np.random.default_rng(problem.seed)
    N, C, D, H = problem.samples, problem.classes, problem.features, problem.hidden
    labels = rng.integers(0, C, size=N)
    column = problem.layout == "column"
    axis = 0 if column else 1
    # (rows, columns) of each weight, in the layout's orientation
    def weight(name: str, fan_in: int, fan_out: int) -> Tensor:
        return _tensor(rng, (fan_out, fan_in) if column else (fan_in, fan_out), name, True)

    def bias(name: str, size: int) -> Tensor:
        return _tensor(rng, (size, 1) if column else (size,), name, True)

    def affine(W: Tensor, inputs: Tensor, b: Tensor, name: str) -> Tensor:
        out = (W @ inputs if column else inputs @ W) + b
        out.name = name
        return out

    X = Tensor(rng.normal(size=(D, N) if column else (N, D)), name="X")
    letters: dict[str, tuple[str, ...]]
    if problem.model == "linear":
        W, b = weight("W", D, C), bias("b", C)
        Z = affine(W, X, b, "Z")
        wrt = [Z, W, b]
        letters = {"Z": ("c", "n"), "W": ("c", "d"), "b": ("c",)} if column else {"Z": ("n", "c"), "W": ("d", "c"), "b": ("c",)}
    else:
        W1, b1 = weight("W1", D, H), bias("b1", H)
        W2, b2 = weight("W2", H, C), bias("b2", C)
        Z1 = affine(W1, X, b1, "Z1")
        Hid = Z1.relu()
        Hid.name = "H"
        Z = affine(W2, Hid, b2, "Z2")
        wrt = [Z, W2, b2, Hid, Z1, W1, b1]
        if column:
            letters = {"Z2": ("c", "n"), "W2": ("c", "h"), "b2": ("c",), "H": ("h", "n"), "Z1": ("h", "n"),
                       "W1": ("h", "d"), "b1": ("h",)}
        else:
            letters = {"Z2": ("n", "c"), "W2": ("h", "c"), "b2": ("c",), "H": ("n", "h"), "Z1": ("n", "h"),
                       "W1": ("d", "h"), "b1": ("h",)}
    variant = LOSSES[loss]
    L = variant.fn(Z, labels, axis)
    title = f"{'the linear softmax classifier' if problem.model == 'linear' else 'the two-layer net'}, {problem.layout} layout, {variant.name}"
    derivation = derive(L, wrt, axis, sizes, title, letters)
    derivation.notes.extend(variant.legend)
    return derivation
