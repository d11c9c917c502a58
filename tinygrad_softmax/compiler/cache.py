"""The compiled function: a small, thread-safe cache of traced programs, keyed on what the arguments are.

``compile(fn)`` returns a :class:`Compiled`. A call whose arguments differ in
kind (Tensor, NumPy array, Python number), shape, dtype or memory layout
from every program kept traces ``fn`` (:mod:`.trace`) with stand-ins that
carry no numbers; other calls run the program. The values are never part of
the key: every array argument is read by the program on every call.
"""

from __future__ import annotations

import ast
import builtins
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor
from .abstract import AbstractArray, TracedTensor, refuse
from .backward import array
from .program import Generated
from .runtime import RUNTIME
from .trace import trace

__all__ = ["compile", "Compiled", "CacheInfo"]


def _describe(arg: Any) -> tuple[Any, ...]:
    """What a call is keyed on: the kind, shape, dtype and memory layout; for a Tensor, requires_grad."""
    if isinstance(arg, (TracedTensor, AbstractArray)):
        raise refuse(
            "fn calls a compiled function on a traced value",
            "Call the function it compiles instead: its ops are then traced with fn's.",
        )
    if isinstance(arg, Tensor):
        a = array(arg)
        return (a.shape, a.strides, a.dtype, arg.requires_grad)
    if isinstance(arg, np.ndarray):
        if arg.dtype.kind not in "biuf":
            raise TypeError(f"compile: array arguments must be numeric, got dtype {arg.dtype}")
        return (arg.shape, arg.strides, arg.dtype)
    try:
        hash(arg)
    except TypeError:
        raise TypeError(
            f"compile: arguments must be Tensors, NumPy arrays or hashable constants; "
            f"got {type(arg).__name__}"
        ) from None
    # A Python number is a constant of the program, like JAX's static arguments: its value is part
    # of the key (with its repr, so that 0.0 and -0.0, equal to ==, are two keys).
    return (type(arg), arg, repr(arg))


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
    per argument kinds, shapes, dtypes and memory layout, at most
    ``cache_size`` of them (the least recently used is dropped).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        cache_size: int = 8,
        check: bool = True,
        has_aux: bool = False,
        simplify: bool | str = "fastest",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"compile: fn must be callable, got {type(fn).__name__}")
        if simplify not in (True, False, "fastest"):
            raise ValueError(f"compile: simplify must be True, False or 'fastest', got {simplify!r}")
        if cache_size < 1:
            raise ValueError(f"compile: cache_size must be at least 1, got {cache_size}")
        self.fn = fn
        self.cache_size = cache_size
        self.check = check
        self.has_aux = has_aux
        self.simplify = simplify
        self._programs: OrderedDict[tuple[Any, ...], Generated] = OrderedDict()
        self._lock = threading.Lock()
        self._last: Generated | None = None
        self._call: Callable[..., Any] = self._keyed  # the last program run behind its guard, if any
        self._guards: dict[tuple[Any, ...], Callable[..., Any] | None] = {}
        self._hits = 0
        self._traces = 0
        name = getattr(fn, "__name__", "step")
        self._name = name if name.isidentifier() and name != "<lambda>" else "step"
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any) -> Any:
        # A call like the last one (most are) is checked by that program's guard: the same tests as
        # the key, written out for its arguments, so no key is built (see _guard). Any other call, and
        # every call before the first program, builds the key.
        return self._call(*args)

    def _keyed(self, *args: Any) -> Any:
        """A call that builds the key: the program for it (traced if none is kept), then its guard."""
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
        # A hit takes no lock: `get` and `move_to_end` are each one step for the interpreter, and a
        # program another thread drops in between is still whole, so this call runs it.
        program = self._programs.get(found)
        if program is None:
            program = self._program(found, args)
        else:
            if len(self._programs) > 1:
                try:  # noqa: SIM105  (cheaper than contextlib.suppress on every call)
                    self._programs.move_to_end(found)
                except KeyError:
                    pass
            self._hits += 1
        self._last = program
        if found not in self._guards and found in self._programs:
            self._guards[found] = _guard(found, args, program, self)  # None for arguments it cannot test
        self._call = self._guards.get(found) or self._keyed
        return program.runs(*arrays)

    def _program(self, key: tuple[Any, ...], args: Sequence[Any]) -> Generated:
        """The program for ``key``, traced if no program is kept for it (least recently used last out)."""
        with self._lock:
            program = self._programs.get(key)
            if program is not None:
                self._programs.move_to_end(key)
                self._hits += 1
                return program
        # outside the lock: slow
        program = trace(self.fn, args, self._name, self.has_aux, self.check, self.simplify)
        with self._lock:
            self._traces += 1
            self._programs[key] = program
            self._programs.move_to_end(key)
            while len(self._programs) > self.cache_size:
                dropped, _ = self._programs.popitem(last=False)
                self._guards.pop(dropped, None)
        return program

    def _for(self, args: Sequence[Any]) -> Generated:
        if args:
            return self._program(tuple([_describe(a) for a in args]), args)
        if self._last is None:
            raise RuntimeError("nothing compiled yet; call the compiled function first or pass arguments")
        return self._last

    def source(self, *args: Any, optimized: bool = False, simplified: bool = False) -> str:
        """The program for these arguments (traced if needed), else the last one run.

        By default the plain listing: one line per rule, each name a value of
        its own. ``optimized=True``: the step program as it runs, with its lines
        simplified and arrays reused (``out=``). ``simplified=True``: the derived
        program (the gradients as the identities simplify them, checked equal to
        the step program), or one line saying why there is none.
        """
        if optimized and simplified:
            raise ValueError("source: ask for optimized or simplified, not both")
        try:
            program = self._for(args)
        except RuntimeError as error:
            raise RuntimeError(f"source: {error}") from None
        if simplified:
            if not self.simplify:
                return "# no simpler program: compiled with simplify=False; the step-by-step program runs\n"
            return program.simplified or f"# {program.why}\n"
        return program.source if optimized else program.plain

    def runs_simplified(self, *args: Any) -> bool:
        """Whether the program for these arguments (else the last one run) is the derived one."""
        program = self._for(args)
        return (
            bool(self.simplify)
            and program.derived_function is not None
            and program.runs is program.derived_function
        )

    def chosen(self, *args: Any) -> str:
        """With ``simplify="fastest"``: which program runs for these arguments, and the times behind it."""
        return self._for(args).chosen

    def ops(self) -> list[str]:
        """The ops the last program run recorded, in order (it has one forward line for each)."""
        if self._last is None:
            raise RuntimeError("ops: nothing compiled yet; call the compiled function first")
        return list(self._last.ops)

    def value(self, name: str, *args: Any) -> Any:
        """The value of variable ``name`` of the plain listing for ``args``: its lines up to ``name``, run.

        For reading a program line by line (``compiled.value("dZ", W, b, X, y)``).
        """
        program = self._for(args)
        module = ast.parse(program.plain)
        namespace = {**RUNTIME, **program.constants}
        exec(builtins.compile(module, "<value>", "exec"), namespace)  # the lines run once, the function
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
        with self._lock:
            return CacheInfo(self._hits, self._traces, len(self._programs), self.cache_size)

    def cache_clear(self) -> None:
        with self._lock:
            self._programs.clear()
            self._guards.clear()
            self._call = self._keyed


