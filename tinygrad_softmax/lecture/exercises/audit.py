"""``exercise audit``: the grader graded. Every catalogued mistake and every mutant must be caught.

Two kinds of wrong rules are run against the grading cases, through the same
request, answer and comparison as a student's (in this process: they are the
package's own text):

- each catalogued mistake (``catalogue.py``), made in every case where it can
  be made: caught when some case fails, and named when the report's hint is
  that mistake's;
- mutants of each model answer: the answer's code changed in one place, the
  way a student gets it wrong (a sign, a transpose, a missing sum over the
  batch, the mean for the sum, the wrong axis, an assignment instead of an
  addition): caught when some case fails.

A mutant or a mistake that passes every case would mean the cases cannot tell
a wrong rule from the right one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backward_helpers
from .catalogue import EXERCISES, GENERIC, Exercise, Mistake
from .files import compile_rules, rule_source
from .grading import InProcessRunner, Runner, grade_rule, graded_cases

__all__ = ["Finding", "audit", "mutants", "to_text"]


@dataclass
class Finding:
    """One wrong rule the audit ran: what it is, how many cases failed it, and what the report named."""

    rule: str
    kind: str  # "mistake" or "mutant"
    name: str
    cases: int
    failed: int
    named: str | None  # the mistake the report named (None: none matched)
    expected_name: str | None = None  # a catalogued mistake should be named as itself

    @property
    def caught(self) -> bool:
        return self.failed > 0


# ---------------------------------------------------------------- the mutants


def _first_of(grad: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` at the first position along the axes ``sum_to`` would sum: the sum over the batch left out."""
    grad = np.asarray(grad)
    extra = grad.ndim - len(shape)
    while extra > 0:
        grad, extra = grad[0], extra - 1
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = np.take(grad, [0], axis=axis)
    return grad.reshape(shape)


