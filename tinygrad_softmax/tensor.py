"""The Tensor: a NumPy array that remembers the op that made it.

Each op on tensors runs its forward rule from ``ops.py`` and, if any input
requires grad, records itself on the result (``grad_fn``, ``parents``, ``op``).
``backward()`` hands the recorded graph to ``engine.backward``.

A recorded graph must see, in backward, exactly the arrays its forward saw,
so no array a graph reads is ever written again. Each tensor knows who else
may reach its array (``_hold``, below): ``.data`` hands out a copy of an array a
graph reads (copy on write), and an op that records an array someone outside
may hold (one handed out by ``.data``, a NumPy operand as in ``t * a``, a view
of another tensor's memory) records a copy of it. ``Tensor(a)`` copies ``a``.
See ``docs/reliability.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import count
from threading import local
from typing import Any, Union

import numpy as np

from . import anomaly, engine, ops


class _GradMode(threading.local):
    """This thread's open ``no_grad()`` / ``enable_grad()`` blocks, innermost last.

    Each block removes its own entry when it is left, so blocks left in any
    order (two generators, say) still leave the right mode: the innermost
    block still open decides, and with none open, ops record.
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[object, bool]] = []  # (the block, does it record?)
        self.enabled = True


_grad_mode = _GradMode()
# How many threads are in a block that turned recording off. While it is 0 (nearly
# always), `_apply` skips the per-thread look-up, which costs more than a global read.
_paused_threads = 0
_paused_threads_lock = threading.Lock()


def _update_grad_mode() -> None:
    """Recompute this thread's mode from its innermost open block (call under the lock)."""
    global _paused_threads
    mode = _grad_mode
    before = mode.enabled
    mode.enabled = mode.blocks[-1][1] if mode.blocks else True
    _paused_threads += (before and not mode.enabled) - (mode.enabled and not before)


@contextmanager
def _grad_block(enabled: bool) -> Iterator[None]:
    entry = (object(), enabled)
    with _paused_threads_lock:
        _grad_mode.blocks.append(entry)
        _update_grad_mode()
    try:
        yield
    finally:
        with _paused_threads_lock:
            _grad_mode.blocks.remove(entry)
            _update_grad_mode()


# Who may reach a tensor's array besides the tensor (`Tensor._hold`). Bit 1 set:
# `.data` must copy before handing it out. Bit 0 set: an op recording it must copy.
OWN = 0  # nobody: made by an op, or copied from the caller
OUT = 1  # the caller: `.data` handed it out, or it was given to us
GRAPH = 2  # a recorded graph reads it, so it must never change
VIEW = 3  # a view of memory another tensor owns (`detach()`, an unrecorded transpose, ...)
# Every tensor gets the next number when it is made. Its inputs already exist by
# then, so they have smaller numbers: the engine orders the graph by these.
# (`next` on a shared count is atomic in CPython, so threads never get the same number.)
_serials = count()


class _Tracing(local):
    """What ``compile`` is tracing in this thread: an object whose ``record(op, inputs, out)``
    sees every op, recorded in the graph or not, and whose ``lifting(tensor, data)`` sees every
    ``Tensor(data)`` made (see compiler/trace.py). None when nothing is traced."""

    trace: Any = None


_tracing = _Tracing()
# How many threads are tracing now. While it is 0 (nearly always), `_apply`
# skips the per-thread look-up, as it does for the grad mode.
_tracing_threads = 0


@contextmanager
def _traced_by(trace: Any) -> Iterator[None]:
    """Inside this block, ``trace.record(op, inputs, out)`` sees every op this thread makes."""
    global _tracing_threads
    before = _tracing.trace
    with _paused_threads_lock:
        _tracing_threads += 1
    _tracing.trace = trace
    try:
        yield
    finally:
        _tracing.trace = before
        with _paused_threads_lock:
            _tracing_threads -= 1


