"""Symbolic values: what a backward rule computes, as a value and as the NumPy source that computes it.

A :class:`Sym` holds the array the eager engine would compute *and* the
expression that computes it. Arithmetic on a ``Sym`` does both, so an op's own
``forward`` or ``backward`` from ``ops.py``, run once on ``Sym`` values, checks
itself and writes its line. Rendering puts back only the parentheses NumPy's
evaluation order needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .. import ops
from .runtime import scatter_add

# Precedence of the Python operators the generated lines use (higher binds tighter).
ATOM, POW, UNARY, MUL, ADD, CMP = 100, 90, 80, 70, 60, 50
BINARY = {
    "+": (ADD, np.add),
    "-": (ADD, np.subtract),
    "*": (MUL, np.multiply),
    "/": (MUL, np.true_divide),
    "@": (MUL, np.matmul),
    "**": (POW, np.power),
    ">": (CMP, np.greater),
    "==": (CMP, np.equal),
}
UFUNC_SYMBOL = {ufunc: symbol for symbol, (_, ufunc) in BINARY.items()}


class Program(Protocol):
    """What a ``Sym`` asks of the program it is written into (``program.Program`` is one): a
    constant, a call of a NumPy function, the variable of a positions tuple. Named here, so this
    module needs nothing of ``program``, which imports it."""

    def constant(self, value: Any) -> Sym: ...
    def call(self, function: str, ufunc: Callable[..., Any], *args: Any) -> Sym: ...
    def positions_name(self, positions: Any) -> str: ...


class CompileError(RuntimeError):
    """``fn`` cannot be compiled, or took another path than the one compiled."""


def literal(value: Any) -> tuple[str, int] | None:
    """Python source for a number, with its precedence, or None if it is not a plain number."""
    if isinstance(value, bool):
        return repr(value), ATOM
    if isinstance(value, (int, float)) and math.isfinite(value):
        text = repr(value)
        return text, UNARY if text.startswith("-") else ATOM
    if isinstance(value, np.generic) and value.dtype.kind in "biuf" and np.isfinite(value):
        return repr(value), ATOM  # np.float32(0.5): the dtype is part of the arithmetic
    return None


class Sym:
    """A value the program computes: the value itself and the expression that computes it.

    Arithmetic on a ``Sym`` computes the new value with NumPy, exactly as the
    eager engine would, and records the expression (a tree of ``Sym``), so a
    backward rule run on ``Sym`` values writes the line that computes its result.
    ``constant(x)`` reads ``x.data``: in code a constant is the same variable.
    """

    __hash__ = object.__hash__

    def __init__(
        self,
        program: Program,
        value: Any,
        template: str = "",
        args: tuple[Any, ...] = (),
        precedence: int = ATOM,
        name: str | None = None,
    ) -> None:
        self.program = program
        self.value = value
        self.template = template  # "{0} + {1}", "np.exp({0})", ... (args rendered in)
        self.args = args
        self.precedence = precedence
        self.name = name  # set once the value has a line (or is an argument) of its own
        self.ufunc: Any = None  # the NumPy ufunc of the outermost operation, if elementwise
        self.note = ""  # why a line reads as it does, for its comment
        self.scattered: tuple[Sym, int] | None = None  # (values, axis) of a scatter with one pick per line
        self.reduced: tuple[Any, bool] | None = None  # (axis, keepdims) of a sum
        self.gathered: tuple[Any, int] | None = None  # (positions, axis) of a gather

    # ------------------------------------------------------------ what rules read

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))

    @property
    def ndim(self) -> int:
        return int(np.ndim(self.value))

    @property
    def size(self) -> int:
        return int(np.size(self.value))

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.asarray(self.value).dtype

    @property
    def data(self) -> Sym:
        return self

    def __bool__(self) -> bool:
        raise CompileError(
            "a value computed by the program is used in Python control flow (if/while/bool); "
            "the path would be frozen at trace time"
        )

    # ------------------------------------------------------------ building expressions

    def _operand(self, other: Any) -> Any:
        if isinstance(other, Sym):
            return other
        if literal(other) is not None:
            return other
        return self.program.constant(np.asarray(other))

    def _binary(self, symbol: str, a: Any, b: Any) -> Sym:
        precedence, ufunc = BINARY[symbol]
        a, b = self._operand(a), self._operand(b)
        value = ufunc(value_of(a), value_of(b))
        out = Sym(self.program, value, "{0} " + symbol + " {1}", (a, b), precedence)
        if symbol not in ("@", "**"):  # `**` has fast paths (x ** 2 is np.square): not np.power's bits
            out.ufunc = ufunc
        return out

    def __add__(self, other: Any) -> Sym:
        return self._binary("+", self, other)

    def __radd__(self, other: Any) -> Sym:
        return self._binary("+", other, self)

    def __sub__(self, other: Any) -> Sym:
        return self._binary("-", self, other)

    def __rsub__(self, other: Any) -> Sym:
        return self._binary("-", other, self)

    def __mul__(self, other: Any) -> Sym:
        return self._binary("*", self, other)

    def __rmul__(self, other: Any) -> Sym:
        return self._binary("*", other, self)

    def __truediv__(self, other: Any) -> Sym:
        return self._binary("/", self, other)

    def __rtruediv__(self, other: Any) -> Sym:
        return self._binary("/", other, self)

    def __matmul__(self, other: Any) -> Sym:
        return self._binary("@", self, other)

    def __rmatmul__(self, other: Any) -> Sym:
        return self._binary("@", other, self)

    def __pow__(self, other: Any) -> Sym:
        return self._binary("**", self, other)

    def __gt__(self, other: Any) -> Sym:
        return self._binary(">", self, other)

    def __eq__(self, other: Any) -> Sym:  # type: ignore[override]
        return self._binary("==", self, other)

    def __neg__(self) -> Sym:
        out = Sym(self.program, -self.value, "-{0}", (self,), UNARY)
        out.ufunc = np.negative
        return out

    def _method(self, value: Any, call: str) -> Sym:
        return Sym(self.program, value, "{0}" + call, (self,), ATOM)

    @property
    def T(self) -> Sym:
        if self.name is None and self.template == "{0}.T":  # (Aᵀ)ᵀ is A, the same strides
            inner: Sym = self.args[0]
            return inner
        return self._method(np.asarray(self.value).T, ".T")

    def transpose(self, axes: tuple[int, ...]) -> Sym:
        axes = tuple(int(a) for a in axes)
        return self._method(np.transpose(self.value, axes), f".transpose({axes})")

    def reshape(self, shape: tuple[int, ...]) -> Sym:
        shape = tuple(int(n) for n in shape)
        return self._method(np.reshape(self.value, shape), f".reshape({shape})")

    def sum(self, axis: Any = None, keepdims: bool = False) -> Sym:
        value = self.value.sum(axis=axis, keepdims=keepdims)
        out = self._method(value, f".sum(axis={_axis_text(axis)}, keepdims={keepdims})")
        out.reduced = (axis, keepdims)  # for optimize.sum_of_one_pick
        return out

    def max(self, axis: Any = None, keepdims: bool = False) -> Sym:
        value = self.value.max(axis=axis, keepdims=keepdims)
        return self._method(value, f".max(axis={_axis_text(axis)}, keepdims={keepdims})")

    def exp(self) -> Sym:
        return self.program.call("np.exp", np.exp, self)

    def log(self) -> Sym:
        return self.program.call("np.log", np.log, self)

    def __getitem__(self, positions: Any) -> Sym:
        where = self.program.positions_name(positions)
        return Sym(self.program, self.value[positions], "{0}[" + where + "]", (self,), ATOM)

    def gather(self, positions: Any, axis: int) -> Sym:
        """``self[positions]`` for a gather along ``axis`` (the other positions run 0, 1, 2, ...)."""
        out = self[positions]
        out.gathered = (positions, axis)  # for optimize.picked_first
        return out

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # np.exp(x), np.maximum(x, 0), ... in a forward rule, and `ndarray * Sym`.
        if method != "__call__" or kwargs:
            return NotImplemented
        if ufunc in UFUNC_SYMBOL:
            return self._binary(UFUNC_SYMBOL[ufunc], *inputs)
        return self.program.call(f"np.{ufunc.__name__}", ufunc, *inputs)

    # ------------------------------------------------------------ the adjoints, as code

    @staticmethod
    def _apply(op: ops.Op, x: Sym) -> Sym:
        """What ``Tensor._apply`` is to a Tensor: the adjoint helpers of ops.py come here."""
        write = _ADJOINTS.get(type(op))
        if write is None:
            raise CompileError(
                f"compile: the backward rule of {op.name} cannot be written as code (second order?)"
            )
        return write(op, x)

    def render(self, outer: int = 0, right: bool = False) -> str:
        """The expression as Python source, parenthesised to keep NumPy's evaluation order."""
        if self.name is not None:
            return self.name
        return _render(self, outer, right)

    def render_line(self, out: str | None = None) -> str:
        """The right-hand side of this value's own line; with ``out``, the ufunc writing into ``out``."""
        if out is None:
            return _render(self, 0, False)
        operands = ", ".join(_render_operand(a, 0, False) for a in self.args)
        return f"np.{self.ufunc.__name__}({operands}, out={out})"


