"""The Tensor: a NumPy array that remembers the op that made it.

Each op on tensors runs its forward rule from ``ops.py`` and, if any input
requires grad, records itself on the result (``grad_fn``, ``parents``, ``op``).
``backward()`` hands the recorded graph to ``engine.backward``.

A recorded graph must see, in backward, exactly the arrays its forward saw,
so no array a graph reads is ever written again. Each tensor knows who else
may reach its array, in two named booleans: ``_read_by_graph`` (``.data``
hands out a copy of it: copy on write) and ``_held_outside`` (someone outside
may write it: one handed out by ``.data``, a NumPy operand as in ``t * a``, a
view of another tensor's memory; an op that records it records a copy).
``Tensor(a)`` copies ``a``. See ``docs/reliability.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from typing import Any, Union

import numpy as np

from . import anomaly, checks, engine, grad_mode, ops
from .grad_mode import enable_grad, is_grad_enabled, no_grad

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled"]

# Every tensor gets the next number when it is made. Its inputs already exist by
# then, so they have smaller numbers: the engine orders the graph by these.
# (`next` on a shared count is atomic in CPython, so threads never get the same number.)
_serials = count()

Operand = Union["Tensor", np.ndarray, float, int, Sequence[Any]]
_ONE_INPUT = (True,)  # `needs_grad` of every recorded op of one input, shared


def _as_float_array(data: Any, who: str = "Tensor") -> np.ndarray:
    """``data`` as an ndarray: float32/float64 kept, integers and booleans as float64."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TypeError(f"{who}: data must be numeric array-like, could not convert it ({exc})") from None
    if array.dtype.kind == "f":
        return array
    if array.dtype.kind in "iub":
        return array.astype(np.float64)
    raise TypeError(
        f"{who}: data must be numeric, got dtype {array.dtype} for {type(data).__name__} {data!r:.60}"
    )


def _own_float_array(data: Any, who: str = "Tensor") -> np.ndarray:
    """Like ``_as_float_array``, but never an array someone else holds: a caller's array is copied."""
    array = _as_float_array(data, who)
    if array is data or array.base is not None or not array.flags.writeable:
        array = array.copy()
    return array


