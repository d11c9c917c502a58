"""What ``fn`` is handed while it is traced: values whose numbers it cannot read.

As in JAX, the trace runs ``fn`` on stand-ins for its arguments, told apart
by position only:

- a Tensor argument becomes a :class:`TracedTensor`, and so does every tensor
  an op makes from one. The engine computes with it as usual (the compiler
  reads its arrays to learn shapes, dtypes and which results are views), but
  ``fn`` cannot: ``.data``, ``.numpy()``, ``.item()``, ``float()``, ``bool()``
  and ``np.asarray`` raise :class:`ConcretizationError`;
- a NumPy argument (float, int or bool) becomes an :class:`AbstractArray`:
  its shape and dtype are known, ``astype``, indexing, ``.T``, ``reshape``
  and ``Tensor(x)`` are recorded as code, and anything else that would need
  its numbers (arithmetic, a NumPy function, a comparison used as a bool)
  raises, naming the line of ``fn`` that asked.

The engine itself may turn an ``AbstractArray`` into an array (the labels
``cross_entropy`` checks, the index of ``gather``): the array it gets is
remembered, so the op that keeps it is written as code reading the argument.
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..tensor import Tensor
from .symbolic import CompileError, Sym

_PACKAGE = Path(__file__).resolve().parents[1]
# Code of the package that is "user code" to the trace: it calls the engine as fn would.
_USER_ROOMS = ("lecture", "cli", "bench")


class ConcretizationError(CompileError):
    """``fn`` asked for the numbers of a traced value (a Python branch on a value, NumPy on ``.data``)."""


def _is_engine_file(filename: str) -> bool:
    """Whether code in ``filename`` is the engine's (or NumPy's), not ``fn``'s own."""
    try:
        relative = Path(filename).resolve().relative_to(_PACKAGE)
    except ValueError:
        return _is_numpy_file(filename)
    return relative.parts[0] not in _USER_ROOMS


def _is_numpy_file(filename: str) -> bool:
    return "numpy" in Path(filename).parts


def _caller_is_engine() -> bool:
    """Whether the code converting a value (past NumPy's own Python frames) is the engine's."""
    frame = sys._getframe(2)
    while frame is not None and _is_numpy_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and _is_engine_file(frame.f_code.co_filename)


def user_line() -> str:
    """``file:line (code)`` of the innermost frame that is ``fn``'s own code, not the engine's or NumPy's."""
    frame = sys._getframe(1)
    while frame is not None and _is_engine_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "an unknown line"
    filename, number = frame.f_code.co_filename, frame.f_lineno
    code = linecache.getline(filename, number).strip()
    return f"{filename}:{number}" + (f" ({code})" if code else "")


def refuse(what: str, fix: str) -> ConcretizationError:
    return ConcretizationError(
        f"compile: {what} at {user_line()}: the trace sees shapes and dtypes, not numbers, so the "
        f"compiled program could not follow it on the next call. {fix}"
    )


_BRANCH_FIX = "Compute it with Tensor ops, or run fn without compile."


class TracedTensor(Tensor):
    """A Tensor while ``fn`` is traced: the engine computes with it, ``fn`` cannot read its numbers."""

    __slots__ = ()

    @property
    def data(self) -> np.ndarray:
        raise refuse("fn reads .data of a traced tensor", _BRANCH_FIX)

    @data.setter
    def data(self, value: Any) -> None:
        raise refuse("fn assigns .data of a traced tensor", "Compute the new value with Tensor ops.")

    def numpy(self) -> np.ndarray:
        raise refuse("fn calls .numpy() on a traced tensor", _BRANCH_FIX)

    def item(self) -> float:
        raise refuse("fn calls .item() on a traced tensor", _BRANCH_FIX)

    def __float__(self) -> float:
        raise refuse("fn converts a traced tensor to float", _BRANCH_FIX)

    def __int__(self) -> int:
        raise refuse("fn converts a traced tensor to int", _BRANCH_FIX)

    def __index__(self) -> int:
        raise refuse("fn uses a traced tensor as an index", _BRANCH_FIX)

    def __bool__(self) -> bool:
        raise refuse("fn branches on a traced tensor (if/while/bool)", _BRANCH_FIX)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise refuse("fn converts a traced tensor to a NumPy array", _BRANCH_FIX)

    def backward(self, grad: Any = None, retain_intermediate_grads: bool = True) -> None:
        raise CompileError(
            f"compile: fn calls backward() at {user_line()}; fn must return the loss, and the "
            "compiled function computes its gradients"
        )

    def detach(self) -> Tensor:
        out = Tensor.detach(self)
        tracing = _tracer()
        if tracing is not None:
            tracing.detached(self, out)
        return out

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return f"TracedTensor(shape={self.shape}, dtype={self.dtype}{name})"


def _tracer() -> Any:
    from .. import grad_mode

    return grad_mode.tracing()


