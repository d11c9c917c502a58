"""The primitive operations, each a forward rule next to its backward rule.

``forward`` computes an op's output from its inputs' arrays. ``backward(grad,
*inputs, out)`` turns ``grad`` = ∂L/∂out (shaped like the output) into ∂L/∂in
for each input. Read top to bottom, the list of ops is the list of local
derivatives the derivation uses. In the ``rule`` strings (shown on the graph,
in the ledger and in the frames) ``in`` or ``in₁``, ``in₂`` name the op's inputs
and ``out`` its output; in the code they are ``x`` or ``a``, ``b`` and ``out``.

A backward rule is written once and works on two kinds of values:

- NumPy arrays: the inputs' and the output's data. This is the fast
  first-order path that ``Tensor.backward()`` takes.
- Tensors: the node's parents and the node itself. Every operation in the
  rule is then a recorded op, so the gradient it returns has a graph of its
  own and can be differentiated again (``grad(..., create_graph=True)``).

So a rule may only use operations that mean the same on both: arithmetic,
``@``, ``.T``, ``.transpose``, ``.reshape``, and the three adjoints below that
are not one-liners, each an op of its own with its own rule: :func:`expand`
(the adjoint of sum), :func:`sum_to` (the adjoint of broadcasting) and
:func:`scatter_add` (the adjoint of gather). Values that are constant where
they are defined (relu's mask, max's winners, gather's positions, counts) are
read through :func:`constant`: the derivative treats them as constants.

Elementwise ops return gradients shaped like the *broadcast* output; the engine
sums them back to each input's shape with :func:`sum_to`, in one place.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

Array = np.ndarray
# A value a backward rule computes with: an ndarray on the first-order path, a
# Tensor when the backward pass is itself recorded. (Any, because a rule uses
# only the operations both have.)
Value = Any
Grads = tuple[Value | None, ...]


# ---------------------------------------------------------------- arrays or tensors


_ARRAYS = (np.ndarray, np.generic)  # what the first-order path computes with


def is_tensor(value: Value) -> bool:
    """True on the recorded path (a Tensor), False on the first-order path (an array)."""
    # Asked for every gradient on the first-order path: the exact-type test answers it quickly.
    return type(value) is not np.ndarray and not isinstance(value, _ARRAYS)


def constant(value: Value) -> Array:
    """The plain array behind ``value``: what a rule reads here is a constant to the derivative.

    Used for what is piecewise constant (a mask, the positions of a maximum),
    whose own derivative is zero wherever it is defined.
    """
    return value.data if is_tensor(value) else value


def _record(op: Op, x: Tensor) -> Tensor:
    # `type(x)`: a Tensor records the op; the symbolic values of compiler/symbolic.py write it as code.
    return type(x)._apply(op, x)


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` back down to ``shape``: the adjoint of NumPy broadcasting.

    If ``b`` of shape (C, 1) was broadcast across N columns in ``Z = W X + b``,
    each of its entries fed N outputs, so its gradient is the sum of those N
    gradients. This line is the derivation's ``db = Σ_i dZ[:, i]``.
    """
    if grad.shape == shape:
        return grad
    given = grad.shape
    extra = grad.ndim - len(shape)
    if extra > 0:  # leading axes that broadcasting added
        grad = grad.sum(axis=tuple(range(extra)))
    elif extra < 0:  # fewer axes than the input: NumPy reads them as leading size-1 axes
        grad = grad.reshape((1,) * -extra + grad.shape)
    stretched = tuple([i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1])
    if stretched:  # size-1 axes that broadcasting stretched
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"unbroadcast: a gradient of shape {given} does not sum down to shape {shape}")
    return grad


def spread(grad: Array, shape: tuple[int, ...]) -> Array:
    """``grad`` copied along its size-1 (or missing leading) axes until it has ``shape``.

    A real array of its own (``np.broadcast_to`` would give a read-only view,
    which the engine would have to copy before storing it as a ``.grad``).
    """
    out = np.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


