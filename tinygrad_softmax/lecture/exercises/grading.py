"""Grading the student's rules, in the grader's process: the cases, the expected values, the verdicts.

The student's code runs elsewhere (``sandbox.py``, ``worker.py``); here a
:class:`Runner` stands for it. :meth:`Runner.run` sends one case's inputs (the
op's settings, ∂L/∂out, the inputs, out) and returns what the student's rule
gave, copied into new float64 arrays of the expected shapes. Everything the
grade depends on happens here: finite differences, the package's own rules,
the comparison, the mistakes a wrong answer matches.

How the rules enter the engine for the whole classifier: the grader builds the
graph with the package's own ops, then gives each recorded op of an assigned
kind a subclass whose ``backward`` asks the runner (:func:`student_op`). The
forward is the package's; ``ops.py`` and its classes are never changed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from ... import analytic, engine, ops
from ...analytic import CLASS_AXIS
from ...tensor import Tensor
from ..training.classifier import build_classifier
from ..views.graph import graph_order, tensor_labels
from . import backward_helpers, worker
from .catalogue import EXERCISES, GENERIC, Case, Exercise, Mistake, Reference, argument_names, build_cases
from .sandbox import Sandbox, WorkerLost

ATOL, RTOL = 1e-6, 1e-5  # finite differences in float64 are good to about 1e-9 here
STEP = 1e-6  # the central-difference step
MAX_TEXT = 2000  # the longest message from the student's process that a report repeats


class RuleError(Exception):
    """The student's rule returned something the engine cannot use (a clear message, no traceback)."""


class StudentRaised(Exception):
    """The student's rule raised: the message names the error and the student's line."""


class Skipped(Exception):
    """A rule that already timed out or crashed on its own is not run again inside the classifier."""


_OWN_STATE = {"needs_grad", "saved", "checked", "positions", "one_pick_per_line", "probs"}


def op_settings(op: ops.Op) -> dict[str, Any]:
    """The op's settings as plain data (what ``self`` holds in a student's rule)."""
    settings: dict[str, Any] = {}
    for cls in type(op).__mro__:
        for key in getattr(cls, "__slots__", ()):
            if key in _OWN_STATE or not hasattr(op, key):
                continue
            value = getattr(op, key)
            if isinstance(value, np.ndarray):
                value = {"array": worker.encode(value)}
            elif isinstance(value, tuple):
                value = [int(v) for v in value]
            elif isinstance(value, np.integer):
                value = int(value)
            settings[key] = value
    settings["needs_grad"] = list(getattr(op, "needs_grad", ()))
    return settings


def _request(exercise: Exercise, op: ops.Op, grad: Any, inputs: tuple[Any, ...], out: Any) -> dict[str, Any]:
    if not getattr(op, "needs_grad", None):
        op.needs_grad = (True,) * len(inputs)
    return {
        "function": exercise.function,
        "op": exercise.name,
        "names": list(argument_names(exercise)),
        "settings": op_settings(op),
        "grad": worker.encode(grad),
        "inputs": [worker.encode(x) for x in inputs],
        "out": worker.encode(out),
    }


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else "(an answer that is not text)"


def read_answer(exercise: Exercise, answer: dict[str, Any], count: int) -> tuple[np.ndarray | None, ...]:
    """The gradients in an answer, as new float64 arrays; or the error the answer reports."""
    if "grads" not in answer:
        if "not_implemented" in answer:
            raise NotImplementedError(_text(answer["not_implemented"]))
        if "raised" in answer:
            raise StudentRaised(f"{exercise.function} raised {_text(answer['raised'])}")
        if "rule_error" in answer:
            raise RuleError(_text(answer["rule_error"]))
        raise RuleError(f"{exercise.function}: its answer could not be read (no gradients in it)")
    grads = answer["grads"]
    if not isinstance(grads, list) or len(grads) != count:
        raise RuleError(f"{exercise.function}: its answer could not be read (not {count} gradients)")
    arrays: list[np.ndarray | None] = []
    for grad in grads:
        if grad is None:
            arrays.append(None)
            continue
        try:
            array = worker.decode(grad)
        except (ValueError, TypeError) as error:
            raise RuleError(f"{exercise.function}: its answer could not be read ({error})") from None
        if array.dtype != np.float64:
            raise RuleError(f"{exercise.function}: its answer could not be read (not float64 numbers)")
        arrays.append(array)
    return tuple(arrays)


