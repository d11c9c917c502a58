"""compile: the engine writes the gradient program.

``compile(fn)`` runs ``fn`` once on Tensors, as the eager engine would, and
watches every op it makes (the *trace*). From the trace it writes a plain
Python function of NumPy calls: the forward, one line per op, then the
backward walk, one line per gradient a backward rule sends, named after the
tensors (``Z = WX + b``, ``dZ = ...``, ``dW = dZ @ X.T``). Later calls with the
same shapes and dtypes run that function directly: no Tensor, no graph, no dict.

The backward lines are not written by hand here. The walk calls each op's own
``backward(grad, *inputs, out)`` from ``ops.py``, on :class:`Sym` values: a
``Sym`` holds the value the eager engine would compute *and* the NumPy
expression that computes it, so the rule, run once, both checks itself and
writes its line. (The rules stay the single source of truth.)

What tracing cannot see: Python control flow inside ``fn`` (an ``if`` on a
value, a loop whose length depends on the data) runs once, at trace time, and
the path it took is frozen into the program. On the second call with given
shapes ``compile`` traces again and compares the two programs; if the path or a
value computed outside the engine changed, it raises :class:`CompileError`.
"""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
import keyword
import linecache
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any, NamedTuple

import numpy as np

from . import engine, ops, tensor
from .tensor import Tensor

__all__ = ["compile", "Compiled", "CompileError", "CacheInfo"]

# Precedence of the Python operators the generated lines use (higher binds tighter).
_ATOM, _POW, _UNARY, _MUL, _ADD, _CMP = 100, 90, 80, 70, 60, 50
_BINARY = {
    "+": (_ADD, np.add),
    "-": (_ADD, np.subtract),
    "*": (_MUL, np.multiply),
    "/": (_MUL, np.true_divide),
    "@": (_MUL, np.matmul),
    "**": (_POW, np.power),
    ">": (_CMP, np.greater),
    "==": (_CMP, np.equal),
}
_UFUNC_SYMBOL = {ufunc: symbol for symbol, (_, ufunc) in _BINARY.items()}


class CompileError(RuntimeError):
    """``fn`` cannot be compiled, or took another path than the one compiled."""


# ---------------------------------------------------------------- what the program calls


def picks(index: np.ndarray, axis: int, size: int, grid: tuple[Any, ...]) -> tuple[Any, ...]:
    """The positions ``gather`` reads, with this call's labels as ``index`` along ``axis``.

    ``grid`` holds the running positions 0, 1, 2, ... along the other axes
    (they depend on the shapes only, so the program keeps them). The labels are
    checked: NumPy would wrap a negative one around.
    """
    # Python's min and max are quicker than NumPy's on a few labels, NumPy's on many.
    if index.size <= 64:
        values = index.ravel().tolist()
        low, high = (min(values), max(values)) if values else (0, 0)
    else:
        low, high = index.min(), index.max()
    if low < 0 or high >= size:
        raise IndexError(
            f"gather: index values must be in [0, {size}) along axis {axis}; "
            f"got values from {index.min()} to {index.max()}"
        )
    return (*grid[:axis], index, *grid[axis + 1 :])


def scatter_add(
    values: np.ndarray, positions: tuple[np.ndarray, ...], shape: tuple[int, ...], unique: bool
) -> Any:
    """Zeros of ``shape`` with ``values`` added at ``positions``: gather's adjoint, as ``Gather.scatter``."""
    out = np.zeros(shape, dtype=values.dtype)
    if unique:  # one pick per line: no position repeats, so assigning is adding
        out[positions] = values
    else:
        np.add.at(out, positions, values)
    return out


def one_hot_at(positions: tuple[np.ndarray, ...], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Y: 1 at each sample's label, 0 elsewhere (``SoftmaxCrossEntropy.one_hot``)."""
    out = np.zeros(shape, dtype=dtype)
    out[positions] = 1
    return out


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray, axis: int) -> Any:
    """The fused loss's forward, run by the op itself."""
    return ops.SoftmaxCrossEntropy(axis, labels).forward(z)


_RUNTIME: dict[str, Any] = {
    "np": np,
    "spread": ops.spread,
    "picks": picks,
    "scatter_add": scatter_add,
    "one_hot_at": one_hot_at,
    "softmax_cross_entropy": softmax_cross_entropy,
}


# ---------------------------------------------------------------- symbolic values