Operand = Union["Tensor", np.ndarray, float, int, Sequence[Any]]

# The values an op's `needs_grad` can take, made once and shared by every op
# (a new tuple per op is one more object to allocate and for the cycle collector to visit).
_ONLY_INPUT = (True,)
_BOTH = (True, True)
_FIRST_ONLY = (True, False)
_SECOND_ONLY = (False, True)


def no_grad() -> AbstractContextManager[None]:
    """Inside this block, ops record no graph (results never require grad).

    Per thread, like PyTorch: another thread keeps recording.
    """
    return _grad_block(False)


def enable_grad() -> AbstractContextManager[None]:
    """Inside this block, ops record a graph again, even within ``no_grad()`` (in this thread).

    ``grad(..., create_graph=True)`` runs the backward walk in it, so that the
    ops of the backward rules are recorded and can be differentiated.
    """
    return _grad_block(True)


def is_grad_enabled() -> bool:
    """False inside ``no_grad()`` (in this thread): ops made now record no graph."""
    return _grad_mode.enabled


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
        "_hold",
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
    _hold: int  # OWN, OUT, GRAPH or VIEW: who else may reach `_data`

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        if _tracing_threads and _tracing.trace is not None:  # compile: Tensor(x) of a traced value
            data = _tracing.trace.lifting(self, data)
        # A copy of the caller's array: editing `data` afterwards must not reach a graph.
        self._data = _own_float_array(data._data if isinstance(data, Tensor) else data)
        self._grad = None
        self._hold = OWN
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
        if self._hold & 2:  # GRAPH or VIEW: not ours to hand out
            data = self._data = data.copy()
        self._hold = OUT
        return data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = _as_float_array(value._data if isinstance(value, Tensor) else value, "data")
        self._hold = OUT

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
        self._hold = OWN

    # ------------------------------------------------------------ recording

    @staticmethod
    def _wrap(data: np.ndarray, hold: int = OWN) -> Tensor:
        """A constant leaf around an array that is known to be fine: no checks, no copy.

        ``hold``: who else may reach ``data`` (OUT if the caller keeps it).
        """
        out = Tensor.__new__(Tensor)
        out._data = data
        out._grad = None
        out._hold = hold
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

        A recorded op's backward reads its inputs' and its output's arrays, so
        they must never change: an input array someone outside may reach is
        copied first, and the arrays recorded are marked GRAPH (``.data``
        copies them before anyone can edit them).
        """
        # Every op takes one or two inputs; spelling out both cases costs much
        # less per op than a loop over `inputs` would.
        if len(inputs) == 1:
            x = inputs[0]
            record = x.requires_grad and (_paused_threads == 0 or _grad_mode.enabled)
            x_data = x._data.copy() if record and x._hold & 1 else x._data
            try:
                data = fn.forward(x_data)
            except ValueError as error:
                raise fn.explain(error, x_data) from None
            if record:
                fn.needs_grad = _ONLY_INPUT
                fn.saved = (x_data, data)  # the arrays the backward rule reads, as this forward saw them
                if x._hold == OWN:  # (an OUT or VIEW input was copied above and stays as it is)
                    x._hold = GRAPH
        else:
            a, b = inputs
            record = (a.requires_grad or b.requires_grad) and (_paused_threads == 0 or _grad_mode.enabled)
            a_data = a._data.copy() if record and a._hold & 1 else a._data
            b_data = b._data.copy() if record and b._hold & 1 else b._data
            try:
                data = fn.forward(a_data, b_data)
            except ValueError as error:
                raise fn.explain(error, a_data, b_data) from None
            if record:
                if a.requires_grad:
                    fn.needs_grad = _BOTH if b.requires_grad else _FIRST_ONLY
                else:
                    fn.needs_grad = _SECOND_ONLY
                fn.saved = (a_data, b_data, data)
                if a._hold == OWN:
                    a._hold = GRAPH
                if b._hold == OWN:
                    b._hold = GRAPH
        out = Tensor.__new__(Tensor)
        out._data = data
        out._grad = None
        out.name = None
        out.serial = next(_serials)
        out.requires_grad = record
        if record:
            out._hold = GRAPH
            out.op = fn.name
            out.parents = inputs
            out.grad_fn = fn
        else:
            # A view (transpose, reshape) shares its input's memory, which may be a graph's.
            out._hold = OWN if data.base is None else VIEW
            out.op = ""
            out.parents = ()
            out.grad_fn = None
        if anomaly.checking_threads and anomaly.mode.depth and not np.isfinite(data).all():
            # The error carries `out` with its parents, so a viewer can draw the graph
            # up to the offending node: link it even if it was not recorded (it is never returned).
            out.op, out.parents, out.grad_fn = fn.name, inputs, fn
            anomaly.check_forward(fn, inputs, out)
        if _tracing_threads and _tracing.trace is not None:
            _tracing.trace.record(fn, inputs, out)
        return out

    def _lift(self, other: Operand, who: str) -> Tensor:
        """A non-tensor operand as a constant tensor; Python scalars take our dtype."""
        if isinstance(other, Tensor):
            return other
        # The common cases first, tested by exact type: `type(True) is int` is False,
        # so a bool falls through to the general case below like any other operand.
        if type(other) is float:  # (a float never overflows a cast: at worst it becomes inf)
            return Tensor._wrap(np.asarray(other, self._data.dtype))
        if type(other) is int:
            return Tensor._wrap(_scalar(other, self._data.dtype, who))
        if isinstance(other, (int, float)) and not isinstance(other, bool):  # subclasses, e.g. np.float64
            return Tensor._wrap(_scalar(other, self._data.dtype, who))
        if isinstance(other, np.ndarray):  # the caller keeps it: copied only if an op records it
            return Tensor._wrap(_as_float_array(other), OUT)
        return Tensor(other)

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
        return Tensor._apply(ops.Gather(axis, index), self)

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

        Called on a scalar, the walk starts from the gradient 1; otherwise pass ``grad`` of
        this tensor's shape. Nothing changes if an error is raised.

        By default every intermediate tensor keeps its gradient too (the
        lecture shows ``Z.grad`` next to ``(P − Y)/N``), which holds one
        gradient per node in memory. ``retain_intermediate_grads=False`` fills
        only the leaves' ``.grad`` (and theirs that called ``retain_grad()``),
        as PyTorch does, and frees each intermediate gradient as soon as the
        walk has used it.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad; create the inputs you want "
                "gradients for with requires_grad=True (and not inside no_grad())"
            )
        if grad is None:
            if self._data.size != 1:
                raise ValueError(
                    f"backward: called without grad on a non-scalar tensor of shape {self.shape}; "
                    f"pass grad= an array of shape {self.shape}"
                )
            # A loss is nearly always 0-d, and np.array(1) costs a fifth of np.ones(()).
            shape, dtype = self._data.shape, self._data.dtype
            start = np.array(1, dtype=dtype) if shape == () else np.ones(shape, dtype=dtype)
        else:
            start = _as_float_array(grad._data if isinstance(grad, Tensor) else grad, "backward")
            if start.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {start.shape} but the tensor has shape {self.shape}"
                )
            start = start.astype(self._data.dtype, copy=True)
        engine.backward(self, start, retain_intermediate_grads)

    def retain_grad(self) -> None:
        """Keep this tensor's ``.grad`` even in ``backward(retain_intermediate_grads=False)``."""
        engine.retain(self)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same values as a new leaf that records nothing.

        It shares this tensor's memory, as a view would: an edit of this
        tensor's ``.data`` may show in it. Its own ``.data`` is a copy made
        on first use, so editing it never changes this tensor or a graph.
        """
        out = Tensor._wrap(self._data, VIEW)  # so its `.data` copies before anyone edits it
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
