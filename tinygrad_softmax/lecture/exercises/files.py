"""The student's folder: ``my_rules.py`` with the rules to write, its README, and the model answers.

A rule's file imports NumPy and ``backward_helpers`` (``sum_to``, ``expand``,
``scatter_add``, ``constant``), the module the grader gives the student's process
(the package itself is not importable there). The model answers are the third
hint level of the catalogue, written with those helpers alone; the tests and
``exercise audit`` check that they grade like the package's own rules.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .. import outputs
from . import backward_helpers
from .catalogue import CLASSIFIER_OPS, EXERCISES, Exercise, argument_names

__all__ = [
    "RULES_FILE",
    "README_FILE",
    "HELPER_NAMES",
    "template_source",
    "solution_source",
    "rule_source",
    "compile_rules",
    "init",
    "solution",
]

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

from backward_helpers import Grads, Value, constant, expand, scatter_add, sum_to

'''

_SOLUTION_HEADER = '''\
"""The model backward rules: the same derivatives as the package's own rules in ops.py,
written with NumPy and the helpers of backward_helpers alone. ``self`` holds the op's
settings. ``tinygrad-softmax exercise check`` gives these full marks.
"""

from __future__ import annotations

import numpy as np

from backward_helpers import Grads, Value, constant, expand, scatter_add, sum_to

'''
# What a rule's file may use besides NumPy: the names backward_helpers gives.
HELPER_NAMES = ("Grads", "Value", "constant", "expand", "scatter_add", "sum_to")


def _signature(exercise: Exercise) -> str:
    """The def line, ops.py's signature under the student's function name."""
    names = ", ".join(f"{name}: Value" for name in ("grad", *argument_names(exercise), "out"))
    return f"def {exercise.function}(self, {names}) -> Grads:"


def _docstring(exercise: Exercise) -> str:
    parts = [exercise.computes + ".", "", "Shapes: " + exercise.shapes]
    if exercise.settings:
        parts += ["", "self: " + exercise.settings]
    parts += ["", "Hint: " + exercise.nudge]
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


def rule_source(exercise: Exercise, body: str | None = None) -> str:
    """One rule's function: the def line and ``body`` (default: the model answer)."""
    text = exercise.answer if body is None else body
    return f"{_signature(exercise)}\n{textwrap.indent(text.strip(), '    ')}\n"


def solution_source(names: tuple[str, ...]) -> str:
    """The model ``my_rules.py`` for the ops ``names``: each rule as the third hint level gives it."""
    return _SOLUTION_HEADER + "\n\n" + "\n\n".join(rule_source(EXERCISES[name]) for name in names)


def compile_rules(sources: dict[str, str]) -> dict[str, Callable[..., Any]]:
    """Function sources (function name → source) made into functions, with the helpers in scope.

    For rules the package wrote itself (model answers, mutants), run in the grader's own process.
    """
    namespace: dict[str, Any] = {"np": np, **{n: getattr(backward_helpers, n) for n in HELPER_NAMES}}
    functions: dict[str, Callable[..., Any]] = {}
    for function, source in sources.items():
        scope = dict(namespace)
        exec(compile(source, f"<{function}>", "exec"), scope)
        functions[function] = scope[function]
    return functions


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
