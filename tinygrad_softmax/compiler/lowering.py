"""The derived formulas written as NumPy lines: each shared node once, in place where nothing else reads it.

:func:`derived_lines` turns the gradients :func:`.formula.derive_trace` derived
into the lines that follow the step program's forward: a formula the forward
already computed is read by its name (``Z``, and ``softmax(Z)`` as the
forward's ``exp / S``), ``A − onehot(y)`` subtracts ``classes == y`` in A's own
array, a number that scales several gradients scales their shared factor once
(``dZ = (P − Y)/N``), and a matrix product is turned the way
:func:`matmul.product <tinygrad_softmax.matmul.product>` computes it for its operands.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from .. import orientation
from ..orientation import SMALL
from .expr import Expr, binary, matmul, num, reduction
from .formula import Derived

ELEMENTWISE_CODE = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_MAKES_A_FRESH_FLOAT = ("add", "sub", "mul", "div", "neg", "softmax", "matmul", "pow", "relu")


class Hot(NamedTuple):
    """A one-hot of labels the lines read: its variable, the classes constant, the line that makes it."""

    name: str
    classes: str
    line: str
    axis: int  # the class axis
    shape: tuple[int, ...]  # the one-hot's shape


class _Coder:
    """Writes formulas as lines: each node shared by several formulas, or worth a name, once."""

    def __init__(self, derived: Derived, taken: set[str], arrays: dict[str, Any], dtype: Any) -> None:
        self.derived = derived
        self.taken = taken
        self.arrays = arrays  # the traced call's array of each name the program has (for their layouts)
        self.dtype = dtype  # the float dtype of the gradients
        self.lines: list[str] = []
        self.names: dict[Any, str] = {}  # an Expr's key -> the variable holding it
        self.uses: dict[Any, int] = {}
        self.fresh_floats: set[str] = set()  # variables holding a new float array only this code made
        self.constants: dict[str, Any] = {}  # the arrays the lines read that no call changes
        self.hots: dict[str, Hot] = {}  # the labels' positions variable -> the one-hot made of them

    def count(self, e: Expr) -> None:
        stack = [e]
        while stack:
            node = stack.pop()
            self.uses[node.key] = self.uses.get(node.key, 0) + 1
            if self.uses[node.key] == 1 and node.key not in self.derived.forward_names:
                stack.extend(node.args)

    def fresh(self, base: str) -> str:
        base = base if base.isidentifier() else "t"
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def line(self, e: Expr, base: str, code: str, fresh_float: bool) -> str:
        name = self.fresh(self.derived.intermediate.get(e.key, base))
        self.lines.append(f"{name} = {code}")
        self.names[e.key] = name
        if fresh_float:
            self.fresh_floats.add(name)
        return name

    def name(self, e: Expr, base: str = "t") -> str:
        """The variable that holds ``e`` (a line written for it if needed)."""
        known = self.names.get(e.key) or self.derived.forward_names.get(e.key)
        if known is not None:
            return known
        done = self.minus_onehot(e)
        if done is not None:
            return done
        return self.line(e, base, self.code(e), e.kind in _MAKES_A_FRESH_FLOAT)

    def minus_onehot(self, e: Expr) -> str | None:
        """``A − onehot(y)`` as ``A[picked] -= 1`` in A's own array (a copy if A is read elsewhere)."""
        if e.kind != "sub" or e.args[1].kind != "onehot" or e.args[1].args[0].kind != "var":
            return None
        where = self.derived.labels.get(str(e.args[1].args[0].attrs[0]))
        if where is None or e.args[0].shape != e.shape:
            return None
        left = self.operand(e.args[0])
        if left not in self.fresh_floats or self.uses.get(e.args[0].key, 0) != 1:
            copied = self.fresh("P_minus_Y")
            self.lines.append(f"{copied} = {left}.copy()")
            left = copied
        if where.positions in self.hots:  # these labels' one-hot is made already
            hot = self.hots[where.positions][0]
        else:
            hot, classes = self.fresh("Y"), self.fresh("classes")
            along = [1] * len(e.shape)
            along[where.axis] = e.shape[where.axis]
            self.constants[classes] = np.arange(e.shape[where.axis]).reshape(along)
            self.lines.append(
                f"{hot} = np.equal({classes}, {where.index})  # onehot(y): True where classes "
                f"0..{e.shape[where.axis] - 1} equal the label"
            )
            self.hots[where.positions] = Hot(hot, classes, self.lines[-1], where.axis, e.shape)
        self.lines.append(
            f"{left} = np.subtract({left}, {hot}, out={left})  # − onehot(y), in {left}'s own array"
        )
        self.names[e.key] = left
        self.fresh_floats.add(left)
        return left

    def operand(self, e: Expr) -> str:
        """``e`` as an operand: a name or a number, a line of its own if it is used more than once."""
        if e.kind == "num":
            return _number(e.attrs[0])
        if e.kind == "var":
            return str(e.attrs[0])
        known = self.names.get(e.key) or self.derived.forward_names.get(e.key)
        if known is not None:
            return known
        if self.uses.get(e.key, 0) > 1 or e.kind in ("softmax", "onehot", "sub", "matmul"):
            minus_y = e.kind == "sub" and e.args[1].kind == "onehot"
            return self.name(e, "P_minus_Y" if minus_y else _BASES.get(e.kind, "t"))
        code = self.code(e)
        return code if e.kind in ("transpose", "sum", "exp", "log") else f"({code})"

    def in_place(self, kind: str, a: Expr, b: Expr, shape: tuple[int, ...]) -> str | None:
        """``np.op(a, b, out=a)`` when ``a`` is a new float array of the result's shape read nowhere else."""
        if kind not in ELEMENTWISE_CODE or a.shape != shape or self.uses.get(a.key, 0) != 1:
            return None
        left = self.operand(a)
        if left not in self.fresh_floats:
            return None
        ufunc = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}[kind]
        self.fresh_floats.discard(left)
        return f"np.{ufunc}({left}, {self.operand(b)}, out={left})"

    def code(self, e: Expr) -> str:
        kind, args = e.kind, e.args
        if kind in ("var", "num"):
            return self.operand(e)
        if kind in ELEMENTWISE_CODE:
            a, b = args
            if kind == "mul" and a.kind == "num" and b.shape == e.shape:
                a, b = b, a  # the number last: c·X is computed as X * c
            if kind == "mul" and b.kind == "num" and _is_reciprocal(b.attrs[0]):
                kind, b = "div", num(1 / b.attrs[0])
            done = self.in_place(kind, a, b, e.shape)
            if done is not None:
                return done
            return f"{self.operand(a)} {ELEMENTWISE_CODE[kind]} {self.operand(b)}"
        x = args[0] if args else None
        if kind == "neg":
            return f"-{self.operand(x)}"  # type: ignore[arg-type]
        if kind == "pow":
            return f"{self.operand(x)} ** {_number(e.attrs[0])}"  # type: ignore[arg-type]
        if kind == "relu":
            return f"np.maximum({self.operand(x)}, 0)"  # type: ignore[arg-type]
        if kind == "gt":
            return f"{self.operand(args[0])} > {self.operand(args[1])}"
        if kind == "matmul":
            return self.product(args[0], args[1])
        if kind == "transpose":
            axes = e.attrs[0]
            if len(axes) == 2:
                return f"{self.operand(x)}.T"  # type: ignore[arg-type]
            return f"np.transpose({self.operand(x)}, {axes})"  # type: ignore[arg-type]
        if kind == "sum":
            axes, keepdims = e.attrs
            return f"np.add.reduce({self.operand(x)}, axis={axes}, keepdims={keepdims})"  # type: ignore[arg-type]
        if kind == "expand":
            return f"np.broadcast_to({self.operand(x)}, {e.attrs[0]})"  # type: ignore[arg-type]
        if kind == "softmax":
            return self.softmax(x, e.attrs[0])  # type: ignore[arg-type]
        if kind == "onehot":
            where = self.derived.labels.get(str(x.attrs[0]))  # type: ignore[union-attr]
            if where is None:
                raise _NoCode("labels the program does not read")
            return f"onehot({where.positions}, {e.shape})"
        raise _NoCode(f"no code for {kind}")

    def product(self, a: Expr, b: Expr) -> str:
        """``a @ b`` the way round :func:`matmul.product <tinygrad_softmax.matmul.product>` computes it
        for these operands (:func:`orientation.turned <tinygrad_softmax.orientation.turned>`, on
        arrays of their shapes, dtypes and memory layouts), decided once, here, as the engine's
        matmul rule decides it when the step program is traced."""
        (m, k), n = a.shape, b.shape[1]
        if m * k * n < SMALL or not orientation.turned(self.sample(a), self.sample(b)):
            return f"np.dot({self.operand(a)}, {self.operand(b)})"
        return f"np.dot({self.transposed(b)}, {self.transposed(a)}).T"

    def sample(self, e: Expr) -> Any:
        """An array like the one ``e`` is at run time: the traced call's, or a new C-ordered one."""
        if e.kind == "transpose" and e.ndim == 2:
            return self.sample(e.args[0]).T
        name = str(e.attrs[0]) if e.kind == "var" else self.derived.forward_names.get(e.key)
        found = self.arrays.get(name) if name is not None else None
        return found if isinstance(found, np.ndarray) else np.empty(e.shape, dtype=self.dtype)

    def transposed(self, e: Expr) -> str:
        if e.kind == "transpose" and e.ndim == 2:
            return self.operand(e.args[0])
        return f"{self.operand(e)}.T"

    def softmax(self, a: Expr, axis: int) -> str:
        """softmax(a) as the forward's E / S if it has E = exp(a − m), S = Σ E (m constant along axis)."""
        for e, name in self.derived.exps:
            shifted = e.args[0]
            m = shifted.args[1]
            if shifted.args[0].key == a.key and (m.ndim == 0 or m.shape[axis] == 1):
                total = self.derived.sums.get(reduction("sum", e, axis, True).key)
                if total is not None:
                    return f"{name} / {total}"
        return f"softmax({self.operand(a)}, {axis})"