def _literal(value: Any) -> tuple[str, int] | None:
    """Python source for a number, with its precedence, or None if it is not a plain number."""
    if isinstance(value, bool):
        return repr(value), _ATOM
    if isinstance(value, (int, float)) and math.isfinite(value):
        text = repr(value)
        return text, _UNARY if text.startswith("-") else _ATOM
    if isinstance(value, np.generic) and value.dtype.kind in "biuf" and np.isfinite(value):
        return repr(value), _ATOM  # np.float32(0.5): the dtype is part of the arithmetic
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
        program: _Program,
        value: Any,
        template: str = "",
        args: tuple[Any, ...] = (),
        precedence: int = _ATOM,
        name: str | None = None,
    ) -> None:
        self.program = program
        self.value = value
        self.template = template  # "{0} + {1}", "np.exp({0})", ... (args rendered in)
        self.args = args
        self.precedence = precedence
        self.name = name  # set once the value has a line (or is an argument) of its own

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
        if _literal(other) is not None:
            return other
        return self.program.constant(np.asarray(other))

    def _binary(self, symbol: str, a: Any, b: Any) -> Sym:
        precedence, ufunc = _BINARY[symbol]
        a, b = self._operand(a), self._operand(b)
        value = ufunc(_value_of(a), _value_of(b))
        return Sym(self.program, value, "{0} " + symbol + " {1}", (a, b), precedence)

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
        return Sym(self.program, -self.value, "-{0}", (self,), _UNARY)

    def _method(self, value: Any, call: str) -> Sym:
        return Sym(self.program, value, "{0}" + call, (self,), _ATOM)

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
        return self._method(value, f".sum(axis={_axis_text(axis)}, keepdims={keepdims})")

    def max(self, axis: Any = None, keepdims: bool = False) -> Sym:
        value = self.value.max(axis=axis, keepdims=keepdims)
        return self._method(value, f".max(axis={_axis_text(axis)}, keepdims={keepdims})")

    def exp(self) -> Sym:
        return self.program.call("np.exp", np.exp, self)

    def log(self) -> Sym:
        return self.program.call("np.log", np.log, self)

    def __getitem__(self, positions: Any) -> Sym:
        where = self.program.positions_name(positions)
        return Sym(self.program, self.value[positions], "{0}[" + where + "]", (self,), _ATOM)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # np.exp(x), np.maximum(x, 0), ... in a forward rule, and `ndarray * Sym`.
        if method != "__call__" or kwargs:
            return NotImplemented
        if ufunc in _UFUNC_SYMBOL:
            return self._binary(_UFUNC_SYMBOL[ufunc], *inputs)
        return self.program.call(f"np.{ufunc.__name__}", ufunc, *inputs)

    # ------------------------------------------------------------ the adjoints, as code

    @staticmethod
    def _apply(op: ops.Op, x: Sym) -> Sym:
        """What ``Tensor._apply`` is to a Tensor: the adjoint helpers of ops.py come here."""
        program = x.program
        if isinstance(op, ops.Expand):
            return program.call("spread", ops.spread, x, op.shape)
        if isinstance(op, ops.SumTo):
            summed: Sym = ops.unbroadcast(x, op.shape)  # type: ignore[arg-type,assignment]  # runs on the Sym
            return summed
        if isinstance(op, ops.ScatterAdd):
            where = program.positions_name(op.picks.positions)
            unique = op.picks.one_pick_per_line
            value = scatter_add(x.value, op.picks.positions, op.shape, unique)
            return Sym(program, value, f"scatter_add({{0}}, {where}, {op.shape}, {unique})", (x,))
        raise CompileError(
            f"compile: the backward rule of {op.name} cannot be written as code (second order?)"
        )

    def render(self, outer: int = 0, right: bool = False) -> str:
        """The expression as Python source, parenthesised to keep NumPy's evaluation order."""
        if self.name is not None:
            return self.name
        return _render(self, outer, right)


def _value_of(x: Any) -> Any:
    return x.value if isinstance(x, Sym) else x


def _axis_text(axis: Any) -> str:
    if isinstance(axis, (tuple, list)):
        return repr(tuple(int(a) for a in axis))
    return repr(axis if axis is None else int(axis))


def _render_operand(x: Any, outer: int, right: bool) -> str:
    if isinstance(x, Sym):
        return x.render(outer, right)
    text, precedence = _literal(x) or (repr(x), _ATOM)
    return f"({text})" if precedence < outer or (precedence == outer and right) else text


def _render(sym: Sym, outer: int, right: bool) -> str:
    p = sym.precedence
    template = sym.template
    if p == _ATOM:  # a call or a method: the receiver {0} of `.T`, `.sum(...)`, `[...]` must be an atom
        parts = [
            _render_operand(a, _ATOM if template.startswith(f"{{{i}}}") else 0, False)
            for i, a in enumerate(sym.args)
        ]
    elif p == _UNARY:
        parts = [_render_operand(sym.args[0], _UNARY, False)]
    elif p == _POW:  # right-associative; a negative or compound base needs parentheses
        parts = [_render_operand(sym.args[0], _POW + 1, False), _render_operand(sym.args[1], _UNARY, False)]
    else:  # left-associative (comparisons do not chain: both sides bracketed)
        parts = [
            _render_operand(sym.args[0], p + 1 if p == _CMP else p, False),
            _render_operand(sym.args[1], p, True),
        ]
    text = template.format(*parts)
    return f"({text})" if p < outer or (p == outer and right) else text