def sum_to(grad: Value, shape: tuple[int, ...]) -> Value:
    """``grad`` summed down to ``shape`` (:func:`unbroadcast`); recorded as :class:`SumTo` on a Tensor."""
    if is_tensor(grad):
        return grad if grad.shape == shape else _record(SumTo(shape), grad)
    return unbroadcast(grad, shape)


def expand(grad: Value, shape: tuple[int, ...]) -> Value:
    """``grad`` copied out to ``shape`` (:func:`spread`); recorded as :class:`Expand` on a Tensor."""
    if is_tensor(grad):
        return _record(Expand(shape), grad)
    return spread(grad, shape)


def scatter_add(grad: Value, picks: Gather, shape: tuple[int, ...]) -> Value:
    """Zeros of ``shape`` with ``grad`` added where ``picks`` took its values (:class:`ScatterAdd`)."""
    if is_tensor(grad):
        return _record(ScatterAdd(picks, shape), grad)
    return picks.scatter(grad, shape)


def gather_at(grad: Value, picks: Gather) -> Value:
    """``grad`` read at the positions ``picks`` took (:class:`Gather` again); recorded on a Tensor."""
    if is_tensor(grad):
        return _record(Gather(picks.axis, picks.index), grad)
    return grad[picks.positions]


# ---------------------------------------------------------------- the base class


class Op:
    """Base class of an operation recorded in the graph.

    ``name`` is what the graph shows, ``rule`` the local derivative (in the
    ``in``/``out`` notation above). When the tensor records the op it sets
    ``needs_grad[i]``, whether input ``i`` wants a gradient (so a rule can skip
    work nobody will use, ``dX`` of the data, say), and ``saved``, the
    inputs' and the output's arrays as the forward saw them, which the
    first-order path hands to ``backward``.
    """

    __slots__ = ("needs_grad", "saved")
    name = "op"
    rule = ""
    needs_grad: tuple[bool, ...]
    saved: tuple[Array, ...]

    # Each op spells out its own arguments: forward(x) or forward(a, b), and
    # backward(grad, x, out) or backward(grad, a, b, out).
    def forward(self, *args: Any, **kwargs: Any) -> Array:
        raise NotImplementedError

    def backward(self, *args: Any, **kwargs: Any) -> Grads:
        raise NotImplementedError

    def explain(self, error: ValueError, *inputs: Array) -> ValueError:
        """The error to show when ``forward`` raised ``error`` (the op's own words, naming the shapes)."""
        return error

    def params(self) -> dict[str, Any]:
        """The op's settings (axis, keepdims, ...), for labels and explanations."""
        return {}


# ---------------------------------------------------------------- elementwise


class Binary(Op):
    """An elementwise op of two inputs under NumPy broadcasting."""

    __slots__ = ()

    def explain(self, error: ValueError, *inputs: Array) -> ValueError:
        a, b = inputs
        return ValueError(f"{self.name}: shapes {a.shape} and {b.shape} cannot be broadcast together")


class Add(Binary):
    """out = in₁ + in₂."""

    __slots__ = ()
    name = "add"
    rule = "∂out/∂in₁ = 1, ∂out/∂in₂ = 1"

    def forward(self, a: Array, b: Array) -> Array:
        return a + b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        return grad, grad


class Sub(Binary):
    """out = in₁ − in₂."""

    __slots__ = ()
    name = "sub"
    rule = "∂out/∂in₁ = 1, ∂out/∂in₂ = −1"

    def forward(self, a: Array, b: Array) -> Array:
        return a - b

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        return grad, (-grad if self.needs_grad[1] else None)


class Mul(Binary):
    """out = in₁ · in₂."""

    __slots__ = ()
    name = "mul"
    rule = "∂out/∂in₁ = in₂, ∂out/∂in₂ = in₁"

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
    rule = "∂out/∂in₁ = 1/in₂, ∂out/∂in₂ = −in₁/in₂²"

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
    rule = "∂out/∂in = −1"

    def forward(self, x: Array) -> Array:
        return -x

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (-grad,)