class _NoCode(Exception):
    pass


_BASES = {"softmax": "P", "onehot": "Y"}


def _scale_inside(e: Expr, uses: dict[Any, int]) -> Expr:
    """c·(A B) = (c·A) B and c·Σ A = Σ (c·A), with c put on the factor other gradients share.

    The identity "numbers out of a product" read backwards: the number then scales
    the shared factor once (``dZ = (P − Y)/N``), not each gradient made from it.
    """
    if e.kind == "mul" and e.args[0].kind == "num":
        c, x = e.args

        def scaled(a: Expr) -> Expr:
            return binary("mul", c, a)
    elif e.kind == "div" and e.args[1].kind == "num":
        x, c = e.args

        def scaled(a: Expr) -> Expr:
            return binary("div", a, c)
    else:
        return e
    if x.kind == "matmul":
        a, b = x.args
        if uses.get(b.key, 0) > uses.get(a.key, 0):
            return matmul(a, scaled(b))
        if uses.get(a.key, 0) > 1:
            return matmul(scaled(a), b)
    if x.kind == "sum" and uses.get(x.args[0].key, 0) > 1:
        return reduction("sum", scaled(x.args[0]), x.attrs[0], x.attrs[1])
    return e


def _is_reciprocal(c: Any) -> bool:
    return isinstance(c, Fraction) and c.numerator == 1 and c.denominator > 1


