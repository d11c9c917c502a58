"""The compiled function: a small cache of traced programs, keyed on the arguments' shapes and layout.

``compile(fn)`` returns a :class:`Compiled`. A call with new shapes, dtypes or
memory layout traces ``fn`` (:mod:`.trace`); the second call with them traces
again and compares the two programs (a data-dependent branch shows as a
changed line); later calls run the program only.
"""

from __future__ import annotations

import ast
import builtins
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor
from .backward import array
from .symbolic import CompileError
from .trace import Generated, equal, trace

__all__ = ["compile", "Compiled", "CacheInfo"]


def _describe(arg: Any) -> tuple[Any, ...]:
    """What a call is keyed on: shapes, dtypes, memory layout, which arguments require grad."""
    if isinstance(arg, Tensor):
        a = array(arg)
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
    return (type(arg), arg)


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
        self._programs: OrderedDict[tuple[Any, ...], Generated] = OrderedDict()
        self._unchecked: set[tuple[Any, ...]] = set()
        self._last: Generated | None = None
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
                data = a._data  # only read: no copy on write (see backward.array)
                key.append((data.shape, data.strides, data.dtype, a.requires_grad))
                arrays.append(data)
            elif type(a) is np.ndarray:
                key.append((a.shape, a.strides, a.dtype))
                arrays.append(a)
            else:
                key.append(_describe(a))
                arrays.append(array(a) if isinstance(a, Tensor) else a)
        found = tuple(key)
        program = self._programs.get(found)
        if program is None or self._unchecked:
            program = self._look_up(found, args, program)
        elif len(self._programs) > 1:
            self._programs.move_to_end(found)  # least recently used goes first
        self._hits += 1
        self._last = program
        return program.function(*arrays)

    def _look_up(self, key: tuple[Any, ...], args: Sequence[Any], program: Generated | None) -> Generated:
        """Trace on a new key; on the second call with a key, trace again and compare."""
        if program is None:
            self._hits -= 1  # not a hit: __call__ counts it back
            return self._trace(key, args)
        if key in self._unchecked:
            self._unchecked.discard(key)
            self._compare(program, self._trace(key, args, keep=False))
        self._programs.move_to_end(key)
        return program

    def _trace(self, key: tuple[Any, ...], args: Sequence[Any], keep: bool = True) -> Generated:
        self._traces += 1
        program = trace(self.fn, args, self._name, self.has_aux)
        if keep:
            self._programs[key] = program
            if self.check:
                self._unchecked.add(key)
            while len(self._programs) > self.cache_size:
                dropped, _ = self._programs.popitem(last=False)
                self._unchecked.discard(dropped)
        return program

    def _compare(self, first: Generated, second: Generated) -> None:
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
                all(x is y is None or equal(x, y) for x, y in zip(value, other))
                if isinstance(value, tuple)
                else equal(value, other)
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
        module = ast.parse(program.source)
        namespace = dict(program.function.__globals__)
        for statement in module.body:  # a line run once, when the program was made
            if isinstance(statement, ast.Assign) and _assigns(statement, name):
                return namespace[name]
        function = next(s for s in module.body if isinstance(s, ast.FunctionDef))
        body: list[ast.stmt] = []
        for statement in function.body:
            if isinstance(statement, ast.Return):
                raise KeyError(f"value: the program has no variable {name!r}")
            body.append(statement)
            if _assigns(statement, name):
                break
        function.body = [*body, ast.Return(ast.Name(name, ast.Load()))]
        function.name = "_up_to"
        code = builtins.compile(ast.fix_missing_locations(ast.Module([function], [])), "<value>", "exec")
        exec(code, namespace)
        return namespace["_up_to"](*[array(a) if isinstance(a, Tensor) else a for a in args])

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._traces, len(self._programs), self.cache_size)

    def cache_clear(self) -> None:
        self._programs.clear()
        self._unchecked.clear()


def _assigns(statement: ast.stmt, name: str) -> bool:
    return any(isinstance(t, ast.Name) and t.id == name for t in getattr(statement, "targets", []))


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