class Pow(Op):
    """out = in^p for a constant p."""

    __slots__ = ("exponent",)
    name = "pow"
    rule = "∂out/∂in = p·in^(p−1)"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x: Array) -> Array:
        return x**self.exponent

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        p = self.exponent
        if p == 0:  # in⁰ = 1 is constant, also at 0, where p·in^(p−1) would read 0·(1/0) = NaN
            return (grad * 0.0,)
        return (grad * p * x ** (p - 1),)

    def params(self) -> dict[str, Any]:
        return {"exponent": self.exponent}


class Exp(Op):
    """out = exp(in), its own derivative: the rule reuses the output."""

    __slots__ = ()
    name = "exp"
    rule = "∂out/∂in = out"

    def forward(self, x: Array) -> Array:
        return np.exp(x)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad * out,)


class Log(Op):
    """out = log(in)."""

    __slots__ = ()
    name = "log"
    rule = "∂out/∂in = 1/in"

    def forward(self, x: Array) -> Array:
        return np.log(x)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad / x,)


class ReLU(Op):
    """out = max(in, 0). The mask ``in > 0`` is a constant: its derivative is 0 wherever it exists."""

    __slots__ = ()
    name = "relu"
    rule = "∂out/∂in = 1 where in > 0, else 0"

    def forward(self, x: Array) -> Array:
        return np.maximum(x, 0)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad * (constant(x) > 0),)


# ---------------------------------------------------------------- matmul


def _matrix_transpose(a: Value) -> Value:
    """Swap the last two axes: Aᵀ for a matrix, each Aᵀ in a batch."""
    return a.T if a.ndim == 2 else a.transpose((*range(a.ndim - 2), a.ndim - 1, a.ndim - 2))


def rows_first_is_slow(m: int, k: int, n: int) -> bool:
    """Whether ``(Bᵀ Aᵀ)ᵀ`` beats ``A B`` for an m×k by k×n product of matrices.

    NumPy hands both to the same BLAS routine (gemm), but ``A B`` fills a
    row-major m×n result and ``(Bᵀ Aᵀ)ᵀ`` a column-major one, which OpenBLAS
    computes with its blocking turned around. Measured (OpenBLAS, 1 thread,
    float64, every mix of C-ordered operands and ``.T`` views): for a wide,
    short result (m ≤ 32 rows, m < n) the turned product takes 0.55–0.94 of
    the time, e.g. the derivation's ``W X`` at 10×784 by 784×256: 0.12 ms
    instead of 0.20 ms, and ``dZ Xᵀ`` at 10×256 by 256×784: 0.13 ms instead of
    0.24 ms; for a tall, narrow result (784×10) it takes 1.1–1.8 times as
    long, and at 100×3072×1024 the two differ by less than the noise (±10%).
    Below about a million multiply-adds the call overhead dominates, so small
    products keep ``A B`` (and their bits).
    """
    return m <= 32 and m < n and m * k * n >= 1 << 20


def product(a: Value, b: Value) -> Value:
    """a @ b, computed the faster way round for matrices (see :func:`rows_first_is_slow`)."""
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) == 2 == len(b_shape) and rows_first_is_slow(a_shape[0], a_shape[1], b_shape[1]):
        return (b.T @ a.T).T
    return a @ b


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
        # Treat vectors as 1-row / 1-column matrices so one rule serves all ranks.
        a_vector, b_vector = a.ndim == 1, b.ndim == 1
        if a_vector:
            a = a.reshape((1, a.shape[0]))
        if b_vector:  # first, so that vector · vector (a 0-d grad) works too
            b = b.reshape((b.shape[0], 1))
            grad = grad.reshape((*grad.shape, 1))
        if a_vector:
            grad = grad.reshape((*grad.shape[:-1], 1, grad.shape[-1]))
        da = product(grad, _matrix_transpose(b)) if self.needs_grad[0] else None
        db = product(_matrix_transpose(a), grad) if self.needs_grad[1] else None
        if da is not None and a_vector:
            da = da.reshape((*da.shape[:-2], da.shape[-1]))
        if db is not None and b_vector:
            db = db.reshape(db.shape[:-1])
        return da, db

    def explain(self, error: ValueError, *inputs: Array) -> ValueError:
        a, b = inputs
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            return ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                f"(A's last dimension must equal B's {'second-to-' if b.ndim > 1 else ''}"
                "last dimension)"
            )
        return ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast")