def _expand(op: Any, x: Sym) -> Sym:
    return x.program.call("spread", ops.spread, x, op.shape)


def _sum_to(op: Any, x: Sym) -> Sym:
    summed: Sym = ops.unbroadcast(x, op.shape)  # type: ignore[arg-type,assignment]  # runs on the Sym
    return summed


def _scatter_add(op: Any, x: Sym) -> Sym:
    program = x.program
    where = program.positions_name(op.picks.positions)
    unique = op.picks.one_pick_per_line
    value = scatter_add(x.value, op.picks.positions, op.shape, unique)
    out = Sym(program, value, f"scatter_add({{0}}, {where}, {op.shape}, {unique})", (x,))
    if unique and x.shape == op.picks.index.shape:
        out.scattered = (x, int(op.picks.axis) % len(op.shape))
    return out


# The adjoint ops the rules call (through expand, sum_to, scatter_add), written as code.
def _softmax(op: Any, x: Sym) -> Sym:
    """The fused loss's P, which its backward rule uses: its own forward, on Sym values."""
    p: Sym = op.forward(x)
    return p


_ADJOINTS: dict[type, Callable[[Any, Sym], Sym]] = {
    ops.Expand: _expand,
    ops.SumTo: _sum_to,
    ops.ScatterAdd: _scatter_add,
    ops.Softmax: _softmax,
}