# ---------------------------------------------------------------- the program being written


@dataclass
class _Line:
    target: str
    code: str
    comment: str
    section: str  # "forward", "backward" or "setup"
    op: str = ""  # the recorded op a forward line runs


@dataclass
class _Program:
    """The lines written so far, the names taken, and the constants the code refers to."""

    lines: list[_Line] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    constants: dict[str, Any] = field(default_factory=dict)
    positions: dict[int, str] = field(default_factory=dict)  # id of a positions tuple -> its variable
    section: str = "forward"

    def fresh(self, base: str) -> str:
        base = base if base.isidentifier() and not keyword.iskeyword(base) else "t"
        if base in _RUNTIME or hasattr(builtins, base):  # never hide max, sum, picks, ...
            base += "1"
        if base not in self.names:
            self.names.add(base)
            return base
        for k in count(1):
            if f"{base}_{k}" not in self.names:
                self.names.add(f"{base}_{k}")
                return f"{base}_{k}"
        raise AssertionError("unreachable")

    def constant(self, value: Any) -> Sym:
        name = self.fresh("const")
        self.constants[name] = value
        return Sym(self, value, name=name)

    def call(self, function: str, ufunc: Callable[..., Any], *args: Any) -> Sym:
        operands = args
        value = ufunc(*[_value_of(a) for a in operands])
        template = function + "(" + ", ".join(f"{{{i}}}" for i in range(len(operands))) + ")"
        rendered = tuple(a if isinstance(a, Sym) or _literal(a) else _Text(repr(a)) for a in operands)
        return Sym(self, value, template, rendered, _ATOM)

    def positions_name(self, positions: Any) -> str:
        name = self.positions.get(id(positions))
        if name is None:  # positions the trace did not see come from an argument: a constant
            name = self.fresh("positions")
            self.constants[name] = positions
            self.positions[id(positions)] = name
        return name

    def grid(self, positions: tuple[Any, ...], axis: int) -> str:
        """A constant for the running positions of a gather (the labels' slot left empty)."""
        name = self.fresh("grid")
        self.constants[name] = tuple(None if d == axis else p for d, p in enumerate(positions))
        return name

    def emit(self, target: str, sym: Sym, comment: str = "", op: str = "") -> Sym:
        """Write ``target = <sym>``; shared sub-expressions first get lines of their own."""
        for shared in _shared_subexpressions(sym):
            self.emit(self.fresh("t"), shared)
        self.lines.append(_Line(target, sym.render(), comment, self.section, op))
        sym.name = target
        return sym

    def emit_code(self, target: str, code: str, comment: str = "") -> None:
        """Write ``target = <code>`` for a value no rule computes (positions, zeros)."""
        self.lines.append(_Line(target, code, comment, self.section))


class _Text:
    """Source text passed through as it is (a shape, a dtype)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shared_subexpressions(root: Sym) -> list[Sym]:
    """Unnamed parts of the expression used more than once, innermost first."""
    uses: dict[Sym, int] = {}
    order: list[Sym] = []
    stack: list[tuple[Sym, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node is not root:
            uses[node] = uses.get(node, 0) + 1
            if uses[node] > 1:
                continue
        stack.append((node, True))
        for child in node.args:
            if isinstance(child, Sym) and child.name is None:
                stack.append((child, False))
    return [node for node in order if uses.get(node, 0) > 1]


# ---------------------------------------------------------------- tracing


class _Trace:
    """Every op ``fn`` makes, in order, recorded in the graph or not (``Tensor._apply`` calls ``record``)."""

    def __init__(self) -> None:
        self.events: list[tuple[ops.Op, tuple[Tensor, ...], Tensor]] = []

    def record(self, op: ops.Op, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        self.events.append((op, inputs, out))


def _array(t: Tensor) -> np.ndarray:
    # The tensor's own array, read only: `.data` would hand out a copy of one a graph
    # holds (copy on write), and the trace recognises tensors by their memory.
    return t._data


def _same_view(a: Any, b: Any) -> bool:
    """Whether two arrays are the same values in the same memory (a detached tensor, a view)."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return False
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class _Key(NamedTuple):
    args: tuple[Any, ...]


def _describe(arg: Any) -> Any:
    """What a call is keyed on: shapes, dtypes, memory layout, which arguments require grad."""
    if isinstance(arg, Tensor):
        a = _array(arg)
        return (a.shape, a.strides, a.dtype, arg.requires_grad)
    if isinstance(arg, np.ndarray):
        return (arg.shape, arg.strides, arg.dtype)
    try:
        hash(arg)
    except TypeError:
        raise TypeError(
            f"compile: arguments must be Tensors, NumPy arrays or hashable constants; "
            f"got {type(arg).__name__}"
        ) from None
    return (type(arg).__name__, arg)