# ---------------------------------------------------------------- reductions


def _normalize_axis(name: str, axis: int | tuple[int, ...] | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axis argument as a sorted tuple of non-negative axes, or a clear error."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the usual case, answered quickly
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)) or not all(
        isinstance(ax, (int, np.integer)) and not isinstance(ax, bool) for ax in axes
    ):
        raise TypeError(f"{name}: axis must be an integer or a tuple of integers, got {axis!r}")
    out = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{name}: axis {axis!r} is out of range for a tensor of shape {shape}")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


class Reduce(Op):
    """Base of the reductions: the axes reduced (set by ``forward``) and keepdims."""

    __slots__ = ("axis", "keepdims", "axes")

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def reduced_axes(self, x: Array) -> tuple[int, ...]:
        """The axes of ``x`` this reduction runs over (also kept for the backward rule)."""
        self.axes = _normalize_axis(self.name, self.axis, x.shape)
        return self.axes

    def with_kept_axes(self, grad: Value, x: Value) -> Value:
        """``grad`` reshaped with the reduced axes back as size-1 axes, so it broadcasts over ``x``.

        A reshape, nothing more: it is what ``keepdims=True`` would have given.
        """
        if self.keepdims or grad.ndim == 0:  # already broadcasts (a 0-d grad broadcasts anywhere)
            return grad
        return grad.reshape(tuple([1 if i in self.axes else n for i, n in enumerate(x.shape)]))

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "keepdims": self.keepdims}


class Sum(Reduce):
    """out = Σ in over the axes. Each entry fed one sum with weight 1."""

    __slots__ = ()
    name = "sum"
    rule = "∂L/∂in = ∂L/∂out copied along the summed axes"

    def forward(self, x: Array) -> Array:
        return x.sum(axis=self.reduced_axes(x), keepdims=self.keepdims)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
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
            raise ValueError(
                f"mean: cannot average over axis {self.axis!r} of shape {x.shape}: it has no entries"
            )
        return x.sum(axis=axes, keepdims=self.keepdims) / self.count

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (expand(self.with_kept_axes(grad, x) / self.count, x.shape),)


class Max(Reduce):
    """out = max in over the axes; the k entries that tie for the maximum share its gradient.

    Which entries win is a constant (it changes only where the max jumps).
    """

    __slots__ = ()
    name = "max"
    rule = "∂out/∂in = 1/k at each of the k maxima, else 0"

    def forward(self, x: Array) -> Array:
        axes = self.reduced_axes(x)
        if x.size == 0 and any(x.shape[i] == 0 for i in axes):  # NumPy too: a max of nothing
            raise ValueError(
                f"max: cannot take the max over axis {self.axis!r} of shape {x.shape}: it has no entries"
            )
        return x.max(axis=axes, keepdims=self.keepdims)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        winners = constant(x) == self.with_kept_axes(constant(out), x)
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return (share * self.with_kept_axes(grad, x),)


# ---------------------------------------------------------------- indexing and shape


def _picked_positions(index: Array, axis: int) -> tuple[Array, ...]:
    """NumPy fancy indices for ``x[..., index, ...]`` picked along ``axis``, PyTorch-gather style.

    One integer array per axis, all broadcasting to ``index``'s shape: ``index``
    itself along ``axis``, the running position 0, 1, 2, ... along every other axis.
    """
    ndim = index.ndim
    return tuple(
        index if d == axis else np.arange(n).reshape((n,) + (1,) * (ndim - d - 1))
        for d, n in enumerate(index.shape)
    )