class AbstractArray:
    """A NumPy argument while ``fn`` is traced: a shape and a dtype, and code that computes it."""

    __array_priority__ = 1000  # `ndarray + AbstractArray` comes here, to be refused

    def __init__(self, sym: Sym, handed_out: Callable[[np.ndarray, Sym], None]) -> None:
        self.sym = sym
        self._handed_out = handed_out

    shape = property(lambda self: self.sym.shape)
    dtype = property(lambda self: self.sym.dtype)
    ndim = property(lambda self: self.sym.ndim)
    size = property(lambda self: self.sym.size)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def _new(self, sym: Sym) -> AbstractArray:
        return AbstractArray(sym, self._handed_out)

    # ------------------------------------------------------------ recorded as code

    def astype(self, dtype: Any, copy: bool = True) -> AbstractArray:
        dtype = np.dtype(dtype)
        value = self.sym.value.astype(dtype)
        return self._new(Sym(self.sym.program, value, f"{{0}}.astype(np.{dtype.name})", (self.sym,)))

    def __getitem__(self, index: Any) -> AbstractArray:
        if isinstance(index, AbstractArray):
            index = index.sym
        elif isinstance(index, tuple) and any(isinstance(i, AbstractArray) for i in index):
            raise refuse("fn indexes with a tuple holding a traced array", "Index with one array.")
        if isinstance(index, Sym):
            value = self.sym.value[index.value]
            return self._new(Sym(self.sym.program, value, "{0}[{1}]", (self.sym, index)))
        _static_index(index)
        value = self.sym.value[index]
        return self._new(Sym(self.sym.program, value, "{0}[" + _index_text(index) + "]", (self.sym,)))

    @property
    def T(self) -> AbstractArray:
        return self._new(self.sym.T)

    def reshape(self, *shape: Any) -> AbstractArray:
        new = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._new(self.sym.reshape(tuple(new)))

    def copy(self) -> AbstractArray:
        return self._new(Sym(self.sym.program, self.sym.value.copy(), "{0}.copy()", (self.sym,)))

    # ------------------------------------------------------------ the engine's own conversions

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if not _caller_is_engine():
            raise refuse(
                "fn converts a traced NumPy argument to an array (np.asarray, np.array, ...)",
                "Use Tensor(x), or pass the value you need as an argument of its own.",
            )
        array = np.array(self.sym.value, dtype=dtype)  # a fresh array: what the engine keeps is found by it
        self._handed_out(array, self.sym)
        return array

    # ------------------------------------------------------------ everything else needs the numbers

    def __bool__(self) -> bool:
        raise refuse("fn branches on a traced NumPy argument (if/while/bool)", _BRANCH_FIX)

    def __float__(self) -> float:
        raise refuse("fn converts a traced NumPy argument to float", _BRANCH_FIX)

    def __int__(self) -> int:
        raise refuse("fn converts a traced NumPy argument to int", _BRANCH_FIX)

    def __index__(self) -> int:
        raise refuse("fn uses a traced NumPy argument as a Python integer", _BRANCH_FIX)

    def __iter__(self) -> Any:
        raise refuse("fn iterates over a traced NumPy argument", _BRANCH_FIX)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise refuse(f"fn applies np.{ufunc.__name__} to a traced NumPy argument", _ARITHMETIC_FIX)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise refuse(f"fn calls np.{func.__name__} on a traced NumPy argument", _ARITHMETIC_FIX)

    def __getattr__(self, name: str) -> Any:
        # x.sum(), x.mean(), x.flat, ...: NumPy on the numbers (NumPy's own probes, __array_struct__
        # and the like, must find nothing, so that it asks __array__)
        if not name.startswith("_") and hasattr(np.ndarray, name):
            raise refuse(f"fn uses .{name} of a traced NumPy argument", _ARITHMETIC_FIX)
        raise AttributeError(f"'AbstractArray' object has no attribute {name!r}")

    def tolist(self) -> Any:
        raise refuse("fn calls .tolist() on a traced NumPy argument", _BRANCH_FIX)

    def item(self, *args: Any) -> Any:
        raise refuse("fn calls .item() on a traced NumPy argument", _BRANCH_FIX)

    def __repr__(self) -> str:
        return f"AbstractArray(shape={self.shape}, dtype={self.dtype})"


_ARITHMETIC_FIX = "Make it a Tensor first (Tensor(x) * 2.0), or pass the result as an argument."


def _refuse_arithmetic(symbol: str) -> Callable[..., Any]:
    def method(self: AbstractArray, *other: Any) -> Any:
        if other and isinstance(other[0], Tensor):
            return NotImplemented  # `x * t`: the Tensor's own operator records it (Tensor(x) * t)
        raise refuse(f"fn computes `{symbol}` with a traced NumPy argument", _ARITHMETIC_FIX)

    return method


for _name, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
    "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
}.items():  # fmt: skip
    setattr(AbstractArray, f"__{_name}__", _refuse_arithmetic(_symbol))
    setattr(AbstractArray, f"__r{_name}__", _refuse_arithmetic(_symbol))
for _name, _symbol in {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}.items():
    setattr(AbstractArray, f"__{_name}__", _refuse_arithmetic(_symbol))
for _name, _symbol in {"neg": "-", "pos": "+", "abs": "abs", "invert": "~"}.items():
    setattr(AbstractArray, f"__{_name}__", _refuse_arithmetic(_symbol))
AbstractArray.__hash__ = object.__hash__  # type: ignore[method-assign]


def _static_index(index: Any) -> None:
    """Refuse an index that is not a fixed position (an int, a slice, None, ...)."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if isinstance(part, (Tensor, np.ndarray, list)):
            raise refuse(
                "fn indexes a traced NumPy argument with an array",
                "Pass the index as an argument, or use Tensor.gather.",
            )


def _index_text(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    text = ", ".join(_part_text(p) for p in parts)
    return text + ("," if isinstance(index, tuple) and len(index) == 1 else "")


def _part_text(part: Any) -> str:
    if isinstance(part, slice):
        start, stop, step = (repr(x) if x is not None else "" for x in (part.start, part.stop, part.step))
        return f"{start}:{stop}" + (f":{step}" if step else "")
    if part is Ellipsis:
        return "..."
    if part is None:
        return "None"
    return repr(int(part))