def _guard(
    key: tuple[Any, ...], args: Sequence[Any], program: Generated, compiled: Compiled
) -> Callable[..., Any] | None:
    """``program`` behind a guard: run it if a call's arguments match ``key``, else build the key.

    The guard is written as code for these arguments, like the program: for a Tensor,
    ``type(a) is Tensor`` and its array's shape, strides and dtype and its requires_grad;
    for an array, the same without requires_grad. These are exactly what the key holds, so the
    guard lets through just the calls the key would find this program for; the others go to
    ``compiled._keyed``. Arguments of any other kind (a Python number, a Tensor subclass) get no
    guard: their calls build the key.
    """
    names = [f"a{i}" for i in range(len(args))]
    tests: list[str] = []
    passed: list[str] = []
    constants: dict[str, Any] = {
        "Tensor": Tensor,
        "ndarray": np.ndarray,
        "program": program,
        "compiled": compiled,
        "keyed": compiled._keyed,
    }
    for i, (a, described) in enumerate(zip(args, key)):
        if type(a) is Tensor:
            shape, strides, dtype, requires_grad = described
            tests += [
                f"type(a{i}) is Tensor",
                f"(d{i} := a{i}._data).shape == shape{i}",
                f"d{i}.strides == strides{i}",
                f"d{i}.dtype == dtype{i}",
                f"a{i}.requires_grad is {requires_grad}",
            ]
            passed.append(f"d{i}")
        elif type(a) is np.ndarray:
            shape, strides, dtype = described
            tests += [
                f"type(a{i}) is ndarray",
                f"a{i}.shape == shape{i}",
                f"a{i}.strides == strides{i}",
                f"a{i}.dtype == dtype{i}",
            ]
            passed.append(f"a{i}")
        else:
            return None
        constants.update({f"shape{i}": shape, f"strides{i}": strides, f"dtype{i}": dtype})
    unpack = f"        {', '.join(names)}, = args\n" if names else ""
    source = (
        "def guard(*args):\n"
        f"    if len(args) == {len(args)}:\n"
        f"{unpack}"
        f"        if {' and '.join(tests) or 'True'}:\n"
        "            compiled._hits += 1\n"
        f"            return program.runs({', '.join(passed)})\n"
        "    return keyed(*args)\n"
    )
    exec(builtins.compile(source, "<compiled guard>", "exec"), constants)
    guard: Callable[..., Any] = constants["guard"]
    return guard