def _out_of_range(index: Array, shape: tuple[int, ...], axis: int) -> IndexError:
    return IndexError(
        f"gather: index values must be in [0, {shape[axis]}) along axis {axis} "
        f"of input shape {shape}; got values from {index.min()} to {index.max()}"
    )


class Gather(Op):
    """out[i][j] = in[i][index[i][j]] (axis=1), PyTorch semantics. The positions are constants."""

    __slots__ = ("axis", "index", "checked", "positions", "one_pick_per_line")
    name = "gather"
    rule = "∂L/∂in = ∂L/∂out added into zeros at the picked positions"

    def __init__(self, axis: int, index: Array, checked: bool = False) -> None:
        self.axis = axis
        self.index = index
        # True when the caller has already checked ``index`` against the input (cross_entropy's
        # labels: integers in range, one per line, ``axis`` non-negative), so forward need not again.
        self.checked = checked

    def forward(self, x: Array) -> Array:
        index = self.index
        axis = self.axis if self.checked else self.check(x)
        self.positions = _picked_positions(index, axis)
        self.one_pick_per_line = index.shape[axis] == 1
        try:
            return x[self.positions]
        except IndexError:
            raise _out_of_range(index, x.shape, axis) from None

    def check(self, x: Array) -> int:
        """Raise unless ``index`` can pick from ``x``; return the axis, counted from 0."""
        index = self.index
        if index.dtype.kind not in "iu":  # signed or unsigned integers
            raise TypeError(f"gather: index must hold integers, got dtype {index.dtype}")
        if index.ndim != x.ndim:
            raise ValueError(
                f"gather: index must have the input's ndim {x.ndim}, "
                f"got index shape {index.shape} for input shape {x.shape}"
            )
        axis = _normalize_axis("gather", self.axis, x.shape)[0]
        for d, (n_index, n_x) in enumerate(zip(index.shape, x.shape)):
            if d != axis and n_index > n_x:
                raise ValueError(
                    f"gather: index shape {index.shape} is larger than input shape {x.shape} in dimension {d}"
                )
        # NumPy itself rejects an index ≥ the size, but would wrap a negative one around.
        if index.size and index.min() < 0:
            raise _out_of_range(index, x.shape, axis)
        return axis

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (scatter_add(grad, self, x.shape),)

    def scatter(self, values: Array, shape: tuple[int, ...]) -> Array:
        """Zeros of ``shape`` with ``values`` added at the picked positions.

        ``np.add.at`` *adds* when the same position was picked twice. With one
        pick per line (``index`` of size 1 along ``axis``, as in cross-entropy)
        no position can repeat, and a plain assignment does the same, faster.
        """
        out = np.zeros(shape, dtype=values.dtype)
        if self.one_pick_per_line:
            out[self.positions] = values
        else:
            np.add.at(out, self.positions, values)
        return out

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
        ndim = x.ndim
        if self.axes is None:
            self.order = tuple(range(ndim))[::-1]
        elif sorted(a % ndim if -ndim <= a < ndim else a for a in self.axes) == list(range(ndim)):
            self.order = tuple(a % ndim for a in self.axes)  # negative axes counted from the end
        else:
            raise ValueError(
                f"transpose: axes {self.axes} are not a permutation of the axes of shape {x.shape}"
            )
        return x.transpose(self.order)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad.transpose(tuple(np.argsort(self.order).tolist())),)

    def params(self) -> dict[str, Any]:
        return {"axes": self.axes} if self.axes is not None else {}


class Reshape(Op):
    """out = in with a new shape, the same entries in the same order."""

    __slots__ = ("shape",)
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

    def params(self) -> dict[str, Any]:
        return {"shape": self.shape}


# ---------------------------------------------------------------- the adjoints, as ops
# The rules above call these through expand(), sum_to() and scatter_add(): on
# arrays they run directly, on Tensors they are recorded so that a backward
# pass can be differentiated. Each one's adjoint is the op it is the adjoint of.