class Runner:
    """Runs a student's rule on one case. ``deadline`` (time.monotonic()) bounds the current rule."""

    deadline = math.inf

    def run(
        self, exercise: Exercise, op: ops.Op, grad: Any, inputs: tuple[Any, ...], out: Any
    ) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError


class SandboxRunner(Runner):
    """The student's rules in the isolated process of a :class:`Sandbox`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.asked = 0

    def run(
        self, exercise: Exercise, op: ops.Op, grad: Any, inputs: tuple[Any, ...], out: Any
    ) -> tuple[np.ndarray | None, ...]:
        self.asked += 1
        request = {"id": self.asked, **_request(exercise, op, grad, inputs, out)}
        answer = self.sandbox.ask(request, self.deadline - time.monotonic())
        # A line the student's code wrote into the answer pipe itself is not this request's answer.
        while answer.get("id") != self.asked:
            answer = self.sandbox.receive(self.deadline - time.monotonic())
        return read_answer(exercise, answer, len(inputs))


class InProcessRunner(Runner):
    """Rules the package itself wrote (model answers, mutants, catalogued mistakes), run right here.

    They go through the same request and answer as a student's, minus the process.
    """

    def __init__(self, functions: dict[str, Callable[..., Any]]) -> None:
        self.module = type("Rules", (), {k: staticmethod(f) for k, f in functions.items()})

    def run(
        self, exercise: Exercise, op: ops.Op, grad: Any, inputs: tuple[Any, ...], out: Any
    ) -> tuple[np.ndarray | None, ...]:
        request = _request(exercise, op, grad, inputs, out)
        answer = worker.answer(self.module, request, "<in process>", backward_helpers.OpSettings)
        return read_answer(exercise, answer, len(inputs))


def _check_shapes(
    exercise: Exercise, op: ops.Op, result: tuple[Any, ...], inputs: tuple[Any, ...], out: Any
) -> Any:
    """The gradients' shapes checked against the inputs' (or, for a broadcasting op, out's)."""
    who = exercise.function
    broadcasting = isinstance(op, ops.Binary)
    needs = getattr(op, "needs_grad", (True,) * len(inputs))
    for name, grad, x, needed in zip(argument_names(exercise), result, inputs, needs):
        if grad is None:
            if needed:
                raise RuleError(f"{who} returned None for ∂L/∂{name}, which is needed")
            continue
        allowed = {x.shape, out.shape} if broadcasting else {x.shape}
        if grad.shape not in allowed:
            also = f" (or out's shape {out.shape})" if broadcasting and out.shape != x.shape else ""
            raise RuleError(
                f"{who} returned ∂L/∂{name} of shape {grad.shape}; "
                f"it must have {name}'s shape {x.shape}{also}" + _axis_reason(grad.shape, out.shape, x.shape)
            )
    return tuple(result)


def _axis_reason(got: tuple[int, ...], out: tuple[int, ...], want: tuple[int, ...]) -> str:
    """Why a shape is wrong, when a sum over the wrong axis explains it ('' when not)."""
    for axis in range(len(out)):
        for keep in (True, False):
            if got == np.empty(out).sum(axis=axis, keepdims=keep).shape:
                right = [i for i in range(len(out)) if np.empty(out).sum(axis=i, keepdims=True).shape == want]
                if right and axis not in right:
                    return (
                        f" (a sum over the wrong axis: over axis {axis}, "
                        f"where axis {right[0]} is the one to sum)"
                    )
    return ""


def student_op(exercise: Exercise, runner: Runner) -> type[ops.Op]:
    """A subclass of the exercise's op whose backward is the student's rule, run by ``runner``."""

    def backward(self: ops.Op, grad: Any, *arguments: Any) -> Any:
        inputs, out = arguments[:-1], arguments[-1]
        return _check_shapes(exercise, self, runner.run(exercise, self, grad, inputs, out), inputs, out)

    # No new slots: the subclass has the op's layout, so a recorded op can be given this class.
    return type(f"Student{exercise.op.__name__}", (exercise.op,), {"__slots__": (), "backward": backward})


def skipped_op(exercise: Exercise, reason: str) -> type[ops.Op]:
    """A subclass of the exercise's op whose backward raises :class:`Skipped` (the rule is not run)."""

    def backward(self: ops.Op, grad: Any, *arguments: Any) -> Any:
        raise Skipped(f"{exercise.function} {reason}")

    return type(f"Skipped{exercise.op.__name__}", (exercise.op,), {"__slots__": (), "backward": backward})


# ---------------------------------------------------------------- one rule alone


def finite_differences(exercise: Exercise, case: Case) -> tuple[np.ndarray, ...]:
    """∂L/∂input for L = Σ grad ⊙ op(inputs), by central differences, for every input."""
    results = []
    for i, x in enumerate(case.inputs):
        estimate = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            values = []
            for sign in (1, -1):
                shifted = [v.copy() for v in case.inputs]
                shifted[i][j] += sign * STEP
                values.append(float(np.sum(case.grad * case.make(exercise.op).forward(*shifted))))
            estimate[j] = (values[0] - values[1]) / (2 * STEP)
        results.append(estimate)
    return tuple(results)


def _reference(exercise: Exercise, case: Case) -> Reference:
    op = case.make(exercise.op)
    out = Tensor._apply(op, *[Tensor(x, requires_grad=True) for x in case.inputs])
    expected = tuple(
        ops.sum_to(g, x.shape) for g, x in zip(op.backward(case.grad, *case.inputs, out.data), case.inputs)
    )
    return Reference(case, op, out.data, expected)


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= ATOL + RTOL * np.abs(want)))