@dataclass
class _Generated:
    """One traced program: its source, the function compiled from it, and what the check compares."""

    source: str
    function: Callable[..., Any]
    constants: dict[str, Any]
    ops: list[str]  # the recorded ops, in order
    dz_lines: dict[str, list[int]] = field(default_factory=dict)


def _argument_names(fn: Callable[..., Any], n: int, args: Sequence[Any]) -> list[str]:
    names: list[str] = []
    try:
        parameters = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    for i in range(n):
        own = args[i].name if isinstance(args[i], Tensor) else None
        names.append(parameters[i] if i < len(parameters) else own or f"arg{i}")
    return names


def _trace(
    fn: Callable[..., Any], args: Sequence[Any], function_name: str, has_aux: bool = False
) -> _Generated:
    """Run ``fn`` on Tensors, watch its ops, and write the program."""
    program = _Program()
    program.names.update(_RUNTIME)
    arg_names = [program.fresh(n) for n in _argument_names(fn, len(args), args)]
    # Fresh tensors for the trace: the caller's tensors get no graph and no .grad.
    traced_args = [
        Tensor(_array(a), requires_grad=a.requires_grad, name=a.name) if isinstance(a, Tensor) else a
        for a in args
    ]
    trace = _Trace()
    with tensor._traced_by(trace):
        root = fn(*traced_args)
    aux: Tensor | None = None
    if has_aux:
        if not (isinstance(root, tuple) and len(root) == 2 and isinstance(root[1], Tensor)):
            raise CompileError("compile: with has_aux=True, fn must return (loss, a Tensor to hand back)")
        root, aux = root
    if not isinstance(root, Tensor):
        raise CompileError(f"compile: fn must return a Tensor (the loss), got {type(root).__name__}")
    if _array(root).size != 1:
        raise CompileError(f"compile: fn must return a scalar loss, got a tensor of shape {root.shape}")

    syms: dict[Tensor, Sym] = {}
    for name, traced in zip(arg_names, traced_args):
        if isinstance(traced, Tensor):
            syms[traced] = Sym(program, _array(traced), name=name)
    # Every traced tensor with its Sym, to recognise a detached tensor by its memory.
    produced: list[tuple[Tensor, Sym]] = [(t, syms[t]) for t in traced_args if isinstance(t, Tensor)]

    def sym_of(t: Tensor) -> Sym:
        if t in syms:
            return syms[t]
        data = _array(t)
        for other, sym in reversed(produced):  # a detached tensor: the same memory as one traced
            if _same_view(data, _array(other)):
                syms[t] = sym
                return sym
        for name, arg in zip(arg_names, args):  # a NumPy argument lifted to a Tensor inside fn
            if isinstance(arg, np.ndarray) and (_same_view(data, arg) or _equal(data, arg)):
                syms[t] = Sym(program, data, name=name)
                return syms[t]
        if t.requires_grad:
            raise CompileError(
                f"compile: fn reads the tensor {t.name or ''} of shape {t.shape}, which requires grad but is "
                "not an argument; pass it as an argument so that the program reads it on every call and "
                "returns its gradient"
            )
        if data.ndim == 0 and _literal(data[()]) is not None:  # a lifted Python number
            syms[t] = Sym(program, data, name=repr(data[()]))
            return syms[t]
        syms[t] = program.constant(data)
        return syms[t]

    def index_source(index: np.ndarray) -> str:
        """Source for ``index`` (labels): from an integer argument where it came from one."""
        candidates = [
            (name, arg)
            for name, arg in zip(arg_names, args)
            if isinstance(arg, np.ndarray) and arg.dtype.kind in "iu" and arg.size == index.size
        ]
        # The argument the index is a view of, else one with the same values (a copy of it).
        for same_memory in (True, False):
            for name, arg in candidates:
                if same_memory and not np.may_share_memory(arg, index):
                    continue
                if _equal(arg.reshape(index.shape), index):
                    return name if arg.shape == index.shape else f"{name}.reshape({index.shape})"
        name = program.fresh("index")
        program.constants[name] = index.copy()
        return name

    # ------------------------------------------------------------ forward: one line per op
    recorded_ops: list[str] = []
    op_counts: dict[str, int] = {}
    for op, inputs, out in trace.events:
        ins = [sym_of(t) for t in inputs]
        target = program.fresh(_name_for(out, op, ins, op_counts))
        comment = op.name + ("" if out.requires_grad else " (no gradient)")
        if isinstance(op, ops.Gather):
            axis = ops._normalize_axis("gather", op.axis, inputs[0].shape)[0]
            where = program.fresh("picked")
            grid = program.grid(op.positions, axis)
            program.emit_code(
                where, f"picks({index_source(op.index)}, {axis}, {inputs[0].shape[axis]}, {grid})"
            )
            program.positions[id(op.positions)] = where
            sym = ins[0][op.positions]
        elif isinstance(op, ops.SoftmaxCrossEntropy):
            labels = index_source(op.labels)
            value = _array(out)
            sym = Sym(program, value, f"softmax_cross_entropy({{0}}, {labels}, {op.axis})", (ins[0],))
            where = program.fresh("picked")
            picks_index = f"{labels}.reshape({op.positions[op.axis].shape})"
            grid = program.grid(op.positions, op.axis)
            program.emit_code(where, f"picks({picks_index}, {op.axis}, {inputs[0].shape[op.axis]}, {grid})")
            program.positions[id(op.positions)] = where
        elif isinstance(op, (ops.Expand, ops.SumTo, ops.ScatterAdd)):
            sym = Sym._apply(op, ins[0])
        else:
            sym = copy.copy(op).forward(*ins)  # type: ignore[assignment]  # its own forward, on Sym values
            if not isinstance(sym, Sym):
                raise CompileError(f"compile: the forward of {op.name} did not run on traced values")
        if sym.name is not None:  # the op returned its input unchanged: still one line
            sym = Sym(program, sym.value, "{0}", (sym,))
        if not _equal(np.asarray(sym.value), np.asarray(_array(out))):
            raise CompileError(f"compile: the line written for {op.name} does not reproduce its value")
        program.emit(target, sym, comment, op=op.name)
        syms[out] = sym
        produced.append((out, sym))
        recorded_ops.append(op.name)

    root_sym = sym_of(root)
    loss_name = root_sym.name

    # ------------------------------------------------------------ backward: the walk, on Sym values
    program.section = "backward"
    grad_names: list[str | None] = [None] * len(args)
    wanted = [i for i, a in enumerate(traced_args) if isinstance(a, Tensor) and a.requires_grad]
    if root.requires_grad and wanted:
        grads = _walk(program, root, syms, recorded_args={traced_args[i]: i for i in wanted})
        returned: set[str] = set()
        for i in wanted:
            g = grads.get(traced_args[i])
            a = _array(traced_args[i])
            if g is None:
                name = program.fresh("d" + arg_names[i])
                program.emit_code(
                    name, f"np.zeros({a.shape}, dtype=np.{a.dtype.name})", "does not reach the loss"
                )
            else:
                name = _own(program, g, a.dtype, returned, "d" + arg_names[i])
            returned.add(name)
            grad_names[i] = name

    aux_name = sym_of(aux).name if aux is not None else None

    # ------------------------------------------------------------ the source
    grads_text = ", ".join(n or "None" for n in grad_names) + ("," if len(grad_names) == 1 else "")
    body = []
    section = ""
    for line in program.lines:
        if line.section != section and line.section != "setup":
            section = line.section
            body.append(f"    # {section}")
        text = f"    {line.target} = {line.code}"
        body.append(f"{text}  # {line.comment}" if line.comment else text)
    source = "\n".join(
        [
            f"def {function_name}({', '.join(arg_names)}):",
            *body,
            f"    return float({loss_name}), ({grads_text})" + (f", {aux_name}" if aux_name else ""),
            "",
        ]
    )
    filename = f"<compiled {function_name} #{next(_programs)}>"
    namespace = dict(_RUNTIME)
    namespace.update(program.constants)
    exec(builtins.compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    generated = _Generated(source, namespace[function_name], program.constants, recorded_ops)
    _check_against_engine(generated, root, traced_args, args)
    return generated


_programs = count(1)


def _name_for(out: Tensor, op: ops.Op, ins: list[Sym], op_counts: dict[str, int]) -> str:
    """A variable name: the tensor's own name, W and X's product ``WX``, else the op numbered (``exp1``)."""
    if out.name:
        word = "".join(c if c.isalnum() or c == "_" else " " for c in out.name).split()
        if word and word[0].isidentifier():
            return word[0]
    if isinstance(op, ops.MatMul) and all(s.name and len(s.name) <= 2 and s.name.isalpha() for s in ins):
        return "".join(s.name for s in ins if s.name)
    op_counts[op.name] = op_counts.get(op.name, 0) + 1
    return f"{op.name}{op_counts[op.name]}"


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    )


