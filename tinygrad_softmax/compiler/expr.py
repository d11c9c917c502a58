"""Tensor-level symbolic values: what a backward rule from ``ops.py`` computes, as an expression.

An :class:`Expr` is a node of an expression tree with the shape of the array it
stands for. It has the operators a rule uses (arithmetic, ``@``, ``.T``,
``.transpose``, ``.reshape``, ``.sum``, ``>``, ``==``) and ``_apply``, where the
adjoints that are ops of their own (expand, sum-to-shape, scatter-add, gather)
arrive, as they do on a Tensor. So the rules run on it unchanged and return the
gradient as a formula. :func:`evaluate` computes a formula with NumPy from the
arrays of its leaves: that is how every printed formula is checked.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction
from typing import Any

import numpy as np

from .. import adjoints, ops

Number = Fraction | float

# Kinds whose arguments combine entry by entry (under broadcasting).
ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "gt", "eq", "relu")


def number(value: Any) -> Number:
    """An exact Fraction for whole numbers and fractions of them, else a float."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (bool, np.bool_)):
        return Fraction(int(value))
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    value = float(value)
    if value.is_integer():
        return Fraction(int(value))
    return value


class Expr:
    """One node of a tensor expression: ``kind``, its arguments, its settings and its shape.

    Leaves are ``var`` (a named array: a tensor of the graph, a label vector, a
    constant) and ``num`` (a number, shape ()). ``key`` identifies the tree by
    its structure, so equal formulas built twice are recognised as equal.
    """

    __slots__ = ("args", "attrs", "key", "kind", "shape", "value")
    __array_ufunc__ = None  # `ndarray * Expr` defers to Expr.__rmul__
    __hash__ = object.__hash__

    def __init__(
        self,
        kind: str,
        args: tuple[Expr, ...] = (),
        attrs: tuple[Any, ...] = (),
        shape: tuple[int, ...] = (),
        value: np.ndarray | None = None,
    ) -> None:
        self.kind = kind
        self.args = args
        self.attrs = attrs
        self.shape = tuple(int(n) for n in shape)
        self.value = value  # the array of a leaf
        self.key: tuple[Any, ...] = (kind, attrs, tuple(a.key for a in args))

    # ------------------------------------------------------------ what rules read

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float64)

    @property
    def data(self) -> Expr:
        # ops.constant(x) reads x.data: in a formula a constant is the same expression.
        return self

    def __bool__(self) -> bool:
        raise TypeError("derive: a backward rule branched on a symbolic value (if/while/bool)")

    def __repr__(self) -> str:
        return f"Expr({self.kind}, {self.attrs!r}, args={len(self.args)}, shape={self.shape})"

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Any) -> Expr:
        return binary("add", self, other)

    def __radd__(self, other: Any) -> Expr:
        return binary("add", other, self)

    def __sub__(self, other: Any) -> Expr:
        return binary("sub", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return binary("sub", other, self)

    def __mul__(self, other: Any) -> Expr:
        return binary("mul", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return binary("mul", other, self)

    def __truediv__(self, other: Any) -> Expr:
        return binary("div", self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return binary("div", other, self)

    def __neg__(self) -> Expr:
        return Expr("neg", (self,), (), self.shape)

    def __pow__(self, exponent: Any) -> Expr:
        if isinstance(exponent, Expr):
            raise TypeError("derive: a power with a symbolic exponent")
        return Expr("pow", (self,), (number(exponent),), self.shape)

    def __gt__(self, other: Any) -> Expr:
        return binary("gt", self, other)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return binary("eq", self, other)

    def __matmul__(self, other: Any) -> Expr:
        return matmul(self, lift(other))

    def __rmatmul__(self, other: Any) -> Expr:
        return matmul(lift(other), self)

    # ------------------------------------------------------------ shape

    @property
    def T(self) -> Expr:
        return self.transpose(tuple(range(self.ndim))[::-1])

    def transpose(self, axes: tuple[int, ...]) -> Expr:
        axes = tuple(int(a) for a in axes)
        return Expr("transpose", (self,), (axes,), tuple(self.shape[a] for a in axes))

    def reshape(self, shape: tuple[int, ...]) -> Expr:
        shape = tuple(int(n) for n in shape)
        if shape == self.shape:
            return self
        return Expr("reshape", (self,), (shape,), shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Expr:
        return reduction("sum", self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Expr:
        return reduction("max", self, axis, keepdims)

    def exp(self) -> Expr:
        return Expr("exp", (self,), (), self.shape)

    def log(self) -> Expr:
        return Expr("log", (self,), (), self.shape)

    # ------------------------------------------------------------ the adjoints that are ops

    @staticmethod
    def _apply(op: ops.Op, x: Expr) -> Expr:
        """What ``Tensor._apply`` is to a Tensor: ops.py's expand, sum_to, scatter_add, gather_at, softmax."""
        if isinstance(op, ops.Expand):
            return Expr("expand", (x,), (op.shape,), op.shape)
        if isinstance(op, ops.SumTo):
            return sum_to(x, op.shape)
        if isinstance(op, ops.ScatterAdd):
            return Expr("scatter", (x,), (op.picks.axis, Picks(op.picks), op.shape), op.shape)
        if isinstance(op, ops.Gather):
            return gather(x, op)
        if isinstance(op, ops.Softmax):  # the fused loss's P, on a recording value
            return softmax(x, op.axis % len(x.shape))
        raise TypeError(f"derive: no symbolic form for the op {op.name}")


class Picks:
    """The positions a gather took (its index), compared by value so that equal formulas stay equal."""

    __slots__ = ("axis", "index", "one_per_line", "token")

    def __init__(self, gather_op: ops.Gather) -> None:
        self.axis = int(gather_op.axis)
        self.index = np.asarray(gather_op.index)
        self.one_per_line = self.index.shape[self.axis] == 1
        self.token = (self.axis, self.index.shape, self.index.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Picks) and self.token == other.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:  # part of an Expr's key: the same text on every run
        return f"Picks(axis={self.axis}, shape={self.index.shape}, crc={zlib.crc32(self.index.tobytes())})"

    def positions(self) -> tuple[np.ndarray, ...]:
        return adjoints.picked_positions(self.index, self.axis % self.index.ndim)


# ---------------------------------------------------------------- constructors


def num(value: Any) -> Expr:
    return Expr("num", (), (number(value),), ())


def var(name: str, value: Any, constant: bool = True) -> Expr:
    """A named array; ``constant`` unless it is a parameter the loss is differentiated by."""
    array = np.asarray(value, dtype=np.float64)
    return Expr("var", (), (name, constant), array.shape, array)


def lift(x: Any) -> Expr:
    """A rule's operand as an Expr: numbers stay numbers, an array equal everywhere is its number."""
    if isinstance(x, Expr):
        return x
    array = np.asarray(x)
    if array.ndim == 0:
        return num(array.item())
    flat = array.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        one = num(flat[0].item())
        return one if array.shape == () else Expr("expand", (one,), (array.shape,), array.shape)
    return var(f"K{array.shape}", array)  # a constant array the formula must name


def binary(kind: str, a: Any, b: Any) -> Expr:
    a, b = lift(a), lift(b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"derive: {kind} of shapes {a.shape} and {b.shape} cannot broadcast") from None
    return Expr(kind, (a, b), (), shape)


def matmul(a: Expr, b: Expr) -> Expr:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"derive: matmul of shapes {a.shape} and {b.shape} (matrices only)")
    return Expr("matmul", (a, b), (), (a.shape[0], b.shape[1]))


def reduction(kind: str, x: Expr, axis: Any, keepdims: bool) -> Expr:
    ndim = x.ndim
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted(int(a) % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))))
    if keepdims:
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    else:
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return Expr(kind, (x,), (axes, bool(keepdims)), shape)


def sum_to(x: Expr, shape: tuple[int, ...]) -> Expr:
    """``x`` summed down to ``shape``, as ``ops.unbroadcast`` does: leading axes, then stretched ones."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    extra = x.ndim - len(shape)
    if extra > 0:
        x = x.sum(axis=tuple(range(extra)))
    elif extra < 0:
        x = x.reshape((1,) * -extra + x.shape)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    if stretched:
        x = x.sum(axis=stretched, keepdims=True)
    if x.shape != shape:
        raise ValueError(f"derive: a gradient of shape {x.shape} does not sum down to {shape}")
    return x


def gather(x: Expr, op: ops.Gather) -> Expr:
    picks = Picks(op)
    return Expr("gather", (x,), (picks.axis, picks), picks.index.shape)


def onehot(labels: Expr, axis: int, shape: tuple[int, ...]) -> Expr:
    """1 at each line's label along ``axis``, 0 elsewhere (``labels`` holds one class per line)."""
    return Expr("onehot", (labels,), (axis,), shape)


def softmax(a: Expr, axis: int) -> Expr:
    return Expr("softmax", (a,), (axis,), a.shape)


# ---------------------------------------------------------------- numbers


def evaluate(e: Expr, memo: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The formula computed with NumPy from its leaves' arrays (float64)."""
    memo = {} if memo is None else memo
    found = memo.get(id(e))
    if found is not None:
        return found
    out = _evaluate(e, [evaluate(a, memo) for a in e.args])
    memo[id(e)] = out
    return out


def _evaluate(e: Expr, args: list[np.ndarray]) -> np.ndarray:
    kind, attrs = e.kind, e.attrs
    if kind == "var":
        return e.value  # type: ignore[return-value]
    if kind == "num":
        return np.asarray(float(attrs[0]))
    simple = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.true_divide,
        "gt": np.greater,
        "eq": np.equal,
        "matmul": np.matmul,
    }
    if kind in simple:
        return np.asarray(simple[kind](*args), dtype=np.float64)
    x: Any = args[0] if args else None
    if kind == "neg":
        return -x
    if kind == "pow":
        return np.power(x, float(attrs[0]))
    if kind == "exp":
        return np.exp(x)
    if kind == "log":
        return np.log(x)
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "transpose":
        return np.transpose(x, attrs[0])
    if kind == "reshape":
        return np.reshape(x, attrs[0])
    if kind in ("sum", "max"):
        axes, keepdims = attrs
        reduce = np.sum if kind == "sum" else np.max
        return np.asarray(reduce(x, axis=axes, keepdims=keepdims))
    if kind == "expand":
        return np.broadcast_to(x, attrs[0]).copy()
    if kind == "gather":
        return x[attrs[1].positions()]
    if kind == "scatter":
        picks = attrs[1]
        out = np.zeros(attrs[2])
        np.add.at(out, picks.positions(), x)
        return out
    if kind == "onehot":
        axis = attrs[0]
        labels = np.expand_dims(x.astype(np.int64), axis)
        out = np.zeros(e.shape)
        np.put_along_axis(out, labels, 1.0, axis=axis)
        return out
    if kind == "softmax":
        axis = attrs[0]
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)
    raise ValueError(f"derive: cannot evaluate an expression of kind {kind!r}")


def walk(e: Expr) -> list[Expr]:
    """Every node of the tree, each once, leaves first."""
    seen: set[int] = set()
    order: list[Expr] = []
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))
    return order


def as_shape(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` broadcast to ``shape``; leading size-1 axes it has beyond ``shape`` are dropped first."""
    value = np.asarray(value)
    while value.ndim > len(shape) and value.shape[0] == 1:
        value = value[0]
    return np.broadcast_to(value, shape)
