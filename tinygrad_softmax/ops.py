"""The primitive operations, each a forward rule next to its backward rule.

Every op works on plain NumPy arrays. ``forward`` computes the output and keeps
what the backward rule will need; ``backward`` turns the gradient of the loss
with respect to the output (``grad``, shaped like the output) into the gradient
with respect to each input. Read top to bottom, the list of ops is the list of
local derivatives the seed's derivation uses.

Elementwise ops return gradients shaped like the *broadcast* output; the engine
sums them back to each input's shape with :func:`unbroadcast`, in one place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = np.ndarray
Grads = tuple[Array | None, ...]


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` back down to ``shape``: the adjoint of NumPy broadcasting.

    If ``b`` of shape (C, 1) was broadcast across N columns in ``Z = W X + b``,
    each of its entries fed N outputs, so its gradient is the sum of those N
    gradients. This line is the seed's ``db = Σ_i dZ[:, i]``.
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
    """``grad`` copied along its size-1 axes until it has ``shape``: the adjoint of a sum.

    A real array of its own (``np.broadcast_to`` would give a read-only view,
    which the engine would have to copy before storing it as a ``.grad``).
    """
    out = np.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


class Op:
    """Base class of an operation recorded in the graph.

    ``name`` is what the graph shows, ``rule`` the local derivative in math.
    ``needs_grad[i]`` says whether input ``i`` wants a gradient, so a backward
    rule can skip work nobody will use (``dX`` of the data, say); the tensor
    sets it when it records the op.
    """

    __slots__ = ("needs_grad",)
    name = "op"
    rule = ""
    needs_grad: tuple[bool, ...]

    def forward(self, *inputs: Array) -> Array:
        raise NotImplementedError

    def backward(self, grad: Array) -> Grads:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The op's settings (axis, keepdims, ...), for labels and explanations."""
        return {}


# ---------------------------------------------------------------- elementwise


class Binary(Op):
    """An elementwise op of two inputs under NumPy broadcasting."""

    __slots__ = ("a", "b")

    def forward(self, *inputs: Array) -> Array:
        self.a, self.b = inputs
        try:
            return self.compute(self.a, self.b)
        except ValueError:
            raise ValueError(
                f"{self.name}: shapes {self.a.shape} and {self.b.shape} cannot be broadcast together"
            ) from None

    def compute(self, a: Array, b: Array) -> Array:
        raise NotImplementedError


class Add(Binary):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    __slots__ = ()
    name = "add"
    rule = "∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1"

    def compute(self, a: Array, b: Array) -> Array:
        return a + b

    def backward(self, grad: Array) -> Grads:
        return grad, grad


class Sub(Binary):
    """z = a − b;  dz/da = 1, dz/db = −1."""

    __slots__ = ()
    name = "sub"
    rule = "∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1"

    def compute(self, a: Array, b: Array) -> Array:
        return a - b

    def backward(self, grad: Array) -> Grads:
        return grad, (-grad if self.needs_grad[1] else None)


class Mul(Binary):
    """z = a · b;  dz/da = b, dz/db = a."""

    __slots__ = ()
    name = "mul"
    rule = "∂(a·b)/∂a = b, ∂(a·b)/∂b = a"

    def compute(self, a: Array, b: Array) -> Array:
        return a * b

    def backward(self, grad: Array) -> Grads:
        da = grad * self.b if self.needs_grad[0] else None
        db = grad * self.a if self.needs_grad[1] else None
        return da, db


class Div(Binary):
    """z = a / b;  dz/da = 1/b, dz/db = −a/b²."""

    __slots__ = ()
    name = "div"
    rule = "∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²"

    def compute(self, a: Array, b: Array) -> Array:
        return a / b

    def backward(self, grad: Array) -> Grads:
        da = grad / self.b if self.needs_grad[0] else None
        db = -grad * self.a / (self.b * self.b) if self.needs_grad[1] else None
        return da, db


class Neg(Op):
    """z = −x;  dz/dx = −1."""

    __slots__ = ()
    name = "neg"
    rule = "∂(−x)/∂x = −1"

    def forward(self, *inputs: Array) -> Array:
        return -inputs[0]

    def backward(self, grad: Array) -> Grads:
        return (-grad,)


class Pow(Op):
    """z = x^p for a constant p;  dz/dx = p · x^(p−1)."""

    __slots__ = ("x", "exponent")
    name = "pow"
    rule = "∂(x^p)/∂x = p·x^(p−1)"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, *inputs: Array) -> Array:
        self.x = inputs[0]
        return self.x**self.exponent

    def backward(self, grad: Array) -> Grads:
        p = self.exponent
        return (grad * p * self.x ** (p - 1),)

    def params(self) -> dict[str, Any]:
        return {"exponent": self.exponent}


class Exp(Op):
    """z = exp(x);  dz/dx = exp(x) = z."""

    __slots__ = ("out",)
    name = "exp"
    rule = "∂exp(x)/∂x = exp(x)"

    def forward(self, *inputs: Array) -> Array:
        self.out = np.exp(inputs[0])
        return self.out

    def backward(self, grad: Array) -> Grads:
        return (grad * self.out,)


