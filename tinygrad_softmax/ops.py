"""The primitive operations: the table of local derivatives, each forward rule above its backward rule.

``forward`` computes an op's output from its inputs' arrays. ``backward(grad,
*inputs, out)`` is the chain rule at that op: it turns ``grad`` = ∂L/∂out
(shaped like the output) into ∂L/∂in for each input. Read top to bottom, the
list of ops is the list of local derivatives the derivation uses.

**Notation.** Every ``rule`` string (shown on the graph, in the ledger and in
the frames) is in VJP form: ``∂L/∂in = …``, what the backward returns, written
with ∂L/∂out; ``in`` or ``in₁``, ``in₂`` name the op's inputs and ``out`` its
output (in the code: ``x`` or ``a``, ``b`` and ``out``).

A rule is written once for every kind of :class:`~.contracts.Value` (arrays,
Tensors, the compiler's symbolic values) and uses only what ``Value`` names;
the adjoints that are not one-liners are ops of their own (:func:`expand`,
:func:`sum_to`, :func:`scatter_add`), and what is constant where it is
defined (relu's mask, max's winners) is read through :func:`constant`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import checks
from .adjoints import picked_positions, scatter, spread, unbroadcast
from .contracts import Grads, Op, Value, constant, is_recorded, record
from .matmul import as_matrices, as_vectors, product, transposed

Array = np.ndarray


# ---------------------------------------------------------------- elementwise


class Binary(Op):
    """An elementwise op of two inputs under NumPy broadcasting.

    Its rule returns gradients shaped like the broadcast output; the walk sums
    each back down to its input's shape (:func:`sum_to`, the derivation's ``db = Σ dZ``).
    """

    __slots__ = ()

    def explain(self, error: ValueError, *inputs: Array) -> ValueError:
        return checks.broadcastable(self.name, *inputs)


class Add(Binary):
    """out = in₁ + in₂."""

    __slots__ = ()
    name = "add"
    rule = "∂L/∂in₁ = ∂L/∂out, ∂L/∂in₂ = ∂L/∂out"

    def forward(self, a: Array, b: Array) -> Array:
        return a + b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        return grad, grad


class Sub(Binary):
    """out = in₁ − in₂."""

    __slots__ = ()
    name = "sub"
    rule = "∂L/∂in₁ = ∂L/∂out, ∂L/∂in₂ = −∂L/∂out"

    def forward(self, a: Array, b: Array) -> Array:
        return a - b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        return grad, (-grad if self.needs_grad[1] else None)


class Mul(Binary):
    """out = in₁ · in₂."""

    __slots__ = ()
    name = "mul"
    rule = "∂L/∂in₁ = ∂L/∂out · in₂, ∂L/∂in₂ = ∂L/∂out · in₁"

    def forward(self, a: Array, b: Array) -> Array:
        return a * b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        da = grad * b if self.needs_grad[0] else None
        db = grad * a if self.needs_grad[1] else None
        return da, db


class Div(Binary):
    """out = in₁ / in₂."""

    __slots__ = ()
    name = "div"
    rule = "∂L/∂in₁ = ∂L/∂out / in₂, ∂L/∂in₂ = −∂L/∂out · in₁/in₂²"

    def forward(self, a: Array, b: Array) -> Array:
        return a / b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        da = grad / b if self.needs_grad[0] else None
        db = -grad * a / (b * b) if self.needs_grad[1] else None
        return da, db


class Neg(Op):
    """out = −in."""

    __slots__ = ()
    name = "neg"
    rule = "∂L/∂in = −∂L/∂out"

    def forward(self, x: Array) -> Array:
        return -x

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (-grad,)


class Pow(Op):
    """out = in^p for a constant p."""

    __slots__ = ("exponent",)
    settings = ("exponent",)
    name = "pow"
    rule = "∂L/∂in = ∂L/∂out · p·in^(p−1)"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x: Array) -> Array:
        return x**self.exponent

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """d/dx xᵖ = p xᵖ⁻¹."""
        p = self.exponent
        if p == 0:  # in⁰ = 1 is constant, also at 0, where p·in^(p−1) would read 0·(1/0) = NaN
            return (grad * 0.0,)
        return (grad * p * x ** (p - 1),)


class Exp(Op):
    """out = exp(in), its own derivative (d/dx eˣ = eˣ): the rule reuses the output."""

    __slots__ = ()
    name = "exp"
    rule = "∂L/∂in = ∂L/∂out · out"

    def forward(self, x: Array) -> Array:
        return np.exp(x)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad * out,)


class Log(Op):
    """out = log(in); d/dx log x = 1/x."""

    __slots__ = ()
    name = "log"
    rule = "∂L/∂in = ∂L/∂out / in"

    def forward(self, x: Array) -> Array:
        return np.log(x)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad / x,)


class ReLU(Op):
    """out = max(in, 0). The mask ``in > 0`` is a constant: its derivative is 0 wherever it exists."""

    __slots__ = ()
    name = "relu"
    rule = "∂L/∂in = ∂L/∂out where in > 0, else 0"

    def forward(self, x: Array) -> Array:
        return np.maximum(x, 0)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad * (constant(x) > 0),)


# ---------------------------------------------------------------- matmul


class MatMul(Op):
    """out = in₁ in₂, a matrix product (batched over leading axes; vectors as in NumPy).

    In the derivation's Z = W X this rule gives dW = dZ Xᵀ.
    """

    __slots__ = ()
    name = "matmul"
    rule = "∂L/∂in₁ = ∂L/∂out · in₂ᵀ, ∂L/∂in₂ = in₁ᵀ · ∂L/∂out"

    def forward(self, a: Array, b: Array) -> Array:
        return product(a, b)

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        """∂L/∂A = ∂L/∂Z Bᵀ, ∂L/∂B = Aᵀ ∂L/∂Z: in the derivation's Z = W X, dW = dZ Xᵀ."""
        grad_, a_, b_ = as_matrices(grad, a, b)  # NumPy's vectors as 1-row (a) / 1-column (b) matrices
        da = product(grad_, transposed(b_)) if self.needs_grad[0] else None
        db = product(transposed(a_), grad_) if self.needs_grad[1] else None
        return (da, db) if a_ is a and b_ is b else as_vectors(da, db, a, b)

    def explain(self, error: ValueError, *inputs: Array) -> ValueError:
        return checks.aligned_for_matmul(*inputs)