def _number(c: Any) -> str:
    if isinstance(c, Fraction):
        return str(c.numerator) if c.denominator == 1 else repr(c.numerator / c.denominator)
    return repr(float(c))


class Lowered(NamedTuple):
    """The derived lines, the variable of each argument's gradient, the constants they read, and
    for each labels' positions variable the one-hot made of those labels (for the program to
    make it where the labels are picked)."""

    lines: list[str]
    grads: dict[int, str]
    constants: dict[str, Any]
    hots: dict[str, Hot]


def derived_lines(
    derived: Derived,
    arg_names: list[str],
    shapes: dict[int, tuple[int, ...]],
    taken: set[str],
    arrays: dict[str, Any],
    dtype: Any,
) -> Lowered | str:
    """The backward as lines from the formulas, the variable of each argument's gradient, the constants.

    ``arrays``: the traced call's array of each variable (arguments, forward lines), whose
    dtypes and memory layouts decide which way round a product is computed; ``dtype``: the
    gradients' float dtype, the dtype of every array the lines make.
    """
    coder = _Coder(derived, taken, arrays, dtype)
    for e in derived.grads.values():
        coder.count(e)
    derived.grads = {i: _scale_inside(e, coder.uses) for i, e in derived.grads.items()}
    coder.uses = {}
    for e in derived.grads.values():
        coder.count(e)
    names: dict[int, str] = {}
    try:
        for position, e in derived.grads.items():
            base = "d" + arg_names[position]
            shape = shapes[position]
            if e.kind in ("var", "num") or e.key in derived.forward_names or e.key in coder.names:
                code = f"np.array(np.broadcast_to({coder.operand(e)}, {shape}))"
                name = coder.fresh(base)
                coder.lines.append(f"{name} = {code}")
            else:
                name = coder.line(e, base, coder.code(e), False)
                if e.shape != shape:
                    coder.lines.append(f"{name} = np.array(np.broadcast_to({name}, {shape}))")
            names[position] = name
    except _NoCode as why:
        return str(why)
    return Lowered(coder.lines, names, coder.constants, coder.hots)
