"""The program being written: its lines, the names taken, the constants it refers to.

Tracing appends one :class:`Line` per op (forward) and per gradient a rule
sends (backward); :meth:`Program.source` joins them into the function's text.
"""

from __future__ import annotations

import builtins
import keyword
import linecache
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from .runtime import RUNTIME
from .symbolic import ATOM, Sym, literal, value_of


@dataclass
class Line:
    target: str
    code: str
    comment: str
    section: str  # "forward", "backward" or "setup"
    op: str = ""  # the recorded op a forward line runs


@dataclass
class Program:
    """The lines written so far, the names taken, and the constants the code refers to."""

    lines: list[Line] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    constants: dict[str, Any] = field(default_factory=dict)
    positions: dict[int, str] = field(default_factory=dict)  # id of a positions tuple -> its variable
    section: str = "forward"

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
        return Sym(self, value, name=name)

    def call(self, function: str, ufunc: Callable[..., Any], *args: Any) -> Sym:
        operands = args
        value = ufunc(*[value_of(a) for a in operands])
        template = function + "(" + ", ".join(f"{{{i}}}" for i in range(len(operands))) + ")"
        rendered = tuple(a if isinstance(a, Sym) or literal(a) else _Text(repr(a)) for a in operands)
        return Sym(self, value, template, rendered, ATOM)

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
        self.lines.append(Line(target, sym.render(), comment, self.section, op))
        sym.name = target
        return sym

    def emit_code(self, target: str, code: str, comment: str = "") -> None:
        """Write ``target = <code>`` for a value no rule computes (positions, zeros)."""
        self.lines.append(Line(target, code, comment, self.section))

    def source(self, function_name: str, arg_names: list[str], returned: str) -> str:
        """The function's text: the lines under ``# forward`` and ``# backward``, then ``return``."""
        body = []
        section = ""
        for line in self.lines:
            if line.section != section and line.section != "setup":
                section = line.section
                body.append(f"    # {section}")
            text = f"    {line.target} = {line.code}"
            body.append(f"{text}  # {line.comment}" if line.comment else text)
        return "\n".join(
            [f"def {function_name}({', '.join(arg_names)}):", *body, f"    return {returned}", ""]
        )

    def function(self, source: str, function_name: str) -> Callable[..., Any]:
        """The source run as Python, in a namespace of the runtime helpers and this program's constants."""
        filename = f"<compiled {function_name} #{next(_programs)}>"
        namespace = dict(RUNTIME)
        namespace.update(self.constants)
        exec(builtins.compile(source, filename, "exec"), namespace)
        # Tracebacks and inspect show the generated lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        function: Callable[..., Any] = namespace[function_name]
        return function


_programs = count(1)


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