# ---------------------------------------------------------------- reductions


class Reduce(Op):
    """Base of the reductions: the axes reduced (set by ``forward``) and keepdims."""

    __slots__ = ("axis", "keepdims", "axes")
    settings = ("axis", "keepdims")

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def reduced_axes(self, x: Array) -> tuple[int, ...]:
        """The axes of ``x`` this reduction runs over (also kept for the backward rule)."""
        axis, ndim = self.axis, x.ndim
        if axis is None:
            self.axes = tuple(range(ndim))
        elif type(axis) is int and -ndim <= axis < ndim:
            self.axes = (axis % ndim,)
        else:
            self.axes = checks.checked_axes(self.name, axis, x.shape)
        return self.axes

    def with_kept_axes(self, grad: Value, x: Value) -> Value:
        """``grad`` with the reduced axes back as size 1 (``keepdims=True``), so it broadcasts over ``x``."""
        if self.keepdims or grad.ndim == 0:  # already broadcasts (a 0-d grad broadcasts anywhere)
            return grad
        return grad.reshape(tuple([1 if i in self.axes else n for i, n in enumerate(x.shape)]))


class Sum(Reduce):
    """out = Σ in over the axes. Each entry fed one sum with weight 1."""

    __slots__ = ()
    name = "sum"
    rule = "∂L/∂in = ∂L/∂out copied along the summed axes"

    def forward(self, x: Array) -> Array:
        return x.sum(axis=self.reduced_axes(x), keepdims=self.keepdims)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """Each entry went into one sum with weight 1, so it gets that sum's gradient."""
        return (expand(self.with_kept_axes(grad, x), x.shape),)


class Mean(Reduce):
    """out = (1/n) Σ in over the axes, n the number of entries averaged into each output."""

    __slots__ = ("count",)
    name = "mean"
    rule = "∂L/∂in = ∂L/∂out / n copied along the averaged axes"

    def forward(self, x: Array) -> Array:
        axes = self.reduced_axes(x)
        self.count = math.prod([x.shape[i] for i in axes])  # n, the entries averaged into each output
        if self.count == 0:  # an empty batch along other axes is fine: its mean is empty too
            raise checks.reduced_axes_have_entries("mean", "average", self.axis, x.shape)
        return x.sum(axis=axes, keepdims=self.keepdims) / self.count

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """Each entry went into one mean with weight 1/n."""
        return (expand(self.with_kept_axes(grad, x) / self.count, x.shape),)