class Log(Op):
    """z = log(x);  dz/dx = 1/x."""

    __slots__ = ("x",)
    name = "log"
    rule = "∂log(x)/∂x = 1/x"

    def forward(self, *inputs: Array) -> Array:
        self.x = inputs[0]
        return np.log(self.x)

    def backward(self, grad: Array) -> Grads:
        return (grad / self.x,)


class ReLU(Op):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0."""

    __slots__ = ("x",)
    name = "relu"
    rule = "∂relu(x)/∂x = 1 if x > 0 else 0"

    def forward(self, *inputs: Array) -> Array:
        self.x = inputs[0]
        return np.maximum(self.x, 0)

    def backward(self, grad: Array) -> Grads:
        return (grad * (self.x > 0),)


# ---------------------------------------------------------------- matmul


def _matrix_transpose(a: Array) -> Array:
    """Swap the last two axes (a view, no copy): Aᵀ for a matrix, each Aᵀ in a batch."""
    return a.T if a.ndim == 2 else np.swapaxes(a, -1, -2)


class MatMul(Op):
    """Z = A B;  dL/dA = dZ Bᵀ, dL/dB = Aᵀ dZ  (the seed's dW = dZ Xᵀ)."""

    __slots__ = ("a", "b")
    name = "matmul"
    rule = "∂L/∂A = ∂L/∂Z · Bᵀ, ∂L/∂B = Aᵀ · ∂L/∂Z"

    def forward(self, *inputs: Array) -> Array:
        a, b = self.a, self.b = inputs
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                f"(A's last dimension must equal B's {'second-to-' if b.ndim > 1 else ''}"
                "last dimension)"
            )
        try:
            return a @ b
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast"
            ) from None

    def backward(self, grad: Array) -> Grads:
        # Treat vectors as 1-row / 1-column matrices so one rule serves all ranks.
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.b.ndim == 1:  # first, so that vector · vector (a 0-d grad) works too
            grad = grad[..., None]
        if self.a.ndim == 1:
            grad = np.expand_dims(grad, -2)
        da = grad @ _matrix_transpose(b) if self.needs_grad[0] else None
        db = _matrix_transpose(a) @ grad if self.needs_grad[1] else None
        if da is not None and self.a.ndim == 1:
            da = da.reshape(da.shape[:-2] + da.shape[-1:])
        if db is not None and self.b.ndim == 1:
            db = db[..., 0]
        return da, db


# ---------------------------------------------------------------- reductions


def _normalize_axis(name: str, axis: int | tuple[int, ...] | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axis argument as a sorted tuple of non-negative axes, or a clear error."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the usual case, answered quickly
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or not -ndim <= ax < ndim:
            raise ValueError(f"{name}: axis {axis!r} is out of range for a tensor of shape {shape}")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


class Reduce(Op):
    """Base of the reductions: remembers the input shape, axes and keepdims."""

    __slots__ = ("axis", "keepdims", "axes", "in_shape")

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, *inputs: Array) -> Array:
        x = inputs[0]
        self.in_shape = x.shape
        self.axes = _normalize_axis(self.name, self.axis, x.shape)
        return self.reduce(x)

    def reduce(self, x: Array) -> Array:
        raise NotImplementedError

    def expand(self, grad: Array) -> Array:
        """Put the reduced axes back as size-1 axes, so ``grad`` broadcasts over the input."""
        if self.keepdims or grad.ndim == 0:  # already broadcasts (a 0-d grad broadcasts anywhere)
            return grad
        return grad.reshape(self._kept_shape())

    def _kept_shape(self) -> tuple[int, ...]:
        return tuple([1 if i in self.axes else n for i, n in enumerate(self.in_shape)])

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "keepdims": self.keepdims}


class Sum(Reduce):
    """z = Σ x over axes;  dz/dx = 1, so the gradient is copied back to every summed entry."""

    __slots__ = ()
    name = "sum"
    rule = "the adjoint of sum is broadcasting: ∂L/∂x = ∂L/∂z copied along the summed axes"

    def reduce(self, x: Array) -> Array:
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, grad: Array) -> Grads:
        return (spread(self.expand(grad), self.in_shape),)


class Mean(Reduce):
    """z = (1/n) Σ x over axes;  dz/dx = 1/n."""

    __slots__ = ("count",)
    name = "mean"
    rule = "∂mean(x)/∂x = 1/n, copied along the averaged axes"

    def reduce(self, x: Array) -> Array:
        if x.size == 0:
            raise ValueError(f"mean: cannot average an empty tensor of shape {x.shape}")
        self.count = math.prod([x.shape[i] for i in self.axes])  # n, the entries averaged into each output
        return x.sum(axis=self.axes, keepdims=self.keepdims) / self.count

    def backward(self, grad: Array) -> Grads:
        return (spread(self.expand(grad) / self.count, self.in_shape),)