def _own(program: _Program, g: Sym, dtype: np.dtype[Any], returned: set[str], name: str) -> str:
    """The line that makes a returned gradient an array of its own (as ``engine.backward`` does)."""
    value = np.asarray(g.value)
    if g.dtype != dtype:
        program.emit(
            program.fresh(name), Sym(program, value.astype(dtype), f"{{0}}.astype(np.{dtype.name})", (g,))
        )
        return program.lines[-1].target
    shared = (
        g.name in returned or g.name is None or value.base is not None or not isinstance(g.value, np.ndarray)
    )
    if shared or g.name in program.constants or not value.flags.writeable:
        copied = np.array(value)
        last = program.lines[-1]
        if last.target == g.name and isinstance(g.value, np.ndarray) and g.name not in returned:
            # The line that made it, made to copy: dW = (X @ dZ.T).T.copy() (nothing reads dW before).
            code = last.code if g.precedence == _ATOM or g.template == "{0}" else f"({last.code})"
            last.code, last.comment = f"{code}.copy()", last.comment + "; an array of its own"
            return g.name
        sym = Sym(program, copied, "{0}.copy()" if isinstance(g.value, np.ndarray) else "np.array({0})", (g,))
        return program.emit(program.fresh(name), sym, "an array of its own").name or name
    return g.name  # type: ignore[return-value]


