"""Grading the student's rules, inside the worker process (see ``worker.py``).

How the rules enter the engine, for this run only: for each op the student
wrote, :func:`student_op` makes a subclass of the package's op whose
``backward`` calls the student's function and checks what it returns (a tuple,
one gradient per input, the right shape and dtype). The grader builds its graphs
with these subclasses, or, for the whole classifier, builds the graph with the
package's own ops and then gives each recorded op of an assigned kind the
student's class (the forward is the package's in both cases). ``ops.py`` and
its classes are never changed.
"""

from __future__ import annotations

import importlib.util
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ... import analytic, engine, ops
from ...analytic import CLASS_AXIS
from ...tensor import Tensor
from ..classifier import build_classifier
from ..graph import graph_order, tensor_labels
from .catalogue import EXERCISES, GENERIC, Case, Exercise, Mistake, Reference, argument_names, build_cases

ATOL, RTOL = 1e-6, 1e-5  # finite differences in float64 are good to about 1e-9 here
STEP = 1e-6  # the central-difference step


class RuleError(Exception):
    """The student's rule returned something the engine cannot use (a clear message, no traceback)."""


class Skipped(Exception):
    """A rule that already timed out or crashed on its own is not run again inside the classifier."""


def load(path: str | Path) -> ModuleType:
    """The student's file as a module (not on sys.path, not in sys.modules)."""
    spec = importlib.util.spec_from_file_location("my_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def where_raised(error: BaseException, path: str | Path) -> str:
    """``ValueError: ... (my_rules.py line 12: return (grad @ b,))``: the error and its line in the file."""
    said = re.sub(r", with gufunc signature \S+", "", str(error))  # NumPy's matmul speaks of gufuncs
    text = f"{type(error).__name__}: {said}".strip().rstrip(":")
    mine = Path(path).resolve()
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == mine]
    if frames:
        frame = frames[-1]
        text += f" ({Path(path).name} line {frame.lineno}: {(frame.line or '').strip()})"
    return text


def _check_result(exercise: Exercise, op: ops.Op, result: Any, inputs: tuple[Any, ...], out: Any) -> Any:
    """What the student's rule returned, checked: a tuple of one array per input, shaped and typed right."""
    names = argument_names(exercise)
    who = exercise.function
    wanted = "(" + ", ".join(f"∂L/∂{n}" for n in names) + ("," if len(names) == 1 else "") + ")"
    if not isinstance(result, (tuple, list)):
        if isinstance(result, np.ndarray) and len(names) == 1:
            raise RuleError(f"{who} returned an array; return a tuple {wanted} (mind the comma)")
        raise RuleError(f"{who} returned {type(result).__name__}; return a tuple {wanted}")
    if len(result) != len(names):
        raise RuleError(f"{who} returned {len(result)} values; return {len(names)}: {wanted}")
    broadcasting = isinstance(op, ops.Binary)
    for name, grad, x, needed in zip(names, result, inputs, op.needs_grad):
        if grad is None:
            if needed:
                raise RuleError(f"{who} returned None for ∂L/∂{name}, which is needed")
            continue
        if not isinstance(grad, (np.ndarray, np.generic)):
            raise RuleError(f"{who} returned a {type(grad).__name__} for ∂L/∂{name}; return a NumPy array")
        allowed = {x.shape, out.shape} if broadcasting else {x.shape}
        if grad.shape not in allowed:
            also = f" (or out's shape {out.shape})" if broadcasting and out.shape != x.shape else ""
            raise RuleError(
                f"{who} returned ∂L/∂{name} of shape {grad.shape}; "
                f"it must have {name}'s shape {x.shape}{also}"
            )
        if grad.dtype != x.dtype:
            raise RuleError(
                f"{who} returned ∂L/∂{name} of dtype {grad.dtype}; it must be {x.dtype}, like {name}"
            )
    return tuple(result)


def student_op(exercise: Exercise, function: Callable[..., Any]) -> type[ops.Op]:
    """A subclass of the exercise's op whose backward is the student's ``function``, its result checked."""

    def backward(self: ops.Op, grad: Any, *arguments: Any) -> Any:
        return _check_result(exercise, self, function(self, grad, *arguments), arguments[:-1], arguments[-1])

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


