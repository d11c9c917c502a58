"""The program being written: its lines, the names taken, the constants it refers to.

Tracing appends one :class:`Line` per op (forward) and per gradient a rule
sends (backward); :meth:`Program.source` joins them into the program's text.
A line that reads no input of the function (the starting gradient 1 of the
loss, ``-1/N`` for a mean, ...) is run once, when the program is made, not on
every call: it goes to the ``once`` section, above the function.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import linecache
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from typing import Any

import numpy as np

from .runtime import RUNTIME
from .symbolic import ATOM, Sym, literal, value_of


@dataclass
class Line:
    target: str
    code: str
    comment: str
    section: str  # "once", "forward", "backward" or "setup"
    op: str = ""  # the recorded op a forward line runs
    sym: Sym | None = None  # what the line computes, if a Sym (not for positions or zeros)
    reads: frozenset[str] = frozenset()  # the names the code reads
    copied: bool = False  # the code ends in .copy(): a returned gradient made an array of its own
    out: str | None = None  # the dead array the result is written into (see optimize.reuse_buffers)
    each_call: bool = False  # its array is handed back, so it must run on every call (never hoisted)


# A name the code reads: not an attribute (`.T`), not a keyword argument (`axis=`), not inside a number.
_NAME = re.compile(r"(?<![.\w])([^\W\d]\w*)(?!\w)(?!\s*=(?!=))")


@lru_cache(maxsize=4096)
def names_read(code: str) -> frozenset[str]:
    """Every variable name a line of code reads (the lines hold no strings, so a scan finds them)."""
    return frozenset(name for name in _NAME.findall(code) if not keyword.iskeyword(name))


@dataclass
class Program:
    """The lines written so far, the names taken, and the constants the code refers to."""

    lines: list[Line] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    constants: dict[str, Any] = field(default_factory=dict)
    positions: dict[int, str] = field(default_factory=dict)  # id of a positions tuple -> its variable
    section: str = "forward"
    arguments: set[str] = field(default_factory=set)  # the function's parameters: the caller's arrays
    # Names whose values no call changes: the runtime helpers, the constants, the lines run once.
    fixed: set[str] = field(default_factory=lambda: set(RUNTIME))

    def fresh(self, base: str) -> str:
        base = base if base.isidentifier() and not keyword.iskeyword(base) else "t"
        if base in RUNTIME or hasattr(builtins, base):  # never hide max, sum, picks, ...
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
        self.fixed.add(name)
        return Sym(self, value, name=name)

    def call(self, function: str, ufunc: Callable[..., Any], *args: Any) -> Sym:
        operands = args
        value = ufunc(*[value_of(a) for a in operands])
        template = function + "(" + ", ".join(f"{{{i}}}" for i in range(len(operands))) + ")"
        rendered = tuple(a if isinstance(a, Sym) or literal(a) else _Text(repr(a)) for a in operands)
        sym = Sym(self, value, template, rendered, ATOM)
        if isinstance(ufunc, np.ufunc) and not any(isinstance(a, _Text) for a in rendered):
            sym.ufunc = ufunc
        return sym

    def positions_name(self, positions: Any) -> str:
        name = self.positions.get(id(positions))
        if name is None:  # positions the trace did not see come from an argument: a constant
            name = self.fresh("positions")
            self.constants[name] = positions
            self.fixed.add(name)
            self.positions[id(positions)] = name
        return name

    def grid(self, positions: tuple[Any, ...], axis: int) -> str:
        """A constant for the running positions of a gather (the labels' slot left empty)."""
        name = self.fresh("grid")
        self.constants[name] = tuple(None if d == axis else p for d, p in enumerate(positions))
        self.fixed.add(name)
        return name

    def emit(self, target: str, sym: Sym, comment: str = "", op: str = "", once: bool = True) -> Sym:
        """Write ``target = <sym>``; shared sub-expressions first get lines of their own.

        With ``once`` (the default) a line that reads no input runs once, when the
        program is made; a line whose array is handed back to the caller must not.
        """
        for shared in _shared_subexpressions(sym):
            self.emit(self.fresh("t"), shared)
        note = sym.note
        line = Line(target, sym.render(), comment + (f" ({note})" if note else ""), self.section, op, sym)
        self._append(line, once)
        sym.name = target
        return sym

    def emit_code(self, target: str, code: str, comment: str = "", once: bool = True) -> None:
        """Write ``target = <code>`` for a value no rule computes (positions, zeros)."""
        self._append(Line(target, code, comment, self.section), once)

    def _append(self, line: Line, once: bool = True) -> None:
        line.reads = names_read(line.code)
        line.each_call = not once
        if once and line.reads <= self.fixed:
            line.section = "once"
            self.fixed.add(line.target)
        self.lines.append(line)

    def code_of(self, name: str) -> str:
        """The right-hand side of the line that assigns ``name``."""
        return next(line.code for line in self.lines if line.target == name)

    def is_fixed(self, x: Any) -> bool:
        """Whether ``x`` is the same on every call: a number, a constant, a line run once."""
        if not isinstance(x, Sym):
            return literal(x) is not None
        return x.name is not None and (x.name in self.fixed or literal_name(x.name))

    def source(self, function_name: str, arg_names: list[str], returned: str) -> str:
        """The program's text: the lines run once, then the function (forward, backward, return)."""
        once = [_text(line) for line in self.lines if line.section == "once"]
        if once:
            once = [ONCE_HEADING, *once, "", ""]
        body = []
        section = ""
        for line in self.lines:
            if line.section == "once":
                continue
            if line.section != section and line.section != "setup":
                section = line.section
                body.append(f"    # {section}")
            body.append("    " + _text(line))
        header = [f"def {function_name}({', '.join(arg_names)}):"]
        if any(line.out for line in self.lines):
            header.append(REUSE_NOTE)
        if any(".reduce(" in line.code for line in self.lines if line.section != "once"):
            header.append(REDUCE_NOTE)
        return "\n".join([*once, *header, *body, f"    return {returned}", ""])

    def function(self, source: str, function_name: str) -> Callable[..., Any]:
        """The source run as Python, in a namespace of the runtime helpers and this program's constants."""
        filename = f"<compiled {function_name} #{next(_programs)}>"
        namespace = dict(RUNTIME)
        namespace.update(self.constants)
        exec(builtins.compile(source, filename, "exec"), namespace)
        _show_in_tracebacks(filename, source)
        function: Callable[..., Any] = namespace[function_name]
        return function


_programs = count(1)
# The generated sources linecache holds, so that tracebacks and inspect show their lines: the
# most recent ones only, so that a long run that traces again and again holds a bounded amount.
SHOWN_IN_TRACEBACKS = 64
_shown: deque[str] = deque()
_shown_lock = threading.Lock()


def _show_in_tracebacks(filename: str, source: str) -> None:
    with _shown_lock:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        _shown.append(filename)
        while len(_shown) > SHOWN_IN_TRACEBACKS:
            linecache.cache.pop(_shown.popleft(), None)


def identifier(name: str | None) -> str:
    """A tensor's name as a Python identifier: ``"log S"`` is ``log_S``, ``"max (detached)"`` max_detached.

    A definition names what it defines (``"S = Σ exp"`` is ``S``), and a leading minus sign reads
    ``neg`` (``"−L"`` is ``neg_L``). Empty if no identifier can be made of it.
    """
    if not name:
        return ""
    name = name.split(" = ", 1)[0].strip()
    if name[:1] in ("−", "-"):
        name = "neg " + name[1:]
    words = "".join(c if c.isalnum() or c == "_" else " " for c in name).split()
    text = "_".join(words)
    if text and not text.isidentifier():
        text = "t_" + text
    return text if text.isidentifier() and not keyword.iskeyword(text) else ""


ONCE_HEADING = "# Read no input, so run once, when the program is made (the function reads them):"
REUSE_NOTE = (
    "    # out=A: the result goes into A's array, which no later line reads (the same numbers, no new array)"
)

REDUCE_NOTE = (
    "    # np.add.reduce(A, ...) is A.sum(...), np.maximum.reduce(A, ...) A.max(...): what the methods call"
)


def _text(line: Line) -> str:
    text = f"{line.target} = {line.code}"
    return f"{text}  # {line.comment}" if line.comment else text


def literal_name(name: str) -> bool:
    """A Sym named by its own value: a Python number lifted to a Tensor inside ``fn``."""
    try:
        return literal(ast.literal_eval(name)) is not None
    except (ValueError, SyntaxError):
        return False


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


@dataclass
class Generated:
    """One traced program: the plain listing, the optimised one and the function that runs it."""

    source: str  # the optimised listing: what ``function`` runs
    plain: str  # one line per rule, no buffer reuse
    function: Callable[..., Any]
    constants: dict[str, Any]
    ops: list[str]  # the recorded ops, in order
    runs: Callable[..., Any]  # what a call runs: the derived program if there is one, else ``function``
    simplified: str = ""  # the derived program's listing, if the identities reached a closed form;
    why: str = ""  # else why there is none (one line)
    derived_function: Callable[..., Any] | None = None
    chosen: str = ""  # with simplify="fastest": the two programs' times, and which runs