def _same(got: np.ndarray | None, want: np.ndarray) -> bool:
    return got is not None and got.shape == want.shape and _close(got, want)


def _matches(mistake: Mistake, reference: Reference, got: tuple[np.ndarray, ...]) -> bool:
    """Whether the student's answer is what ``mistake`` gives here (and that differs from the right one)."""
    try:
        candidate = mistake.wrong(reference)
    except Exception:  # a mistake that cannot be made in this case (shapes), so not this one
        return False
    if candidate is None:
        return False
    concerned = [(g, c, e) for g, c, e in zip(got, candidate, reference.expected) if c is not None]
    return (
        bool(concerned)
        and all(c.shape == g.shape and _close(g, c) for g, c, _ in concerned)
        and any(not _close(c, e) for _, c, e in concerned)
    )


def _constant_factor(got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> float | None:
    """k when the student's answer is k times the right one everywhere (k ≠ 1, −1, 0)."""
    g = np.concatenate([x.ravel() for x in got])
    e = np.concatenate([x.ravel() for x in expected])
    big = np.abs(e) > 1e-3
    if g.shape != e.shape or not big.any():
        return None
    ratios = g[big] / e[big]
    k = float(np.median(ratios))
    if abs(k) < 1e-6 or abs(abs(k) - 1) < 1e-3 or not np.allclose(g, k * e, rtol=1e-5, atol=1e-8):
        return None
    return k


def _worst(
    case: Case, names: tuple[str, ...], got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]
) -> dict:
    """The entry with the largest error (scaled by the tolerance) in one case."""
    best: dict[str, Any] = {}
    score = -1.0
    for name, g, w in zip(names, got, want):
        error = np.abs(g - w) / (ATOL + RTOL * np.abs(w))
        index = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
        if error.size and error[index] > score:
            score = float(error[index])
            best = {
                "case": case.title,
                "input": name,
                "index": [int(i) for i in index],
                "expected": float(w[index]),
                "got": float(g[index]),
            }
    return best


@cache
def graded_cases(name: str) -> tuple[tuple[Case, tuple[np.ndarray, ...], Reference], ...]:
    """The exercise's cases, each with its expected gradients (finite differences) and the package's rule.

    Computed once per process, in the grader: nothing of it is sent anywhere.
    """
    exercise = EXERCISES[name]
    return tuple(
        (case, finite_differences(exercise, case), _reference(exercise, case))
        for case in build_cases(exercise)
    )