def _mean_to(grad: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``sum_to`` with the mean for the sum."""
    grad = np.asarray(grad)
    summed = backward_helpers.sum_to(grad, shape)
    return summed / max(1, grad.size // max(1, summed.size))


def _expand_mean(grad: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``expand`` that divides by the number of copies: the mean's adjoint where the sum's belongs."""
    grad = np.asarray(grad)
    return backward_helpers.expand(grad, shape) / max(1, int(np.prod(shape)) // max(1, grad.size))


def _wrong_axes(axes: tuple[int, ...], x: Any) -> tuple[int, ...]:
    """The axes one further on (around): a reduction over the wrong axis."""
    ndim = np.ndim(x)
    return tuple(sorted({(a + 1) % ndim for a in axes})) if ndim > 1 else tuple(axes)


def _with_wrong_axes(op: Any, value: Any, x: Any) -> Any:
    """``op.with_kept_axes(value, x)`` keeping the wrong axes."""
    value = np.asarray(value)
    if getattr(op, "keepdims", False) or value.ndim == 0:
        return value.reshape(tuple(reversed(value.shape))) if value.ndim > 1 else value
    wrong = _wrong_axes(op.axes, x)
    shape = tuple(1 if i in wrong else n for i, n in enumerate(np.shape(x)))
    return value.reshape(shape)


def _scatter_assign(grad: Any, picks: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``scatter_add`` with an assignment for the addition: an entry picked twice keeps one gradient."""
    out = np.zeros(shape)
    out[picks.positions] = grad
    return out


MUTANT_HELPERS: dict[str, Callable[..., Any]] = {
    "_first_of": _first_of,
    "_mean_to": _mean_to,
    "_expand_mean": _expand_mean,
    "_wrong_axes": _wrong_axes,
    "_with_wrong_axes": _with_wrong_axes,
    "_scatter_assign": _scatter_assign,
}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str, Callable[[ast.AST], ast.AST | None]]]:
    """Every place the code can be changed: (the node, the mutation's name, how to change the node)."""
    found: list[tuple[ast.AST, str, Callable[[ast.AST], ast.AST | None]]] = []
    for node in ast.walk(tree):
        name = _call_name(node)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            found += [(node, "a sign", _negate_element(i)) for i in range(len(node.value.elts))]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            found.append((node, "a sign", lambda n: n.operand))  # type: ignore[attr-defined]
        if isinstance(node, ast.Attribute) and node.attr == "T":
            found.append((node, "a transpose", lambda n: n.value))  # type: ignore[attr-defined]
        if name == "sum_to":
            found.append((node, "a missing sum over the batch", _rename("_first_of")))
            found.append((node, "the mean for the sum", _rename("_mean_to")))
        if name == "expand":
            found.append((node, "the mean for the sum", _rename("_expand_mean")))
        if name == "scatter_add":
            found.append((node, "an assignment instead of an addition", _rename("_scatter_assign")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "with_kept_axes":
                found.append((node, "the wrong axis", _wrong_kept_axes))
            if node.func.attr == "transpose" and node.args:
                found.append((node, "the wrong axis", _drop_argsort))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult)):
            found.append((node, "a missing factor", lambda n: n.left))  # type: ignore[attr-defined]
        if isinstance(node, ast.keyword) and node.arg == "axis":
            found.append((node, "the wrong axis", _wrong_axis_keyword))
    return found


def _negate_element(i: int) -> Callable[[ast.AST], ast.AST | None]:
    def change(node: ast.AST) -> ast.AST | None:
        assert isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple)
        node.value.elts[i] = ast.UnaryOp(ast.USub(), node.value.elts[i])
        return node

    return change


def _rename(new: str) -> Callable[[ast.AST], ast.AST | None]:
    def change(node: ast.AST) -> ast.AST | None:
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        node.func.id = new
        return node

    return change


def _wrong_kept_axes(node: ast.AST) -> ast.AST | None:
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    return ast.Call(ast.Name("_with_wrong_axes", ast.Load()), [node.func.value, *node.args], [])


def _drop_argsort(node: ast.AST) -> ast.AST | None:
    assert isinstance(node, ast.Call)
    argument = node.args[0]
    if not (isinstance(argument, ast.Call) and argument.args):
        return None
    node.args = [argument.args[0]]  # np.argsort(self.order) -> self.order: the same permutation again
    return node


def _wrong_axis_keyword(node: ast.AST) -> ast.AST | None:
    assert isinstance(node, ast.keyword)
    node.value = ast.Call(ast.Name("_wrong_axes", ast.Load()), [node.value, ast.Name("x", ast.Load())], [])
    return node


def mutants(exercise: Exercise) -> list[tuple[str, str]]:
    """The model answer changed in one place, each way it can be: (the mutation's name, the source)."""
    source = rule_source(exercise)
    original = ast.unparse(ast.parse(source))
    found: list[tuple[str, str]] = []
    for k in range(len(_sites(ast.parse(source)))):
        tree = ast.parse(source)  # a fresh tree for each mutant: its k-th site changed
        node, what, change = _sites(tree)[k]
        changed = change(node)
        if changed is None:
            continue
        if changed is not node:
            _replace(tree, node, changed)
        text = ast.unparse(ast.fix_missing_locations(tree))
        if text != original and (what, text) not in found:
            found.append((what, text))
    return found


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new


# ---------------------------------------------------------------- running them


class _MistakeRunner(Runner):
    """Answers each case as the catalogued ``mistake`` would (the right answer where it cannot be made)."""

    def __init__(self, exercise: Exercise, mistake: Mistake) -> None:
        self.exercise, self.mistake = exercise, mistake

    def run(self, exercise: Exercise, op: Any, grad: Any, inputs: tuple[Any, ...], out: Any) -> Any:
        reference = next(r for c, _, r in graded_cases(exercise.name) if c.grad is grad)
        try:
            candidate = self.mistake.wrong(reference)
        except Exception:  # a mistake that cannot be made with these shapes
            candidate = None
        if candidate is None:
            return reference.expected
        return tuple(
            np.asarray(c, dtype=np.float64) if c is not None else e
            for c, e in zip(candidate, reference.expected)
        )


def audit(names: tuple[str, ...] | None = None) -> list[Finding]:
    """Every catalogued mistake and every mutant of the model answers, graded on the grading cases."""
    findings: list[Finding] = []
    for name in names or tuple(EXERCISES):
        exercise = EXERCISES[name]
        for mistake in (*exercise.mistakes, *GENERIC):
            result = grade_rule(_MistakeRunner(exercise, mistake), name)
            findings.append(
                Finding(
                    name,
                    "mistake",
                    mistake.name,
                    result["cases"],
                    result["failed"],
                    result["mistake"],
                    mistake.name,
                )
            )
        for what, source in mutants(exercise):
            functions = compile_rules({exercise.function: source})
            namespace = functions[exercise.function].__globals__
            namespace.update(MUTANT_HELPERS)
            with np.errstate(all="ignore"):  # a mutant may divide by zero: that is its business
                result = grade_rule(InProcessRunner(functions), name)
            label = f"{what}: {_changed_line(rule_source(exercise), source)}"
            findings.append(
                Finding(name, "mutant", label, result["cases"], result["failed"], result["mistake"])
            )
    return findings


def _changed_line(original: str, mutant: str) -> str:
    """The mutant's body, on one line (what changed is visible next to the model answer)."""
    body = ast.parse(mutant).body[0]
    assert isinstance(body, ast.FunctionDef)
    return "; ".join(ast.unparse(statement) for statement in body.body)


def to_text(findings: list[Finding]) -> str:
    """The audit's table: one row per mistake or mutant, caught or not, and the verdict."""
    width = max(len(f.name) for f in findings) if findings else 10
    width = min(width, 64)
    lines = [f"  {'rule':<10} {'kind':<8} {'what':<{width}} {'cases failed':>12}  named as"]
    for f in findings:
        what = f.name if len(f.name) <= width else f.name[: width - 1] + "…"
        caught = f"{f.failed}/{f.cases}" if f.caught else "SURVIVED"
        lines.append(f"  {f.rule:<10} {f.kind:<8} {what:<{width}} {caught:>12}  {f.named or '-'}")
    survivors = [f for f in findings if not f.caught]
    misnamed = [f for f in findings if f.kind == "mistake" and f.caught and f.named != f.expected_name]
    mistakes = sum(f.kind == "mistake" for f in findings)
    lines += [
        "",
        f"{len(findings) - len(survivors)} of {len(findings)} caught "
        f"({mistakes} catalogued mistakes, {len(findings) - mistakes} mutants); "
        f"{len(survivors)} survived; {len(misnamed)} mistakes named as another",
    ]
    return "\n".join(lines) + "\n"
