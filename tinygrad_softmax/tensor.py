"""The Tensor: a NumPy array that remembers the op that made it.

Each op on tensors runs its forward rule from ``ops.py`` and, if any input
requires grad, records itself on the result (``grad_fn``, ``parents``, ``op``).
``backward()`` hands the recorded graph to ``engine.backward``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from threading import local
from typing import Any, Union

import numpy as np

from . import anomaly, engine, ops

_recording = True  # False inside `no_grad()`
# Every tensor gets the next number when it is made. Its inputs already exist by
# then, so they have smaller numbers: the engine orders the graph by these.
_serials = count()


class _Tracing(local):
    """What ``compile`` is tracing in this thread: an object whose ``record(op, inputs, out)``
    sees every op, recorded in the graph or not (see compile.py). None when nothing is traced."""

    trace: Any = None


_tracing = _Tracing()

Operand = Union["Tensor", np.ndarray, float, int, Sequence[Any]]


@contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block, ops record no graph (results never require grad)."""
    global _recording
    before = _recording
    _recording = False
    try:
        yield
    finally:
        _recording = before


@contextmanager
def enable_grad() -> Iterator[None]:
    """Inside this block, ops record a graph again, even within ``no_grad()``.

    ``grad(..., create_graph=True)`` runs the backward walk in it, so that the
    ops of the backward rules are recorded and can be differentiated.
    """
    global _recording
    before = _recording
    _recording = True
    try:
        yield
    finally:
        _recording = before


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: ops made now record no graph."""
    return _recording


def _as_float_array(data: Any, who: str = "Tensor") -> np.ndarray:
    """``data`` as an ndarray: float32/float64 kept, integers and booleans as float64."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{who}: data must be numeric array-like, could not convert it ({exc})") from None
    if array.dtype.kind == "f":
        return array
    if array.dtype.kind in "iub":
        return array.astype(np.float64)
    raise TypeError(
        f"{who}: data must be numeric, got dtype {array.dtype} for {type(data).__name__} {data!r:.60}"
    )


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    >>> x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4.])
    """

    # Slots: no per-tensor __dict__, so making a tensor is cheap (an op makes one each time).
    __slots__ = ("data", "grad", "requires_grad", "name", "op", "parents", "grad_fn", "serial", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data: np.ndarray = _as_float_array(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = ""
        self.parents: tuple[Tensor, ...] = ()
        self.grad_fn: ops.Op | None = None
        self.serial = next(_serials)

    # ------------------------------------------------------------ recording

    @staticmethod
    def _wrap(data: np.ndarray) -> Tensor:
        """A constant leaf around an array that is known to be fine: no checks, no copy."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out.requires_grad = False
        out.name = None
        out.op = ""
        out.parents = ()
        out.grad_fn = None
        out.serial = next(_serials)
        return out

    @staticmethod
    def _apply(fn: ops.Op, *inputs: Tensor) -> Tensor:
        """Run ``fn`` forward on the inputs' data; record it if any input requires grad.

        The forward runs first, so an op that raises adds nothing to the graph.
        Nothing is recorded when no input requires grad: the op, and what it
        saved for its backward, are dropped as soon as the result is made.
        """
        # Every op takes one or two inputs; spelling out both cases costs much
        # less per op than a loop over `inputs` would.
        if len(inputs) == 1:
            x = inputs[0]
            try:
                data = fn.forward(x.data)
            except ValueError as error:
                raise fn.explain(error, x.data) from None
            needs_grad: tuple[bool, ...] = (x.requires_grad,)
            saved: tuple[np.ndarray, ...] = (x.data, data)
        else:
            a, b = inputs
            try:
                data = fn.forward(a.data, b.data)
            except ValueError as error:
                raise fn.explain(error, a.data, b.data) from None
            needs_grad = (a.requires_grad, b.requires_grad)
            saved = (a.data, b.data, data)
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out.name = None
        out.serial = next(_serials)
        if _recording and True in needs_grad:
            fn.needs_grad = needs_grad
            fn.saved = saved  # the arrays the backward rule reads, as this forward saw them
            out.requires_grad = True
            out.op = fn.name
            out.parents = inputs
            out.grad_fn = fn
        else:
            out.requires_grad = False
            out.op = ""
            out.parents = ()
            out.grad_fn = None
        if anomaly.enabled:
            anomaly.check_forward(fn, inputs, out)
        if _tracing.trace is not None:
            _tracing.trace.record(fn, inputs, out)
        return out

    def _lift(self, other: Operand) -> Tensor:
        """A non-tensor operand as a constant tensor; Python scalars take our dtype."""
        if isinstance(other, Tensor):
            return other
        if type(other) is float or type(other) is int:  # bool is not a number here
            return Tensor._wrap(np.asarray(other, dtype=self.data.dtype))
        if isinstance(other, (int, float)) and not isinstance(other, bool):  # subclasses, e.g. np.float64
            return Tensor._wrap(np.asarray(other, dtype=self.data.dtype))
        return Tensor(other)

    # ------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        return self.transpose()

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Add(), self, self._lift(other))

    def __radd__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Add(), self._lift(other), self)

    def __sub__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Sub(), self, self._lift(other))

    def __rsub__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Sub(), self._lift(other), self)

    def __mul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Mul(), self, self._lift(other))

    def __rmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Mul(), self._lift(other), self)

    def __truediv__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Div(), self, self._lift(other))

    def __rtruediv__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Div(), self._lift(other), self)

    def __matmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.MatMul(), self, self._lift(other))

    def __rmatmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.MatMul(), self._lift(other), self)

    def matmul(self, other: Operand) -> Tensor:
        return self @ other

    def __neg__(self) -> Tensor:
        return Tensor._apply(ops.Neg(), self)

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.number)):
            raise TypeError(
                f"pow: the exponent must be a number, got {type(exponent).__name__}; "
                "only tensor ** scalar is supported"
            )
        return Tensor._apply(ops.Pow(float(exponent)), self)

    # ------------------------------------------------------------ functions

    def exp(self) -> Tensor:
        return Tensor._apply(ops.Exp(), self)

    def log(self) -> Tensor:
        return Tensor._apply(ops.Log(), self)

    def relu(self) -> Tensor:
        return Tensor._apply(ops.ReLU(), self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.Sum(axis, keepdims), self)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.Mean(axis, keepdims), self)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.Max(axis, keepdims), self)

    def gather(self, axis: int, index: Any) -> Tensor:
        """Pick ``self[..., index, ...]`` along ``axis`` (PyTorch's ``gather``)."""
        if isinstance(index, Tensor):
            index = index.data
        return Tensor._apply(ops.Gather(axis, np.asarray(index)), self)

    def transpose(self, *axes: int) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Tensor._apply(ops.Transpose(axes or None), self)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor._apply(ops.Reshape(tuple(new_shape)), self)  # type: ignore[arg-type]

    # ------------------------------------------------------------ gradients

    def backward(self, grad: Any = None) -> None:
        """Add dself/dt into ``t.grad`` for every tensor ``t`` in the graph that requires grad.

        Called on a scalar, the seed gradient is 1; otherwise pass ``grad`` of
        this tensor's shape. Nothing changes if an error is raised.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad; create the inputs you want "
                "gradients for with requires_grad=True (and not inside no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: called without grad on a non-scalar tensor of shape {self.shape}; "
                    f"pass grad= an array of shape {self.shape}"
                )
            seed = np.ones(self.data.shape, dtype=self.data.dtype)
        else:
            seed = _as_float_array(grad.data if isinstance(grad, Tensor) else grad, "backward")
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {seed.shape} but the tensor has shape {self.shape}"
                )
            seed = seed.astype(self.data.dtype, copy=True)
        engine.backward(self, seed)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same data as a new leaf that records nothing."""
        out = Tensor._wrap(self.data)
        out.name = self.name
        return out

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item; this one has shape {self.shape}")
        return float(self.data.item())

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len: a 0-d tensor has no length")
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, prefix="Tensor(")
        extras = []
        if self.name:
            extras.append(f"name={self.name!r}")
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        if self.op:
            extras.append(f"op={self.op}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return "Tensor(" + ", ".join([body, *extras]) + ")"