def grade_rule(runner: Runner, name: str) -> dict[str, Any]:
    """One rule alone: its cases through the runner, against finite differences, a verdict per case.

    The rule's points are the share of its cases it passes. :class:`WorkerLost`
    (a timeout, a crash) goes up to the caller, which starts a new process.
    """
    exercise = EXERCISES[name]
    start = time.perf_counter()
    result: dict[str, Any] = {"status": "passed", "cases": 0, "failed": 0, "verdicts": []}
    result.update(worst=None, message="", hint="", mistake=None)
    names = argument_names(exercise)
    cases = graded_cases(name)
    result["cases"] = len(cases)
    matched: list[tuple[int, int, Mistake]] = []  # (generic?, case, mistake)
    scale: float | None = None
    for number, (case, expected, reference) in enumerate(cases):
        op = case.make(exercise.op)
        out = op.forward(*case.inputs)
        try:
            answer = runner.run(exercise, op, case.grad, case.inputs, out)
            answer = _check_shapes(exercise, op, answer, case.inputs, out)
        except NotImplementedError:
            result.update(status="not implemented", message=f"{exercise.function} raises NotImplementedError")
            result["hint"] = "replace the raise NotImplementedError line with the rule"
            result["verdicts"] = []
            return result | {"seconds": time.perf_counter() - start}
        except RuleError as error:
            _fail(result, case, str(error), reason=str(error))
            continue
        except StudentRaised as error:
            shapes = ", ".join(
                f"{n} {_shape(x.shape)}"
                for n, x in zip(("grad", *names, "out"), (case.grad, *case.inputs, out))
            )
            _fail(result, case, str(error), shapes, reason=str(error))
            continue
        got = tuple(
            ops.sum_to(g, x.shape) if g is not None else np.zeros_like(x) for g, x in zip(answer, case.inputs)
        )
        if all(_close(g, e) for g, e in zip(got, expected)):
            result["verdicts"].append({"case": case.title, "passed": True, "reason": ""})
            continue
        worst = _worst(case, names, got, expected)
        nonfinite = not all(np.all(np.isfinite(g)) for g in got)
        found: Mistake | None = None
        for kind, mistakes in enumerate((exercise.mistakes, GENERIC)):
            for mistake in mistakes:
                if _matches(mistake, reference, got):
                    matched.append((kind, number, mistake))
                    found = found or mistake
                    break
        factor = _constant_factor(got, reference.expected)
        scale = scale if scale is not None else factor
        if nonfinite:
            reason = "returned nan or inf"
        elif found is not None:
            reason = "right shape, wrong values: " + (found.reason or found.hint)
        elif factor is not None:
            reason = f"right shape, wrong values: {factor:.4g} times the right gradient"
        else:
            reason = "right shape, wrong values: " + _worst_text(worst)
        _fail(result, case, "returned nan or inf" if nonfinite else "", worst=worst, reason=reason)
    if result["failed"]:
        result["status"] = "wrong"
        if matched:
            mistake = min(matched, key=lambda m: (m[0], m[1]))[2]
            result.update(hint=mistake.hint, mistake=mistake.name)
        elif scale is not None:
            result.update(
                hint=f"your gradient is {scale:.4g} times the right one: a constant factor is wrong"
            )
            result["mistake"] = "constant-factor"
        else:
            result["hint"] = exercise.nudge
    return result | {"seconds": time.perf_counter() - start}


def _worst_text(w: dict[str, Any]) -> str:
    index = ", ".join(map(str, w["index"]))
    return f"∂L/∂{w['input']}[{index}] should be {w['expected']:.6g}, is {w['got']:.6g}"


def _fail(
    result: dict[str, Any],
    case: Case,
    message: str,
    shapes: str = "",
    worst: dict | None = None,
    reason: str = "",
) -> None:
    """Count a failed case with its reason; keep the first failure's message (and shapes) and worst entry."""
    result["failed"] += 1
    result["verdicts"].append({"case": case.title, "passed": False, "reason": reason or message})
    if result["failed"] == 1:
        where = f"in case {case.title!r}" + (f", with {shapes}" if shapes else "")
        result["message"] = f"{message}\n{where}" if message else ""
        result["worst"] = worst


# ---------------------------------------------------------------- the whole classifier


def _install(loss: Tensor, classes: dict[type[ops.Op], type[ops.Op]]) -> None:
    """Give every recorded op of an assigned kind its student class (its state and forward stay)."""
    for node in graph_order(loss):
        if node.grad_fn is not None and type(node.grad_fn) in classes:
            node.grad_fn.__class__ = classes[type(node.grad_fn)]


def _shape(shape: tuple[int, ...]) -> str:
    """``3×5``, ``(3,)`` or ``scalar``."""
    return "×".join(map(str, shape)) if len(shape) > 1 else f"({shape[0]},)" if shape else "scalar"