def _walk(
    program: _Program, root: Tensor, syms: dict[Tensor, Sym], recorded_args: dict[Tensor, int]
) -> dict[Tensor, Sym]:
    """``engine._chain_rule`` on Sym values: each rule from ops.py writes its own lines."""
    order = engine.topological_order(root)
    # How many gradients each tensor will receive, so the last one gets the plain name dZ.
    expected: dict[Tensor, int] = {}
    for node in order:
        for parent in node.parents:
            if parent.requires_grad:
                expected[parent] = expected.get(parent, 0) + 1
    arrived: dict[Tensor, int] = {}
    grads: dict[Tensor, Sym] = {}
    ones = Sym(program, np.ones(np.shape(_array(root)), dtype=_array(root).dtype))
    ones.template = f"np.ones({np.shape(_array(root))}, dtype=np.{_array(root).dtype.name})"
    program.emit(program.fresh("d" + (syms[root].name or "loss")), ones, "dL/dL = 1")
    grads[root] = ones
    finished: dict[Tensor, Sym] = {}
    for node in reversed(order):
        g = grads.pop(node)
        finished[node] = g
        fn = node.grad_fn
        if fn is None:
            continue
        inputs = [syms[p] for p in node.parents]
        if isinstance(fn, ops.SoftmaxCrossEntropy):
            fn = _with_traced_one_hot(program, fn, syms[node.parents[0]])
        rule_grads = fn.backward(g, *inputs, syms[node])
        for i, (parent, parent_grad) in enumerate(zip(node.parents, rule_grads)):
            if parent_grad is None or not parent.requires_grad:
                continue
            if not isinstance(parent_grad, Sym):
                parent_grad = program.constant(np.asarray(parent_grad))
            if parent_grad.shape != _array(parent).shape:
                parent_grad = ops.sum_to(parent_grad, _array(parent).shape)
            arrived[parent] = arrived.get(parent, 0) + 1
            k, total = arrived[parent], expected[parent]
            base = "d" + (syms[parent].name or "t")
            rule = f"{fn.name} backward → ∂L/∂{'in' if len(node.parents) == 1 else 'in' + '₁₂'[i]}"
            if parent_grad.name is None:
                program.emit(program.fresh(base if total == 1 else f"{base}_{k}"), parent_grad, rule)
            elif total == 1 and parent.name and syms[parent].name:
                # The rule passes the gradient on unchanged (add, sub): a line only to name dZ.
                alias = Sym(program, parent_grad.value, "{0}", (parent_grad,))
                parent_grad = program.emit(program.fresh(base), alias, rule)
            if parent in grads:
                total_grad = grads[parent] + parent_grad
                name = program.fresh(base if k == total else f"{base}_acc")
                program.emit(name, total_grad, f"{syms[parent].name} feeds {total} ops: their gradients add")
                grads[parent] = total_grad
            else:
                grads[parent] = parent_grad
    return {t: finished[t] for t in recorded_args if t in finished}


class _TracedOneHot(ops.SoftmaxCrossEntropy):
    """The fused op with Y written as code from this call's labels (not the labels of the trace)."""

    __slots__ = ("traced_one_hot",)
    traced_one_hot: Sym

    def one_hot(self) -> Any:
        return self.traced_one_hot


def _with_traced_one_hot(program: _Program, fn: ops.SoftmaxCrossEntropy, z: Sym) -> ops.SoftmaxCrossEntropy:
    shadow = _TracedOneHot(fn.axis, fn.labels)
    for slot in ("needs_grad", "positions", "count", "probs"):
        setattr(shadow, slot, getattr(fn, slot))
    where = program.positions_name(fn.positions)
    value = fn.one_hot()
    y = Sym(program, value, f"one_hot_at({where}, {z.shape}, np.{z.dtype.name})")
    shadow.traced_one_hot = program.emit(program.fresh("Y"), y, "one-hot labels")
    return shadow