def grade_rule(module: ModuleType, name: str, path: str | Path) -> dict[str, Any]:
    """One rule alone: its cases through the engine, against finite differences."""
    exercise = EXERCISES[name]
    start = time.perf_counter()
    result: dict[str, Any] = {"rule": name, "status": "passed", "cases": 0, "failed": 0}
    result.update(worst=None, message="", hint="", mistake=None)
    function = getattr(module, exercise.function, None)
    if not callable(function):
        result.update(status="missing", message=f"{Path(path).name} has no function {exercise.function}")
        result["hint"] = f"write def {exercise.function}(self, grad, ...) as `exercise init` made it"
        return result | {"seconds": time.perf_counter() - start}
    student = student_op(exercise, function)
    names = argument_names(exercise)
    cases = build_cases(exercise)
    result["cases"] = len(cases)
    matched: list[tuple[int, int, Mistake]] = []  # (generic?, case, mistake)
    scale: float | None = None
    for number, case in enumerate(cases):
        tensors = [Tensor(x.copy(), requires_grad=True) for x in case.inputs]
        out = Tensor._apply(case.make(student), *tensors)
        try:
            out.backward(case.grad)
        except NotImplementedError:
            result.update(status="not implemented", message=f"{exercise.function} raises NotImplementedError")
            result["hint"] = "replace the raise NotImplementedError line with the rule"
            return result | {"seconds": time.perf_counter() - start}
        except RuleError as error:
            _fail(result, case, str(error))
            continue
        except Exception as error:  # the student's code raised: say what and where, not the engine's stack
            shapes = ", ".join(
                f"{n} {_shape(x.shape)}"
                for n, x in zip(("grad", *names, "out"), (case.grad, *case.inputs, out.data))
            )
            _fail(result, case, f"{exercise.function} raised {where_raised(error, path)}", shapes)
            continue
        got = tuple(t.grad if t.grad is not None else np.zeros_like(t.data) for t in tensors)
        expected = finite_differences(exercise, case)
        if all(_close(g, e) for g, e in zip(got, expected)):
            continue
        worst = _worst(case, names, got, expected)
        nonfinite = not all(np.all(np.isfinite(g)) for g in got)
        _fail(result, case, "returned nan or inf" if nonfinite else "", worst=worst)
        reference = _reference(exercise, case)
        for kind, mistakes in enumerate((exercise.mistakes, GENERIC)):
            for mistake in mistakes:
                if _matches(mistake, reference, got):
                    matched.append((kind, number, mistake))
                    break
        if scale is None:
            scale = _constant_factor(got, reference.expected)
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
            result["hint"] = exercise.hint
    return result | {"seconds": time.perf_counter() - start}


def _fail(
    result: dict[str, Any], case: Case, message: str, shapes: str = "", worst: dict | None = None
) -> None:
    """Count a failed case; keep the first failure's message (and the case, the shapes) and worst entry."""
    result["failed"] += 1
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


def grade_classifier(
    module: ModuleType, names: list[str], skip: dict[str, str], layout: str, path: str | Path
) -> dict[str, Any]:
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
        function = getattr(module, exercise.function, None)
        if name in skip or not callable(function):
            classes[exercise.op] = skipped_op(exercise, skip.get(name, "is missing"))
        else:
            classes[exercise.op] = student_op(exercise, function)
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
    except Exception as error:
        node = order[done]
        reason = "not implemented" if isinstance(error, NotImplementedError) else "failed"
        target = next((p for p in node.parents if p in toward_w), node.parents[0])
        wrong.append(_first(labels, target, node, reason, target in toward_w))
        message = str(error) if isinstance(error, (RuleError, Skipped)) else where_raised(error, path)
        if isinstance(error, NotImplementedError):
            message = f"{node.op}_backward is not implemented"
        result.update(status="wrong", message=f"the backward pass stopped at {node.op}: {message}")
    # The first on the way to W; when W's gradient is right (a wrong bias rule), the first one anywhere.
    result["first_wrong"] = next((w for w in wrong if w["toward_w"]), wrong[0] if wrong else None)
    if result["status"] == "passed":
        loss.backward()
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