class Max(Reduce):
    """z = max x over axes;  dz/dx = 1 at the maximum (ties share it equally), else 0."""

    __slots__ = ("x", "out")
    name = "max"
    rule = "∂max(x)/∂x = 1/k at each of the k maximal entries, 0 elsewhere"

    def reduce(self, x: Array) -> Array:
        if x.size == 0:
            raise ValueError(f"max: cannot take the max of an empty tensor of shape {x.shape}")
        self.x = x
        self.out = x.max(axis=self.axes, keepdims=True)
        return (
            self.out
            if self.keepdims
            else self.out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in self.axes))
        )

    def backward(self, grad: Array) -> Grads:
        winners = self.x == self.out
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return (share * self.expand(grad),)


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
    """out[i][j] = x[i][index[i][j]] (axis=1), PyTorch semantics.

    Backward scatters ``grad`` into zeros with ``np.add.at``, which *adds* when
    the same position is picked twice. With one pick per line (``index`` of
    size 1 along ``axis``, as in cross-entropy) no position can repeat, and a
    plain assignment does the same, faster.
    """

    __slots__ = ("axis", "index", "in_shape", "positions", "one_pick_per_line")
    name = "gather"
    rule = "the adjoint of gather scatters ∂L/∂out into a zero array (adding where indices repeat)"

    def __init__(self, axis: int, index: Array) -> None:
        self.axis = axis
        self.index = index

    def forward(self, *inputs: Array) -> Array:
        x = inputs[0]
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
        self.positions = _picked_positions(index, axis)
        self.in_shape = x.shape
        self.one_pick_per_line = index.shape[axis] == 1
        # NumPy itself rejects an index ≥ the size, but would wrap a negative one around.
        if index.size and index.min() < 0:
            raise _out_of_range(index, x.shape, axis)
        try:
            return x[self.positions]
        except IndexError:
            raise _out_of_range(index, x.shape, axis) from None

    def backward(self, grad: Array) -> Grads:
        dx = np.zeros(self.in_shape, dtype=grad.dtype)
        if self.one_pick_per_line:
            dx[self.positions] = grad
        else:
            np.add.at(dx, self.positions, grad)
        return (dx,)

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "index": self.index.shape}


class Transpose(Op):
    """z = xᵀ (axes permuted);  the gradient is permuted back."""

    __slots__ = ("axes",)
    name = "transpose"
    rule = "∂L/∂x = (∂L/∂z)ᵀ, the inverse permutation"

    def __init__(self, axes: tuple[int, ...] | None = None) -> None:
        self.axes = axes

    def forward(self, *inputs: Array) -> Array:
        x = inputs[0]
        try:
            return np.transpose(x, self.axes)
        except ValueError:
            raise ValueError(
                f"transpose: axes {self.axes} are not a permutation of the axes of shape {x.shape}"
            ) from None

    def backward(self, grad: Array) -> Grads:
        if self.axes is None:
            return (np.transpose(grad),)
        return (np.transpose(grad, np.argsort(self.axes)),)

    def params(self) -> dict[str, Any]:
        return {"axes": self.axes} if self.axes is not None else {}


class Reshape(Op):
    """z = x viewed with a new shape;  the gradient is reshaped back."""

    __slots__ = ("shape", "in_shape")
    name = "reshape"
    rule = "∂L/∂x = ∂L/∂z reshaped to x's shape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, *inputs: Array) -> Array:
        x = inputs[0]
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except (ValueError, TypeError):
            raise ValueError(
                f"reshape: cannot reshape shape {x.shape} ({x.size} elements) into {self.shape}"
            ) from None

    def backward(self, grad: Array) -> Grads:
        return (grad.reshape(self.in_shape),)

    def params(self) -> dict[str, Any]:
        return {"shape": self.shape}


# ---------------------------------------------------------------- fused


class SoftmaxCrossEntropy(Op):
    """L = −(1/N) Σ_i log softmax(z_i)[y_i];  dL/dz = (P − Y)/N.

    The fused form: the whole loss is one op, and its backward is the seed's
    closed-form answer written in, instead of the chain rule through ``exp``,
    ``sum``, ``log`` and ``gather``. The lecture builds the loss from those
    primitives (``functional.cross_entropy``) so that ``p − y`` is seen to
    fall out; this op is the shortcut a library takes once that is shown.
    ``labels`` must already be checked (integers in [0, C), one per sample).
    """

    __slots__ = ("axis", "labels", "positions", "count", "probs")
    name = "softmax_cross_entropy"
    rule = "∂L/∂z = (p − y)/N, written in"

    def __init__(self, axis: int, labels: Array) -> None:
        self.axis = axis
        self.labels = labels

    def forward(self, *inputs: Array) -> Array:
        z = inputs[0]
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

    def backward(self, grad: Array) -> Grads:
        scale = grad / self.count
        dz = self.probs * scale  # P/N ...
        dz[self.positions] -= scale  # ... − Y/N, where Y is 1 only at each sample's label
        return (dz,)

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "labels": self.labels.shape}
