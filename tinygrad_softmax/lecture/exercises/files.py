"""The student's folder: ``my_rules.py`` with the rules to write, its README, and the reference rules.

The reference rules are not a second copy: :func:`solution_source` reads each
op's ``backward`` out of ``ops.py`` (``inspect.getsource``) and renames it, so
the solution is the package's own rules, word for word, whatever they become.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from importlib import resources
from pathlib import Path

from ... import ops
from .. import outputs
from .catalogue import CLASSIFIER_OPS, EXERCISES, Exercise, argument_names

__all__ = ["RULES_FILE", "README_FILE", "template_source", "solution_source", "init", "solution"]

RULES_FILE = "my_rules.py"
README_FILE = "README.md"

_HEADER = '''\
"""Your backward rules: one function per op, the local derivative and the chain rule.

Each function is the ``backward`` of one op of tinygrad_softmax/ops.py, with the same
arguments: ``self`` is the op (its settings, e.g. self.axes), ``grad`` is ∂L/∂out,
then the op's inputs and ``out``, its output, as the forward computed them. Return a
tuple with one gradient ∂L/∂input per input (the comma of ``(dx,)`` matters).

Write each rule with operations that work on NumPy arrays: arithmetic, ``@``, ``.T``,
``.reshape``, ``.transpose``, and the helpers imported below. Check your work with

    tinygrad-softmax exercise check {folder}
"""

from __future__ import annotations

import numpy as np

from tinygrad_softmax.ops import Grads, Value, constant, expand, scatter_add, sum_to

'''

_SOLUTION_HEADER = '''\
"""The reference backward rules: the package's own, read out of tinygrad_softmax/ops.py.

Each function is an op's ``backward`` from ops.py, renamed; ``self`` is the op.
``tinygrad-softmax exercise check`` gives these full marks.
"""

from __future__ import annotations

'''


def _signature(exercise: Exercise) -> str:
    """The def line, ops.py's signature under the student's function name."""
    names = ", ".join(f"{name}: Value" for name in ("grad", *argument_names(exercise), "out"))
    return f"def {exercise.function}(self, {names}) -> Grads:"


def _docstring(exercise: Exercise) -> str:
    parts = [exercise.computes + ".", "", "Shapes: " + exercise.shapes]
    if exercise.settings:
        parts += ["", "self: " + exercise.settings]
    parts += ["", "Hint: " + exercise.hint]
    # Keep the given line breaks of the shapes and settings (they list one thing per line).
    body = "\n".join(_wrap_keeping_lines(part) for part in parts)
    return '"""' + body + '\n"""'


# A call written in a hint, self.with_kept_axes(grad, x): its spaces are not places to break.
_CALL = re.compile(r"[\w.]+\([^()]*\)")
_KEEP = "\x00"  # stands for a space inside a call while the text is wrapped


def _wrap_keeping_lines(text: str) -> str:
    """Wrap each given line at 92 columns, never inside a call like ``f(a, b)``."""
    glued = _CALL.sub(lambda call: call.group().replace(" ", _KEEP), text)
    wrapped = "\n".join(
        "\n".join(textwrap.wrap(line, 92, break_on_hyphens=False, subsequent_indent="    ") or [""])
        for line in glued.split("\n")
    )
    return wrapped.replace(_KEEP, " ")


def template_source(names: tuple[str, ...], folder: str = ".") -> str:
    """``my_rules.py`` for the ops ``names``: each rule's docstring and ``raise NotImplementedError``."""
    blocks = [_HEADER.format(folder=folder)]
    for name in names:
        exercise = EXERCISES[name]
        doc = textwrap.indent(_docstring(exercise), "    ")
        blocks.append(
            f"\n{_signature(exercise)}\n{doc}\n"
            f'    raise NotImplementedError("{exercise.function} is not written yet")\n\n'
        )
    return "".join(blocks).rstrip() + "\n"


def _rule_source(exercise: Exercise) -> tuple[str, set[str]]:
    """The op's own ``backward`` from ops.py, renamed, and the module names it uses."""
    source = textwrap.dedent(inspect.getsource(exercise.op.backward))
    tree = ast.parse(source)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    used = {
        node.id
        for node in ast.walk(function)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and hasattr(ops, node.id)
    }
    renamed = source.replace("def backward(", f"def {exercise.function}(", 1)
    return renamed, used


def solution_source(names: tuple[str, ...]) -> str:
    """The reference ``my_rules.py`` for the ops ``names``: ops.py's own rules, renamed."""
    rules = [_rule_source(EXERCISES[name]) for name in names]
    used = set().union(*(names_used for _, names_used in rules))
    helpers = ["Grads", "Value", *sorted(used - {"np", "Grads", "Value"})]
    imports = ["import numpy as np", ""] if "np" in used else []
    imports.append(f"from tinygrad_softmax.ops import {', '.join(helpers)}")
    body = "\n\n".join(text.rstrip() + "\n" for text, _ in rules)
    return _SOLUTION_HEADER + "\n".join(imports) + "\n\n\n" + body


def readme_text(names: tuple[str, ...], folder: str = ".") -> str:
    """The student's README: what to do, how to check, and what done means."""
    template = resources.files(__package__).joinpath("student_readme.md").read_text(encoding="utf-8")
    listing = "\n".join(f"- `{EXERCISES[name].function}`: {EXERCISES[name].computes}" for name in names)
    extra = (
        ""
        if set(CLASSIFIER_OPS) <= set(names)
        else "\nThe ops of the classifier you were not asked to write keep the package's own rules.\n"
    )
    return template.format(folder=folder, rules=listing, count=len(names), classifier_note=extra)


def _refuse_overwrite(folder: Path, force: bool) -> Path:
    outputs.check_folder(folder, "the exercise folder")
    target = folder / RULES_FILE
    if target.exists() and not force:
        raise ValueError(
            f"{target} already exists; it may hold a student's work. Use --force to overwrite it"
        )
    return target


def init(folder: str | Path, names: tuple[str, ...] = CLASSIFIER_OPS, force: bool = False) -> list[Path]:
    """Write ``folder/my_rules.py`` (the rules to write) and ``folder/README.md``; returns both paths."""
    folder = Path(folder)
    target = _refuse_overwrite(folder, force)
    shown = str(folder)
    outputs.write_text(target, template_source(names, shown))
    readme = outputs.write_text(folder / README_FILE, readme_text(names, shown))
    return [target, readme]


def solution(folder: str | Path, names: tuple[str, ...] = CLASSIFIER_OPS, force: bool = False) -> Path:
    """Write the reference ``folder/my_rules.py`` (the package's own rules); returns its path."""
    folder = Path(folder)
    target = _refuse_overwrite(folder, force)
    return outputs.write_text(target, solution_source(names))