class Max(Reduce):
    """out = max in over the axes; the k entries that tie for the maximum share its gradient.

    Which entries win is a constant (it changes only where the max jumps).
    """

    __slots__ = ()
    name = "max"
    rule = "∂L/∂in = ∂L/∂out / k at each of the k maxima, else 0"

    def forward(self, x: Array) -> Array:
        axes = self.reduced_axes(x)
        if x.size == 0 and any(x.shape[i] == 0 for i in axes):  # NumPy too: a max of nothing
            raise checks.reduced_axes_have_entries("max", "take the max", self.axis, x.shape)
        return x.max(axis=axes, keepdims=self.keepdims)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """The max moves with each of its k winners by 1/k of the step; the others do not move it."""
        winners = constant(x) == self.with_kept_axes(constant(out), x)
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return (share * self.with_kept_axes(grad, x),)


# ---------------------------------------------------------------- indexing and shape


class Gather(Op):
    """out[i][j] = in[i][index[i][j]] (axis=1), PyTorch semantics. The positions are constants.

    ``index`` is already checked against the input (``Tensor.gather`` does it), and ``axis`` counts from 0.
    """

    __slots__ = ("axis", "index", "positions")
    name = "gather"
    rule = "∂L/∂in = ∂L/∂out added into zeros at the picked positions"

    def __init__(self, axis: int, index: Array) -> None:
        self.axis = axis
        self.index = index
        self.positions = picked_positions(index, axis)

    def forward(self, x: Array) -> Array:
        try:
            return x[self.positions]
        except IndexError:  # an index ≥ the size
            raise checks.index_in_range(self.index, x.shape, self.axis) from None

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """Each picked entry gets the gradient of the output it was copied to; the others get 0."""
        return (scatter_add(grad, self, x.shape),)

    @property
    def one_pick_per_line(self) -> bool:
        """``index`` has size 1 along ``axis`` (cross-entropy's labels): no position is picked twice."""
        return bool(self.index.shape[self.axis] == 1)

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "index": self.index.shape}


class Transpose(Op):
    """out = in with its axes permuted (reversed when no axes are given)."""

    __slots__ = ("axes", "order")
    name = "transpose"
    rule = "∂L/∂in = ∂L/∂out with the axes permuted back"

    def __init__(self, axes: tuple[int, ...] | None = None) -> None:
        self.axes = axes

    def forward(self, x: Array) -> Array:
        reversed_axes = tuple(range(x.ndim))[::-1]
        self.order = reversed_axes if self.axes is None else checks.permutation(self.axes, x.shape)
        return x.transpose(self.order)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad.transpose(tuple(np.argsort(self.order).tolist())),)

    def params(self) -> dict[str, Any]:
        return {"axes": self.axes} if self.axes is not None else {}


class Reshape(Op):
    """out = in with a new shape, the same entries in the same order."""

    __slots__ = ("shape",)
    settings = ("shape",)
    name = "reshape"
    rule = "∂L/∂in = ∂L/∂out reshaped to in's shape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        try:
            return x.reshape(self.shape)
        except (ValueError, TypeError):
            raise ValueError(
                f"reshape: cannot reshape shape {x.shape} ({x.size} elements) into {self.shape}"
            ) from None

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad.reshape(x.shape),)


# ------------------------------------------------------------ the adjoints, as ops (each the other's rule)


class Expand(Op):
    """out = in copied along its size-1 (or missing leading) axes out to ``shape``: the adjoint of sum."""

    __slots__ = ("shape",)
    settings = ("shape",)
    name = "expand"
    rule = "∂L/∂in = ∂L/∂out summed over the copies"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return spread(x, self.shape)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (sum_to(grad, x.shape),)


class SumTo(Op):
    """out = in summed down to ``shape`` over the axes broadcasting stretched: the adjoint of broadcasting."""

    __slots__ = ("shape",)
    settings = ("shape",)
    name = "sum_to"
    rule = "∂L/∂in = ∂L/∂out copied along the summed axes"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return np.asarray(unbroadcast(x, self.shape))

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (expand(grad, x.shape),)


class ScatterAdd(Op):
    """out = zeros of ``shape`` with in added at the positions a gather picked: the adjoint of gather."""

    __slots__ = ("picks", "shape")
    name = "scatter_add"
    rule = "∂L/∂in = ∂L/∂out gathered at the same positions"

    def __init__(self, picks: Gather, shape: tuple[int, ...]) -> None:
        self.picks = picks
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return scatter(x, self.picks.positions, self.shape, self.picks.one_pick_per_line)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (gather_at(grad, self.picks),)

    def params(self) -> dict[str, Any]:
        return {"axis": self.picks.axis, "shape": self.shape}


# ---------------------------------------------------------------- fused