class Expand(Op):
    """out = in copied along its size-1 (or missing leading) axes out to ``shape``: the adjoint of sum."""

    __slots__ = ("shape",)
    name = "expand"
    rule = "∂L/∂in = ∂L/∂out summed over the copies"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return spread(x, self.shape)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (sum_to(grad, x.shape),)

    def params(self) -> dict[str, Any]:
        return {"shape": self.shape}


class SumTo(Op):
    """out = in summed down to ``shape`` over the axes broadcasting stretched: the adjoint of broadcasting."""

    __slots__ = ("shape",)
    name = "sum_to"
    rule = "∂L/∂in = ∂L/∂out copied along the summed axes"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return np.asarray(unbroadcast(x, self.shape))

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (expand(grad, x.shape),)

    def params(self) -> dict[str, Any]:
        return {"shape": self.shape}


class ScatterAdd(Op):
    """out = zeros of ``shape`` with in added at the positions a gather picked: the adjoint of gather."""

    __slots__ = ("picks", "shape")
    name = "scatter_add"
    rule = "∂L/∂in = ∂L/∂out gathered at the same positions"

    def __init__(self, picks: Gather, shape: tuple[int, ...]) -> None:
        self.picks = picks
        self.shape = shape

    def forward(self, x: Array) -> Array:
        return self.picks.scatter(x, self.shape)

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (gather_at(grad, self.picks),)

    def params(self) -> dict[str, Any]:
        return {"axis": self.picks.axis, "shape": self.shape}


# ---------------------------------------------------------------- fused


class SoftmaxCrossEntropy(Op):
    """out = −(1/N) Σ_i log softmax(in_i)[y_i], the whole loss as one op.

    The fused form: its backward is the derivation's closed-form answer written
    in, instead of the chain rule through ``exp``, ``sum``, ``log`` and
    ``gather``. The lecture builds the loss from those primitives
    (``functional.cross_entropy``) so that ``p − y`` is seen to fall out; this
    op is the shortcut a library takes once that is shown. ``labels`` must
    already be checked (integers in [0, C), one per sample).
    """

    __slots__ = ("axis", "labels", "positions", "count", "probs")
    name = "softmax_cross_entropy"
    rule = "∂out/∂in = (p − y)/N, written in"

    def __init__(self, axis: int, labels: Array) -> None:
        self.axis = axis
        self.labels = labels

    def forward(self, z: Array) -> Array:
        axis = _normalize_axis(self.name, self.axis, z.shape)[0]
        labels = self.labels
        picks = labels.reshape((*labels.shape[:axis], 1, *labels.shape[axis:]))  # one per sample
        self.positions = _picked_positions(picks, axis)
        self.count = labels.size  # N, the number of samples
        # In place from here on: the array is this op's own, so no temporaries.
        probs = z - z.max(axis=axis, keepdims=True)  # shifted by the max, so exp() stays finite
        picked = probs[self.positions]  # z_y, shifted, kept before exp overwrites it
        np.exp(probs, out=probs)
        total = probs.sum(axis=axis, keepdims=True)
        probs /= total
        self.probs = probs
        # −log p_y = log Σ_j exp(z_j) − z_y, both shifted by the same max
        return (np.log(total) - picked).sum() / self.count

    def backward(self, grad: Value, z: Value, out: Value) -> Grads:
        if is_tensor(z):
            # P recomputed from z with recorded ops (the max shift is a constant),
            # so that this gradient can itself be differentiated.
            e = (z - constant(z).max(axis=self.axis, keepdims=True)).exp()
            p = e / e.sum(axis=self.axis, keepdims=True)
            return ((p - self.one_hot()) * (grad / self.count),)
        scale = grad / self.count
        dz = self.probs * scale  # P/N ...
        dz[self.positions] -= scale  # ... − Y/N, where Y is 1 only at each sample's label
        return (dz,)

    def one_hot(self) -> Array:
        """Y: 1 at each sample's label, 0 elsewhere."""
        y = np.zeros_like(self.probs)
        y[self.positions] = 1
        return y

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "labels": self.labels.shape}
