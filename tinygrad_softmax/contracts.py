"""The engine's contracts: what a rule may use of its values, what an op is, what the walk uses of a node.

A rule is written once (``ops.py``) and runs on three kinds of value, each a
:class:`Value`:

- ``numpy.ndarray``: the first-order path of ``Tensor.backward()``;
- ``Tensor``: the recorded path of ``grad(..., create_graph=True)``, where
  every operation of the rule is itself recorded and can be differentiated;
- the compiler's symbolic value (``compiler/symbolic.py``), which computes
  the array *and* writes the line of NumPy that computes it.

The last two are a :class:`RecordingValue`: the adjoints that are ops of their
own (expand, sum_to, scatter_add, ...) are recorded on them through ``_apply``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

Axis = int | tuple[int, ...] | None


@runtime_checkable
class Value(Protocol):
    """Exactly what a backward rule may use of a value (its inputs, its output and ``grad``).

    Arithmetic with another value of the same kind or a Python number on
    either side (NumPy broadcasting), ``@``, ``**`` a number, unary ``-``; the
    shape; a transpose, a reshape and a sum. Anything else a rule needs is an
    adjoint helper of ``ops.py`` or is read through ``constant``.
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...

    @property
    def T(self) -> Any: ...

    def transpose(self, axes: tuple[int, ...]) -> Any: ...

    def reshape(self, shape: tuple[int, ...]) -> Any: ...

    def sum(self, axis: Any = ..., *, keepdims: bool = ...) -> Any: ...

    def __add__(self, other: Any) -> Any: ...

    def __radd__(self, other: Any) -> Any: ...

    def __sub__(self, other: Any) -> Any: ...

    def __rsub__(self, other: Any) -> Any: ...

    def __mul__(self, other: Any) -> Any: ...

    def __rmul__(self, other: Any) -> Any: ...

    def __truediv__(self, other: Any) -> Any: ...

    def __rtruediv__(self, other: Any) -> Any: ...

    def __matmul__(self, other: Any) -> Any: ...

    def __pow__(self, exponent: Any) -> Any: ...

    def __neg__(self) -> Any: ...


@runtime_checkable
class RecordingValue(Value, Protocol):
    """A value whose operations are recorded (``Tensor``) or written as code (the symbolic value).

    ``data`` is the plain value a rule treats as a constant; ``_apply(op, x)``
    records an op of its own on ``x`` (``Tensor._apply``).
    """

    @property
    def data(self) -> Any: ...

    @staticmethod
    def _apply(op: Any, x: Any) -> Any: ...


Grads = tuple[Any, ...]  # what a backward rule returns: one Value (or None: no gradient wanted) per input


class Op:
    """Base class of an operation recorded in the graph.

    ``name`` is what the graph shows, ``rule`` the backward rule in the notation
    of ``ops.py`` (which holds every op). When the tensor records the op it sets ``needs_grad[i]``, whether
    input ``i`` wants a gradient (so a rule can skip work nobody will use),
    and ``saved``, the inputs' and the output's arrays as the forward saw
    them, which the first-order path hands to ``backward``.
    """

    __slots__ = ("needs_grad", "saved")
    name = "op"
    rule = ""
    settings: tuple[str, ...] = ()  # the names of what ``params()`` shows
    needs_grad: tuple[bool, ...]
    saved: tuple[np.ndarray, ...]

    # Each op spells out its own arguments: forward(x) or forward(a, b), and
    # backward(grad, x, out) or backward(grad, a, b, out).
    def forward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, *args: Any, **kwargs: Any) -> Grads:
        raise NotImplementedError

    def explain(self, error: ValueError, *inputs: np.ndarray) -> ValueError:
        """The error to show when ``forward`` raised ``error`` (the op's own words, naming the shapes)."""
        return error

    def params(self) -> dict[str, Any]:
        """The op's settings (axis, keepdims, ...), for labels and explanations."""
        return {name: getattr(self, name) for name in self.settings}


N = TypeVar("N", bound="Node")


class Node(Protocol):
    """What the backward walk uses of a node of the graph (``Tensor`` is the one there is).

    ``parents`` are the op's inputs in order, ``grad_fn`` the op that made the
    node (None for a leaf), ``serial`` a number larger than every parent's.
    ``_data`` and ``_grad`` are the arrays behind ``data`` and ``grad``, read
    and written without copy on write.
    """

    requires_grad: bool
    name: str | None
    _data: np.ndarray
    _grad: np.ndarray | None

    @property
    def parents(self: N) -> Sequence[N]: ...

    @property
    def grad_fn(self) -> Op | None: ...

    @property
    def serial(self) -> int: ...

    @property
    def op(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def data(self) -> np.ndarray: ...


_PLAIN = (np.ndarray, np.generic, float, int)  # what the first-order path computes with


def is_recorded(value: Any) -> bool:
    """True for a :class:`RecordingValue` (a Tensor, a symbolic value), False for an array or a number."""
    # Asked of every gradient on the first-order path: the exact-type test answers it quickly.
    return type(value) is not np.ndarray and not isinstance(value, _PLAIN) and hasattr(value, "_apply")


def constant(value: Any) -> np.ndarray:
    """The plain array behind ``value``: what a rule reads here is a constant to the derivative.

    Used for what is piecewise constant (a mask, the positions of a maximum),
    whose own derivative is zero wherever it is defined.
    """
    return value.data if is_recorded(value) else value


def record(op: Any, x: Any) -> Any:
    """``op`` applied to the recording value ``x``: a Tensor records it, a symbolic value writes it."""
    return type(x)._apply(op, x)