def _scalar(value: float, dtype: np.dtype[Any], who: str) -> np.ndarray:
    """A Python number as a 0-d array of the tensor's dtype, or an error naming the op."""
    try:
        return np.asarray(value, dtype=dtype)
    except OverflowError:
        digits = str(abs(int(value)))
        shown = f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"  # format(value, "g") overflows too
        raise OverflowError(f"{who}: the number {shown} is too large for a {dtype} tensor") from None


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    >>> x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4.])
    """

    # Slots: no per-tensor __dict__, so making a tensor is cheap (an op makes one each time).
    # `_data` and `_grad` sit behind the `data` and `grad` properties; the engine reads them directly.
    __slots__ = (
        "_data",
        "_grad",
        "_held_outside",
        "_read_by_graph",
        "requires_grad",
        "name",
        "op",
        "parents",
        "grad_fn",
        "serial",
        "__weakref__",
    )
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

    _data: np.ndarray
    _grad: np.ndarray | None
    _held_outside: bool  # someone outside may write `_data`: an op that records it copies it first
    _read_by_graph: bool  # a recorded graph reads `_data`: `.data` copies it before handing it out

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        if grad_mode.watched_threads and grad_mode.tracing() is not None:  # Tensor(x) in a trace
            data = grad_mode.tracing().lifting(self, data)
        # A copy of the caller's array: editing `data` afterwards must not reach a graph.
        self._data = _own_float_array(data._data if isinstance(data, Tensor) else data)
        self._grad = None
        self._held_outside = self._read_by_graph = False
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = ""
        self.parents: tuple[Tensor, ...] = ()
        self.grad_fn: ops.Op | None = None
        self.serial = next(_serials)

    # ------------------------------------------------------------ data and grad

    @property
    def data(self) -> np.ndarray:
        """The values, as an ndarray you may edit in place.

        If a recorded graph reads the current array, this first swaps in a
        copy (copy on write): an edit then changes this tensor from now on,
        and the graph keeps computing gradients for the values it saw.
        """
        data = self._data
        if self._read_by_graph:  # not ours to hand out
            data = self._data = data.copy()
        self._held_outside, self._read_by_graph = True, False
        return data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = _as_float_array(value._data if isinstance(value, Tensor) else value, "data")
        self._held_outside, self._read_by_graph = True, False

    @property
    def grad(self) -> np.ndarray | None:
        """dL/dself accumulated by ``backward()`` (shaped like ``data``), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is None:
            self._grad = None
            return
        grad = np.asarray(value.data if isinstance(value, Tensor) else value)
        if grad.dtype.kind not in "fiub":
            raise TypeError(
                f"grad: must be numeric, got dtype {grad.dtype} for a tensor of shape {self.shape}"
            )
        if grad.shape != self._data.shape:
            raise ValueError(
                f"grad: a gradient of shape {grad.shape} does not fit a tensor of shape {self.shape} "
                "(the gradient must have the tensor's shape)"
            )
        self._grad = grad if grad.dtype == self._data.dtype else grad.astype(self._data.dtype)

    def _take_new_data(self, array: np.ndarray) -> None:
        """Swap in ``array``, a new array nobody else holds (an optimiser's step makes one).

        Unlike the ``data`` setter, which must assume the caller keeps the array,
        this lets the next op record it without copying it first.
        """
        self._data = array
        self._held_outside = self._read_by_graph = False

    # ------------------------------------------------------------ recording

    @staticmethod
    def _wrap(data: np.ndarray, held_outside: bool = False, read_by_graph: bool = False) -> Tensor:
        """A constant leaf around an array known to be fine: no checks, no copy."""
        out = Tensor.__new__(Tensor)
        out._data, out._grad, out.name, out.serial = data, None, None, next(_serials)
        out._held_outside, out._read_by_graph = held_outside, read_by_graph
        out.requires_grad, out.op, out.parents, out.grad_fn = False, "", (), None
        return out

    @staticmethod
    def _apply(fn: ops.Op, *inputs: Tensor) -> Tensor:
        """Run ``fn`` forward on the inputs' arrays; record it if an input requires grad.

        The forward runs first, so an op that raises adds nothing to the graph;
        an op nothing records is dropped with what it saved as soon as its result is made.
        """
        if grad_mode.watched_threads:  # a no_grad(), detect_anomaly() or compile trace is open somewhere
            return _apply_watched(fn, inputs)
        if inputs[0].requires_grad or inputs[-1].requires_grad:  # (an op has one input or two)
            return _record(fn, inputs)
        return _run(fn, inputs)

    def _lift(self, other: Operand, who: str) -> Tensor:
        """The other operand of an op as a Tensor (a number or an array becomes a constant leaf)."""
        if isinstance(other, Tensor):
            return other
        if type(other) is float:  # the usual constant, as in `t * 0.5` (a float never overflows a cast)
            return Tensor._wrap(np.asarray(other, self._data.dtype))
        return _constant(other, self._data.dtype, who)

    # ------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def T(self) -> Tensor:
        return self.transpose()

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Add(), self, self._lift(other, "add"))

    def __radd__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Add(), self._lift(other, "add"), self)

    def __sub__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Sub(), self, self._lift(other, "sub"))

    def __rsub__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Sub(), self._lift(other, "sub"), self)

    def __mul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Mul(), self, self._lift(other, "mul"))

    def __rmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Mul(), self._lift(other, "mul"), self)

    def __truediv__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Div(), self, self._lift(other, "div"))

    def __rtruediv__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.Div(), self._lift(other, "div"), self)

    def __matmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.MatMul(), self, self._lift(other, "matmul"))

    def __rmatmul__(self, other: Operand) -> Tensor:
        return Tensor._apply(ops.MatMul(), self._lift(other, "matmul"), self)

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
        # A copy: the backward scatters into the positions picked now,
        # whatever the caller's array holds later.
        index = np.array(index._data if isinstance(index, Tensor) else index)
        return Tensor._apply(ops.Gather(checks.gather_index(index, axis, self.shape), index), self)

    def transpose(self, *axes: int) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Tensor._apply(ops.Transpose(axes or None), self)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor._apply(ops.Reshape(tuple(new_shape)), self)  # type: ignore[arg-type]

    # ------------------------------------------------------------ gradients

    def backward(self, grad: Any = None, retain_intermediate_grads: bool = True) -> None:
        """Add dself/dt into ``t.grad`` for every tensor ``t`` in the graph that requires grad.

        From a loss (0-d) the walk starts from ∂L/∂L = 1, else from ``grad`` of this shape. Intermediate
        tensors keep theirs too (``Z.grad``), unless ``retain_intermediate_grads=False`` (as in PyTorch).
        """
        if grad is None and self._data.ndim == 0 and self.requires_grad:
            start = np.array(1, dtype=self._data.dtype)
        else:
            start = _checked_start(self, grad)
        engine.backward(self, start, retain_intermediate_grads)

    def retain_grad(self) -> None:
        """Keep this tensor's ``.grad`` even in ``backward(retain_intermediate_grads=False)``."""
        engine.retain(self)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same values as a new leaf that records nothing; it shares this tensor's memory,
        as a view would, and its ``.data`` is a copy made on first use (copy on write)."""
        out = Tensor._wrap(self._data, held_outside=True, read_by_graph=True)  # as a view is
        out.name = self.name
        return out

    def numpy(self) -> np.ndarray:
        """The values as an ndarray, the same as ``.data``."""
        return self.data

    def item(self) -> float:
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item; this one has shape {self.shape}")
        return float(self._data.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len: a 0-d tensor has no length")
        return len(self._data)

    def __repr__(self) -> str:
        body = np.array2string(self._data, precision=4, separator=", ", threshold=20, prefix="Tensor(")
        extras = []
        if self.name:
            extras.append(f"name={self.name!r}")
        if self._data.dtype != np.float64:
            extras.append(f"dtype={self._data.dtype}")
        if self.op:
            extras.append(f"op={self.op}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return "Tensor(" + ", ".join([body, *extras]) + ")"


def _constant(other: Any, dtype: np.dtype[Any], who: str) -> Tensor:
    """A number or an array as a constant leaf; a Python number takes the tensor's ``dtype``."""
    # `isinstance(True, int)`: a bool is read like any other operand, below.
    if isinstance(other, (int, float)) and not isinstance(other, bool):  # subclasses, e.g. np.float64
        return Tensor._wrap(_scalar(other, dtype, who))
    if isinstance(other, np.ndarray):  # the caller keeps it: copied only if an op records it
        return Tensor._wrap(_as_float_array(other), held_outside=True)
    return Tensor(other)