def _assigns(statement: ast.stmt, name: str) -> bool:
    return any(isinstance(t, ast.Name) and t.id == name for t in getattr(statement, "targets", []))


def compile(
    fn: Callable[..., Any],
    *,
    cache_size: int = 8,
    check: bool = True,
    has_aux: bool = False,
    simplify: bool | str = "fastest",
) -> Compiled:
    """``fn(*tensors) -> scalar loss``, compiled to straight-line NumPy for the forward and backward.

    >>> import numpy as np
    >>> from tinygrad_softmax import Tensor, compile
    >>> step = compile(lambda w, x: ((w * x).sum() - 1.0) ** 2)
    >>> loss, (dw, dx) = step(Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0]))
    >>> loss, dw, dx
    (100.0, array([60., 80.]), None)

    Each call with new argument kinds, shapes, dtypes or memory layout runs
    ``fn`` once on stand-ins for its arguments (the *trace*) and writes a
    program; later calls run that program. As in JAX, the stand-ins carry
    shapes and dtypes, not numbers: every Tensor and NumPy argument (float,
    int or bool) is read on every call, told apart from the others by its
    position. What ``fn`` does with an argument outside the engine is
    recorded (``astype``, indexing, ``Tensor(x)``) or refused with
    :class:`CompileError` naming the line; so is a Python branch on a traced
    value (``if loss.item() > 0``). A Python number argument is a constant of
    the program (a new number traces again).

    With ``check`` (the default), the program is run once on the traced
    call's arguments and compared with the eager engine. With ``has_aux``,
    ``fn`` returns ``(loss, T)`` for a Tensor ``T`` it computed on the way
    (the logits, say), and each call returns ``(loss, grads, T's array)``.
    Returned arrays are the caller's own: never an argument's memory.

    With ``simplify`` (``"fastest"``, the default, or ``True``), the gradients
    are also derived as formulas from the trace, by the backward rules run on
    symbolic values and the named identities (``(softmax(Z) − onehot(y))/N``
    for the linear softmax classifier); where every gradient reaches a closed
    form, that program is checked once against the step program (float64:
    1e-12 relative; float32: a thousand roundings). ``"fastest"`` then times
    the two side by side once and runs the faster (``chosen()`` says which,
    with the times); ``True`` runs the derived program; ``False`` runs the step
    program, the eager engine's own rules line by line, bit for bit eager's.
    """
    return Compiled(fn, cache_size=cache_size, check=check, has_aux=has_aux, simplify=simplify)