def _first(
    labels: dict[Tensor, str], tensor: Tensor, node: Tensor, reason: str, toward_w: bool
) -> dict[str, Any]:
    """A wrong gradient: the tensor it goes to, its shape, the op that sends it, why, and if W needs it."""
    return {
        "tensor": labels[tensor],
        "shape": _shape(tensor.shape),
        "op": node.op,
        "reason": reason,
        "toward_w": toward_w,
    }


def grade_classifier(runner: Runner, names: list[str], skip: dict[str, str], layout: str) -> dict[str, Any]:
    """The linear softmax classifier with the student's rules: ∂L/∂Z, ∂L/∂W, ∂L/∂b against the closed form.

    Also finds the first gradient, on the way from the loss to W, that differs
    from the package's (or that a rule failed to compute): the picture names it.
    """
    start = time.perf_counter()
    model = build_classifier(layout, backward=False)  # type: ignore[arg-type]
    loss = model.loss
    ones = np.ones_like(loss.data)
    labels = tensor_labels(loss)
    reference = {step.node: step.parent_grads for step in engine.walk(loss, ones)}
    classes: dict[type[ops.Op], type[ops.Op]] = {}
    for name in names:
        exercise = EXERCISES[name]
        if name in skip:
            classes[exercise.op] = skipped_op(exercise, skip[name])
        else:
            classes[exercise.op] = student_op(exercise, runner)
    _install(loss, classes)
    toward_w = {model.W}
    for node in graph_order(loss):
        if any(p in toward_w for p in node.parents):
            toward_w.add(node)

    result: dict[str, Any] = {"layout": layout, "status": "passed", "message": "", "checks": []}
    wrong: list[dict[str, Any]] = []  # the wrong gradients, in the order the walk sends them
    # The walk visits the nodes in this order; a rule that raises stops it at the next one.
    order = list(reversed(engine.topological_order(loss)))
    done = 0
    try:
        for step in engine.walk(loss, ones):
            node = step.node
            done += 1
            for parent, sent, right in zip(node.parents, step.parent_grads, reference[node]):
                if right is not None and not _same(sent, right):
                    wrong.append(_first(labels, parent, node, "wrong", parent in toward_w))
    except WorkerLost:
        raise
    except Exception as error:
        node = order[done]
        reason = "not implemented" if isinstance(error, NotImplementedError) else "failed"
        target = next((p for p in node.parents if p in toward_w), node.parents[0])
        wrong.append(_first(labels, target, node, reason, target in toward_w))
        message = str(error) if isinstance(error, (RuleError, Skipped, StudentRaised)) else repr(error)
        if isinstance(error, NotImplementedError):
            message = f"{node.op}_backward is not implemented"
        result.update(status="wrong", message=f"the backward pass stopped at {node.op}: {message}")
    # The first on the way to W; when W's gradient is right (a wrong bias rule), the first one anywhere.
    result["first_wrong"] = next((w for w in wrong if w["toward_w"]), wrong[0] if wrong else None)
    if result["status"] == "passed":
        try:
            loss.backward()
        except WorkerLost:
            raise
        except Exception as error:  # the same rules, the same inputs: only a rule that changes its mind
            result.update(status="wrong", message=f"the backward pass failed the second time: {error}")
            return result | {"seconds": time.perf_counter() - start}
        axis = CLASS_AXIS[layout]
        dz = analytic.logits_grad(model.Z.data, model.labels, axis)
        closed = {
            "∂L/∂Z = (P − Y)/N": (model.Z.grad, dz),
            "∂L/∂W": (model.W.grad, analytic.weights_grad(dz, model.X.data, layout)),  # type: ignore[arg-type]
            "∂L/∂b = Σ ∂L/∂Z": (model.b.grad, analytic.bias_grad(dz, layout)),  # type: ignore[arg-type]
        }
        for title, (got, want) in closed.items():
            assert got is not None
            ok = _close(got, want)
            check: dict[str, Any] = {"name": title, "ok": ok}
            if not ok:
                gap = np.abs(got - want) if got.shape == want.shape else np.full(want.shape, np.inf)
                index = np.unravel_index(int(np.argmax(gap)), want.shape)
                check.update(
                    index=[int(i) for i in index],
                    expected=float(want[index]),
                    got=float(got[index]) if got.shape == want.shape else None,
                )
                result["status"] = "wrong"
            result["checks"].append(check)
    return result | {"seconds": time.perf_counter() - start}