def _checked_start(root: Tensor, grad: Any) -> np.ndarray:
    """Where ``root.backward(grad)`` starts: ``grad`` checked against the root, or ones."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad; create the inputs you want "
            "gradients for with requires_grad=True (and not inside no_grad())"
        )
    if grad is None:
        if root._data.size != 1:
            raise ValueError(
                f"backward: called without grad on a non-scalar tensor of shape {root.shape}; "
                f"pass grad= an array of shape {root.shape}"
            )
        return np.ones(root._data.shape, dtype=root._data.dtype)
    start = _as_float_array(grad._data if isinstance(grad, Tensor) else grad, "backward")
    if start.shape != root.shape:
        raise ValueError(f"backward: grad has shape {start.shape} but the tensor has shape {root.shape}")
    return start.astype(root._data.dtype, copy=True)


# ---------------------------------------------------------------- how an op runs (Tensor._apply)


def _run(fn: ops.Op, inputs: tuple[Tensor, ...]) -> Tensor:
    """``fn`` on the inputs' arrays, recorded nowhere: the result is a new leaf."""
    arrays = (inputs[0]._data,) if len(inputs) == 1 else (inputs[0]._data, inputs[1]._data)
    try:
        data = fn.forward(*arrays)
    except ValueError as error:
        raise fn.explain(error, *arrays) from None
    out = Tensor.__new__(Tensor)
    out._data, out._grad, out.serial = data, None, next(_serials)
    # A view (transpose, reshape) shares its input's memory, which may be a graph's.
    out._held_outside = out._read_by_graph = data.base is not None
    out.name, out.requires_grad, out.op = None, False, ""
    out.parents, out.grad_fn = (), None
    return out


def _record(fn: ops.Op, inputs: tuple[Tensor, ...]) -> Tensor:
    """``fn`` on the inputs' arrays, recorded: the result remembers ``fn``, its inputs and the arrays
    read, which its rule reads too, so they must never change: one held outside is copied first."""
    if len(inputs) == 1:  # (an op has one input or two: spelt out, each costs less than a loop)
        (x,) = inputs
        x_data = x._data.copy() if x._held_outside else x._data
        try:
            data = fn.forward(x_data)
        except ValueError as error:
            raise fn.explain(error, x_data) from None
        fn.needs_grad, fn.saved = _ONE_INPUT, (x_data, data)
    else:
        a, b = inputs
        a_data = a._data.copy() if a._held_outside else a._data
        b_data = b._data.copy() if b._held_outside else b._data
        try:
            data = fn.forward(a_data, b_data)
        except ValueError as error:
            raise fn.explain(error, a_data, b_data) from None
        fn.needs_grad, fn.saved = (a.requires_grad, b.requires_grad), (a_data, b_data, data)
    for x in inputs:
        x._read_by_graph = x._read_by_graph or not x._held_outside  # (one held outside was copied)
    out = Tensor.__new__(Tensor)
    out._data, out._grad, out.serial = data, None, next(_serials)
    out.name, out._held_outside, out._read_by_graph = None, False, True
    out.requires_grad, out.op, out.parents = True, fn.name, inputs
    out.grad_fn = fn
    if out.serial % engine.FREEZE_EVERY == 0:  # a long graph: out of the cycle collector's way
        engine.graph_grew()
    return out


def _apply_watched(fn: ops.Op, inputs: tuple[Tensor, ...]) -> Tensor:
    """``Tensor._apply`` while a thread is in ``no_grad()``, ``detect_anomaly()`` or a trace: ask this one."""
    wanted = grad_mode.is_grad_enabled() and any(x.requires_grad for x in inputs)
    out = _record(fn, inputs) if wanted else _run(fn, inputs)
    if anomaly.is_enabled() and not np.isfinite(out._data).all():
        # The error carries `out` with its parents, so a viewer can draw the graph up to
        # the offending node: link it even if it was not recorded (it is never returned).
        out.op, out.parents, out.grad_fn = fn.name, inputs, fn
        anomaly.check_forward(fn, inputs, out)
    trace = grad_mode.tracing()
    if trace is not None:
        trace.record(fn, inputs, out)
    return out