def same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def value_of(x: Any) -> Any:
    return x.value if isinstance(x, Sym) else x


def _axis_text(axis: Any) -> str:
    if isinstance(axis, (tuple, list)):
        return repr(tuple(int(a) for a in axis))
    return repr(axis if axis is None else int(axis))


def _render_operand(x: Any, outer: int, right: bool) -> str:
    if isinstance(x, Sym):
        return x.render(outer, right)
    text, precedence = literal(x) or (repr(x), ATOM)
    return f"({text})" if precedence < outer or (precedence == outer and right) else text


def _render(sym: Sym, outer: int, right: bool) -> str:
    p = sym.precedence
    template = sym.template
    if p == ATOM:  # a call or a method: the receiver {0} of `.T`, `.sum(...)`, `[...]` must be an atom
        parts = [
            _render_operand(a, ATOM if template.startswith(f"{{{i}}}") else 0, False)
            for i, a in enumerate(sym.args)
        ]
    elif p == UNARY:
        parts = [_render_operand(sym.args[0], UNARY, False)]
    elif p == POW:  # right-associative; a negative or compound base needs parentheses
        parts = [_render_operand(sym.args[0], POW + 1, False), _render_operand(sym.args[1], UNARY, False)]
    else:  # left-associative (comparisons do not chain: both sides bracketed)
        parts = [
            _render_operand(sym.args[0], p + 1 if p == CMP else p, False),
            _render_operand(sym.args[1], p, True),
        ]
    text = template.format(*parts)
    return f"({text})" if p < outer or (p == outer and right) else text