def _check_against_engine(
    generated: _Generated, root: Tensor, traced_args: list[Any], args: Sequence[Any]
) -> None:
    """The program, run on the traced inputs, must give the eager engine's loss and gradients."""
    arrays = [_array(a) if isinstance(a, Tensor) else a for a in traced_args]
    loss, grads, *_ = generated.function(*arrays)
    sources = [a for a in traced_args if isinstance(a, Tensor) and a.requires_grad]
    if root.requires_grad and sources:
        ones = np.ones(np.shape(_array(root)), dtype=_array(root).dtype)
        eager = iter(engine.gradients(root, ones, sources))
    else:
        eager = iter(())
    problems = []
    if not np.isclose(loss, float(_array(root)), rtol=1e-12, atol=0, equal_nan=True):
        problems.append(f"loss {loss!r} != {float(_array(root))!r}")
    for i, (a, g) in enumerate(zip(traced_args, grads)):
        if not (isinstance(a, Tensor) and a.requires_grad):
            continue
        e = next(eager)
        expected = np.zeros_like(_array(a)) if e is None else np.asarray(e)
        tolerance = 1e3 * float(np.finfo(expected.dtype).eps)
        if g.shape != expected.shape or not np.allclose(
            g, expected, rtol=tolerance, atol=tolerance, equal_nan=True
        ):
            problems.append(f"the gradient of argument {i}")
    if problems:
        raise CompileError(
            "compile: the generated program does not reproduce the eager engine ("
            + "; ".join(problems)
            + "):\n"
            + generated.source
        )


# ---------------------------------------------------------------- the compiled function


class CacheInfo(NamedTuple):
    """How the cache of traced programs was used (as ``functools.lru_cache`` reports it)."""

    hits: int
    traces: int
    size: int
    maxsize: int