class SoftmaxCrossEntropy(Op):
    """out = −(1/N) Σ_i log softmax(in_i)[y_i], the whole loss as one op; ∂L/∂z = (P − Y)/N.

    The fused form: its backward is the derivation's closed-form answer written
    in, instead of the chain rule through ``exp``, ``sum``, ``log`` and
    ``gather``. The lecture builds the loss from those primitives
    (``functional.cross_entropy``) so that ``p − y`` is seen to fall out; this
    op is the shortcut a library takes once that is shown. ``labels`` must
    already be checked (integers in [0, C), one per sample), ``axis`` count from 0.
    The forward keeps P for the backward; Y is 1 at each sample's label (``picks``).
    """

    __slots__ = ("axis", "labels", "picks", "count", "probs")
    name = "softmax_cross_entropy"
    rule = "∂L/∂in = ∂L/∂out · (p − y)/N, written in"

    def __init__(self, axis: int, labels: Array) -> None:
        self.axis = axis
        self.labels = labels
        self.picks = Gather(axis, labels.reshape((*labels.shape[:axis], 1, *labels.shape[axis:])))
        self.count = labels.size  # N, the number of samples

    def forward(self, z: Array) -> Array:
        # In place from here on: the array is this op's own, so no temporaries.
        probs = z - z.max(axis=self.axis, keepdims=True)  # shifted by the max, so exp() stays finite
        picked = probs[self.picks.positions]  # z_y, shifted, kept before exp overwrites it
        np.exp(probs, out=probs)
        total = probs.sum(axis=self.axis, keepdims=True)
        probs /= total
        self.probs = probs
        # −log p_y = log Σ_j exp(z_j) − z_y, both shifted by the same max
        return (np.log(total) - picked).sum() / self.count

    def backward(self, grad: Value, z: Value, out: Value) -> Grads:
        """(P − Y)/N · ∂L/∂out: P as the forward kept it, times the scale, less the scale at each label."""
        scale = grad / self.count
        return (subtract_at(softmax_of(z, self) * scale, self.picks, scale),)

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "labels": self.labels.shape}


class Softmax(Op):
    """out = softmax(in) along ``axis``: the fused loss's P when its backward is recorded."""

    __slots__ = ("axis",)
    settings = ("axis",)
    name = "softmax"
    rule = "∂L/∂in = out · (∂L/∂out − Σ ∂L/∂out · out), the sum along the axis"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Array) -> Array:
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        """The softmax Jacobian diag(p) − p pᵀ applied to ∂L/∂out, along the axis."""
        return (out * (grad - (grad * out).sum(axis=self.axis, keepdims=True)),)


# ---------------------------------------------------------------- the helpers the rules call


def sum_to(grad: Value, shape: tuple[int, ...]) -> Any:
    """``grad`` summed down to ``shape`` (:func:`unbroadcast`); :class:`SumTo` on a recording value."""
    if is_recorded(grad):
        return grad if grad.shape == shape else record(SumTo(shape), grad)
    return unbroadcast(grad, shape)  # type: ignore[arg-type]


def expand(grad: Value, shape: tuple[int, ...]) -> Any:
    """``grad`` copied out to ``shape`` (:func:`spread`); :class:`Expand` on a recording value."""
    return record(Expand(shape), grad) if is_recorded(grad) else spread(grad, shape)  # type: ignore[arg-type]


def scatter_add(grad: Value, picks: Gather, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``grad`` added where ``picks`` took its values (:class:`ScatterAdd`)."""
    if is_recorded(grad):
        return record(ScatterAdd(picks, shape), grad)
    return scatter(grad, picks.positions, shape, picks.one_pick_per_line)  # type: ignore[arg-type]


def gather_at(grad: Value, picks: Gather) -> Any:
    """``grad`` read at the positions ``picks`` took (:class:`Gather` again)."""
    return record(Gather(picks.axis, picks.index), grad) if is_recorded(grad) else grad[picks.positions]  # type: ignore[index]


def subtract_at(dz: Value, picks: Gather, values: Value) -> Any:
    """``dz`` less ``values`` at the positions ``picks`` took (``dz`` is the rule's own new array)."""
    if is_recorded(dz):
        return dz - record(ScatterAdd(picks, dz.shape), expand(values, picks.index.shape))
    dz[picks.positions] -= values  # type: ignore[index]
    return dz


def softmax_of(z: Value, fused: SoftmaxCrossEntropy) -> Any:
    """P = softmax(z): the one the fused forward kept; :class:`Softmax` on a recording value."""
    return record(Softmax(fused.axis), z) if is_recorded(z) else fused.probs