class Compiled:
    """``fn`` compiled: call it like ``fn``; it returns ``(loss, grads)``.

    ``loss`` is a float; ``grads`` a tuple aligned with the arguments: the
    gradient of the loss for each Tensor argument that requires grad (zeros if
    the loss does not depend on it), None for the others. Programs are kept
    per input shapes, dtypes and memory layout, at most ``cache_size`` of
    them (the least recently used is dropped).
    """

    def __init__(
        self, fn: Callable[..., Any], cache_size: int = 8, check: bool = True, has_aux: bool = False
    ) -> None:
        if not callable(fn):
            raise TypeError(f"compile: fn must be callable, got {type(fn).__name__}")
        if cache_size < 1:
            raise ValueError(f"compile: cache_size must be at least 1, got {cache_size}")
        self.fn = fn
        self.cache_size = cache_size
        self.check = check
        self.has_aux = has_aux
        self._programs: OrderedDict[tuple[Any, ...], _Generated] = OrderedDict()
        self._unchecked: set[tuple[Any, ...]] = set()
        self._last: _Generated | None = None
        self._hits = 0
        self._traces = 0
        name = getattr(fn, "__name__", "step")
        self._name = name if name.isidentifier() and name != "<lambda>" else "step"
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any) -> Any:
        # The key and the arrays in one pass: at lecture sizes this loop is a good part of a call.
        key: list[Any] = []
        arrays: list[Any] = []
        for a in args:
            if type(a) is Tensor:
                data = a._data  # only read: no copy on write (see _array)
                key.append((data.shape, data.strides, data.dtype, a.requires_grad))
                arrays.append(data)
            elif type(a) is np.ndarray:
                key.append((a.shape, a.strides, a.dtype))
                arrays.append(a)
            else:
                key.append(_describe(a))
                arrays.append(_array(a) if isinstance(a, Tensor) else a)
        found = tuple(key)
        program = self._programs.get(found)
        if program is None or self._unchecked:
            program = self._look_up(found, args, program)
        elif len(self._programs) > 1:
            self._programs.move_to_end(found)  # least recently used goes first
        self._hits += 1
        self._last = program
        return program.function(*arrays)

    def _look_up(self, key: tuple[Any, ...], args: Sequence[Any], program: _Generated | None) -> _Generated:
        """Trace on a new key; on the second call with a key, trace again and compare."""
        if program is None:
            self._hits -= 1  # not a hit: __call__ counts it back
            return self._trace(key, args)
        if key in self._unchecked:
            self._unchecked.discard(key)
            self._compare(program, self._trace(key, args, keep=False))
        self._programs.move_to_end(key)
        return program

    def _trace(self, key: tuple[Any, ...], args: Sequence[Any], keep: bool = True) -> _Generated:
        self._traces += 1
        program = _trace(self.fn, args, self._name, self.has_aux)
        if keep:
            self._programs[key] = program
            if self.check:
                self._unchecked.add(key)
            while len(self._programs) > self.cache_size:
                dropped, _ = self._programs.popitem(last=False)
                self._unchecked.discard(dropped)
        return program

    def _compare(self, first: _Generated, second: _Generated) -> None:
        """Raise if the second trace wrote another program: ``fn`` branched on the data."""
        if first.source != second.source:
            a, b = first.source.splitlines(), second.source.splitlines()
            where = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            first_line = a[where] if where < len(a) else "(the program ended)"
            second_line = b[where] if where < len(b) else "(the program ended)"
            raise CompileError(
                "compile: fn took another path on a second call with the same shapes: its Python control "
                "flow, or a number it computes outside the engine (NumPy on .data), depends on the input "
                "values, and compiled code would freeze what it did at trace time. "
                f"Line {where + 1} was\n  {first_line.strip()}\nand is now\n  {second_line.strip()}\n"
                "Run fn eagerly, or compute the value with Tensor ops or pass it as an argument."
            )
        for name, value in first.constants.items():
            other = second.constants.get(name, ())
            same = (
                all(x is y is None or _equal(x, y) for x, y in zip(value, other))
                if isinstance(value, tuple)
                else _equal(value, other)
            )
            if not same:
                raise CompileError(
                    f"compile: the constant {name} changed between two calls with the same shapes: fn "
                    "computes it outside the engine (from .data or NumPy), so compiled code would freeze "
                    "its first value. Compute it with Tensor ops, or pass it as an argument."
                )

    def source(self, *args: Any) -> str:
        """The generated program: for these arguments (traced if needed), else the last one run."""
        if args:
            key = tuple([_describe(a) for a in args])
            program = self._programs.get(key) or self._trace(key, args)
            return program.source
        if self._last is None:
            raise RuntimeError(
                "source: nothing compiled yet; call the compiled function first or pass arguments"
            )
        return self._last.source

    def ops(self) -> list[str]:
        """The ops the last program run recorded, in order (it has one forward line for each)."""
        if self._last is None:
            raise RuntimeError("ops: nothing compiled yet; call the compiled function first")
        return list(self._last.ops)

    def value(self, name: str, *args: Any) -> Any:
        """The value of variable ``name`` in the program for ``args``: its lines up to ``name``, run.

        For reading a program line by line (``compiled.value("dZ", W, b, X, y)``).
        """
        key = tuple([_describe(a) for a in args])
        program = self._programs.get(key) or self._trace(key, args)
        function = ast.parse(program.source).body[0]
        assert isinstance(function, ast.FunctionDef)
        body: list[ast.stmt] = []
        for statement in function.body:
            if isinstance(statement, ast.Return):
                break
            body.append(statement)
            if any(isinstance(t, ast.Name) and t.id == name for t in getattr(statement, "targets", [])):
                break
        else:
            raise KeyError(f"value: the program has no variable {name!r}")
        function.body = [*body, ast.Return(ast.Name(name, ast.Load()))]
        function.name = "_up_to"
        code = builtins.compile(ast.fix_missing_locations(ast.Module([function], [])), "<value>", "exec")
        namespace = dict(program.function.__globals__)
        exec(code, namespace)
        return namespace["_up_to"](*[_array(a) if isinstance(a, Tensor) else a for a in args])

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._traces, len(self._programs), self.cache_size)

    def cache_clear(self) -> None:
        self._programs.clear()
        self._unchecked.clear()


def compile(
    fn: Callable[..., Any], *, cache_size: int = 8, check: bool = True, has_aux: bool = False
) -> Compiled:
    """``fn(*tensors) -> scalar loss``, compiled to straight-line NumPy for the forward and backward.

    >>> import numpy as np
    >>> from tinygrad_softmax import Tensor, compile
    >>> step = compile(lambda w, x: ((w * x).sum() - 1.0) ** 2)
    >>> loss, (dw, dx) = step(Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0]))
    >>> loss, dw, dx
    (100.0, array([60., 80.]), None)

    Each call with new input shapes, dtypes or memory layout runs ``fn`` once
    on Tensors (the *trace*) and writes a program; later calls run that
    program. Python control flow inside ``fn`` is frozen at trace time: an
    ``if`` on a value takes the branch it took when traced. With ``check``
    (the default), the second call with given shapes traces again and raises
    :class:`CompileError` if the program changed. Integer arrays passed as
    arguments (labels) are read on every call; other NumPy values computed
    inside ``fn`` are constants of the program.

    With ``has_aux``, ``fn`` returns ``(loss, T)`` for a Tensor ``T`` it
    computed on the way (the logits, say), and each call returns
    ``(loss, grads, T's array)``.
    """
    return Compiled(fn, cache_size=cache_size, check=check, has_aux=has_aux)
