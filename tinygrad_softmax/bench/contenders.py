"""The contenders: the implementations of one training step (this engine, NumPy by hand, other libraries).

Each is a function ``make(problem)`` that sets up the parameters and returns
the step, a function of no arguments returning ``(dW, db)``. ``kind`` says
what an implementation is (``engine``, ``compiled``, ``numpy``, ``torch``,
``autograd``, ``jax``, ``micrograd``): the report uses it to pick the baseline and the targets.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import analytic
from .. import functional as F
from ..lecture.training.classifier import logits
from ..tensor import Tensor
from .machine import installed
from .problem import SIZES, BenchmarkError, Problem, StepFn

# The names the report and the targets use.
ENGINE = "engine (primitives)"
ENGINE_FUSED = "engine (fused op)"
COMPILED = "engine compiled (primitives)"
COMPILED_FUSED = "engine compiled (fused op)"
COMPILED_STEPS = "engine compiled (step-by-step, simplify=False)"
JAX_JIT = "JAX jit"
TORCH = "PyTorch (primitives)"
TORCH_FUSED = "PyTorch F.cross_entropy"
AUTOGRAD = "HIPS autograd"
MICROGRAD = "micrograd"
NUMPY_PREFIX = "NumPy closed form"
COLLECTOR_PAUSED = "engine, cycle collector paused (diagnostic)"


@dataclass(frozen=True)
class Implementation:
    """A way to run one step: ``make(problem)`` sets up parameters and returns the step."""

    name: str
    kind: str  # "engine", "compiled", "numpy", "torch", "autograd", "jax" or "micrograd"
    make: Callable[[Problem], StepFn]
    sizes: tuple[str, ...] = tuple(SIZES)


# ---------------------------------------------------------------- this engine


def _classifier_tensors(p: Problem) -> tuple[Tensor, Tensor, Tensor]:
    """W and b (parameters) and X (data) of the problem, as the engine's Tensors."""
    return (
        Tensor(p.W, requires_grad=True, name="W"),
        Tensor(p.b, requires_grad=True, name="b"),
        Tensor(p.X, name="X"),
    )


def _engine(loss_fn: Callable[..., Tensor]) -> Callable[[Problem], StepFn]:
    def make(p: Problem) -> StepFn:
        W, b, X = _classifier_tensors(p)
        labels, axis, layout = p.labels, p.axis, p.layout

        def step() -> tuple[Any, Any]:
            W.grad = b.grad = None
            Z = logits(W, b, X, layout)
            loss_fn(Z, labels, axis=axis).backward()
            return W.grad, b.grad

        return step

    return make


def _compiled(
    loss_fn: Callable[..., Tensor], simplify: bool | str = "fastest"
) -> Callable[[Problem], StepFn]:
    """The same step through ``compile``: traced on the first call, then the generated NumPy program.

    By default as ``compile`` runs it (``simplify="fastest"``: the faster of the derived program,
    P = softmax(Z), dZ = (P − Y)/N, ..., and the step program, timed once when it compiles);
    ``simplify=False`` the step program, the engine's backward rules line by line.
    """

    def make(p: Problem) -> StepFn:
        from ..compiler import compile

        W, b, X = _classifier_tensors(p)
        labels, axis, layout = p.labels, p.axis, p.layout

        def loss(W: Tensor, b: Tensor, X: Tensor, y: np.ndarray) -> Tensor:
            return loss_fn(logits(W, b, X, layout), y, axis=axis)

        compiled = compile(loss, simplify=simplify)
        compiled(W, b, X, labels)  # traced: not part of a step

        def step() -> tuple[Any, Any]:
            _, (dW, db, _, _) = compiled(W, b, X, labels)
            return dW, db

        return step

    return make


# ---------------------------------------------------------------- NumPy, by hand


def _numpy_one_hot(p: Problem) -> StepFn:
    """The closed form as the derivation writes it: P − Y with a one-hot Y (made once, like the data)."""
    X, W, b, axis, N = p.X, p.W, p.b, p.axis, p.samples
    Y = analytic.one_hot(p.labels, p.classes, axis)
    layout = p.layout
    column = layout == "column"

    def step() -> tuple[Any, Any]:
        Z = logits(W, b, X, layout)
        Z = Z - Z.max(axis=axis, keepdims=True)
        E = np.exp(Z)
        total = E.sum(axis=axis, keepdims=True)
        loss = -np.sum(Y * (Z - np.log(total))) / N  # noqa: F841  (the forward pass computes it)
        dZ = (E / total - Y) / N
        dW = dZ @ X.T if column else X.T @ dZ
        db = dZ.sum(axis=1, keepdims=True) if column else dZ.sum(axis=0)
        return dW, db

    return step


def _in_place_rows(X: np.ndarray, W: np.ndarray, b: np.ndarray, labels: np.ndarray) -> StepFn:
    """Z = X W + b (N×C) worked on in place: P, then P − Y, then (P − Y)/N in Z's own array."""
    N = len(labels)
    pick = (np.arange(N), labels)

    def step() -> tuple[Any, Any]:
        Z = X @ W
        Z += b
        Z -= Z.max(axis=1, keepdims=True)
        picked = Z[pick]
        np.exp(Z, out=Z)
        total = Z.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) - picked)  # noqa: F841
        Z /= total
        Z[pick] -= 1.0
        Z *= 1.0 / N
        return X.T @ Z, Z.sum(axis=0)

    return step


def _in_place_columns(X: np.ndarray, W: np.ndarray, b: np.ndarray, labels: np.ndarray) -> StepFn:
    """Z = W X + b (C×N) worked on in place, in the derivation's column layout."""
    N = len(labels)
    pick = (labels, np.arange(N))

    def step() -> tuple[Any, Any]:
        Z = W @ X
        Z += b
        Z -= Z.max(axis=0, keepdims=True)
        picked = Z[pick]
        np.exp(Z, out=Z)
        total = Z.sum(axis=0, keepdims=True)
        loss = np.mean(np.log(total[0]) - picked)  # noqa: F841
        Z /= total
        Z[pick] -= 1.0
        Z *= 1.0 / N
        return Z @ X.T, Z.sum(axis=1, keepdims=True)

    return step


def _numpy_in_place(p: Problem) -> StepFn:
    """In place, in the problem's own orientation."""
    if p.layout == "row":
        return _in_place_rows(p.X, p.W, p.b, p.labels)
    return _in_place_columns(p.X, p.W, p.b, p.labels)


def _numpy_in_place_transposed(p: Problem) -> StepFn:
    """In place, in the other orientation (operands passed as transposed views), results transposed back."""
    if p.layout == "row":
        inner = _in_place_columns(p.X.T, p.W.T, p.b[:, None], p.labels)

        def row_step() -> tuple[Any, Any]:
            dW, db = inner()
            return dW.T, db[:, 0]

        return row_step
    inner = _in_place_rows(p.X.T, p.W.T, p.b[:, 0], p.labels)

    def column_step() -> tuple[Any, Any]:
        dW, db = inner()
        return dW.T, db[:, None]

    return column_step


# ---------------------------------------------------------------- other engines


def _torch(fused: bool) -> Callable[[Problem], StepFn]:
    def make(p: Problem) -> StepFn:
        import torch
        import torch.nn.functional as TF

        X = torch.from_numpy(p.X)
        W = torch.from_numpy(p.W.copy()).requires_grad_()
        b = torch.from_numpy(p.b.copy()).requires_grad_()
        labels = torch.from_numpy(p.labels)
        index = labels.unsqueeze(p.axis)
        axis, layout = p.axis, p.layout
        column = layout == "column"

        def step() -> tuple[Any, Any]:
            W.grad = b.grad = None
            Z = logits(W, b, X, layout)
            if fused:
                loss = TF.cross_entropy(Z.T if column else Z, labels)
            else:
                shifted = Z - Z.detach().amax(dim=axis, keepdim=True)
                log_p = shifted - shifted.exp().sum(dim=axis, keepdim=True).log()
                loss = -log_p.gather(axis, index).mean()
            loss.backward()
            assert W.grad is not None and b.grad is not None
            return W.grad.numpy(), b.grad.numpy()

        return step

    return make


def _autograd(p: Problem) -> StepFn:
    import autograd
    import autograd.numpy as anp
    from autograd.tracer import getval

    X, labels, axis, column = p.X, p.labels, p.axis, p.layout == "column"
    pick = (labels, np.arange(p.samples)) if column else (np.arange(p.samples), labels)

    def loss(params: tuple[Any, Any]) -> Any:
        W, b = params
        Z = anp.dot(W, X) + b if column else anp.dot(X, W) + b
        shifted = Z - np.max(getval(Z), axis=axis, keepdims=True)  # a constant: the max is not differentiated
        log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=axis, keepdims=True))
        return -anp.mean(log_p[pick])

    gradient = autograd.grad(loss)
    params = (p.W.copy(), p.b.copy())

    def step() -> tuple[Any, Any]:
        dW, db = gradient(params)
        return dW, db

    return step


def _jax(p: Problem) -> StepFn:
    """JAX's ``jit`` of its own ``value_and_grad``: the compiled peer (measured only where JAX is installed).

    float64 like every contender (``jax_enable_x64``); the data are arguments of the
    compiled function, not constants baked into it; a step ends when its results are
    ready (``block_until_ready``). JAX's CPU dispatch is made synchronous: the program
    runs on the calling thread instead of being handed to one of XLA's, which saves a
    thread switch per step and is JAX's best setting for a step that is waited for anyway.
    """
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    with contextlib.suppress(AttributeError):  # an option of JAX ≥ 0.4.31
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    axis, column = p.axis, p.layout == "column"

    def loss(W: Any, b: Any, X: Any, labels: Any) -> Any:
        Z = W @ X + b if column else X @ W + b
        shifted = Z - jax.lax.stop_gradient(Z.max(axis=axis, keepdims=True))
        log_p = shifted - jnp.log(jnp.exp(shifted).sum(axis=axis, keepdims=True))
        picked = jnp.take_along_axis(log_p, jnp.expand_dims(labels, axis), axis=axis)
        return -picked.mean()

    step_fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    W, b, X, labels = (jax.device_put(a) for a in (p.W, p.b, p.X, p.labels))

    def step() -> tuple[Any, Any]:
        _, (dW, db) = jax.block_until_ready(step_fn(W, b, X, labels))
        return dW, db

    return step


def _micrograd(p: Problem) -> StepFn:
    """micrograd has no exp or log, so they are added the way its own ops are written."""
    from micrograd.engine import Value

    def exp(v: Any) -> Any:
        out = Value(math.exp(v.data), (v,), "exp")

        def _backward() -> None:
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(v: Any) -> Any:
        out = Value(math.log(v.data), (v,), "log")

        def _backward() -> None:
            v.grad += out.grad / v.data

        out._backward = _backward
        return out

    row = p.layout == "row"
    X = (p.X if row else p.X.T).tolist()  # N×D
    W_rows = p.W if row else p.W.T  # D×C
    W = [[Value(float(w)) for w in line] for line in W_rows]
    b = [Value(float(v)) for v in p.b.ravel()]
    labels = [int(y) for y in p.labels]
    params = [v for line in W for v in line] + b
    N, C = p.samples, p.classes

    def step() -> tuple[Any, Any]:
        for v in params:
            v.grad = 0.0
        total_loss: Any = 0.0
        for i in range(N):
            z = [sum((x * line[c] for x, line in zip(X[i], W)), b[c]) for c in range(C)]
            top = max(zc.data for zc in z)
            shifted = [zc - top for zc in z]
            total_loss = total_loss + (log(sum(exp(s) for s in shifted)) - shifted[labels[i]])
        (total_loss * (1.0 / N)).backward()
        dW = np.array([[v.grad for v in line] for line in W])
        db = np.array([v.grad for v in b])
        return (dW, db) if row else (dW.T, db[:, None])

    return step


def implementations() -> list[Implementation]:
    """Everything that can run here: this engine and NumPy always, the others when installed."""
    found = [
        Implementation(ENGINE, "engine", _engine(F.cross_entropy)),
        Implementation(ENGINE_FUSED, "engine", _engine(F.softmax_cross_entropy)),
        Implementation(COMPILED, "compiled", _compiled(F.cross_entropy)),
        Implementation(COMPILED_FUSED, "compiled", _compiled(F.softmax_cross_entropy)),
        Implementation(COMPILED_STEPS, "compiled", _compiled(F.cross_entropy, simplify=False)),
        Implementation(f"{NUMPY_PREFIX}: one-hot (P − Y)/N", "numpy", _numpy_one_hot),
        Implementation(f"{NUMPY_PREFIX}: in place", "numpy", _numpy_in_place),
        Implementation(f"{NUMPY_PREFIX}: in place, transposed", "numpy", _numpy_in_place_transposed),
    ]
    if installed("torch"):
        found += [
            Implementation(TORCH, "torch", _torch(fused=False)),
            Implementation(TORCH_FUSED, "torch", _torch(fused=True)),
        ]
    if installed("autograd"):
        found.append(Implementation(AUTOGRAD, "autograd", _autograd))
    if installed("jax"):  # optional: the bench extra installs it
        found.append(Implementation(JAX_JIT, "jax", _jax))
    if installed("micrograd"):
        found.append(Implementation(MICROGRAD, "micrograd", _micrograd, sizes=("tiny",)))
    return found


def check_gradients(impl: Implementation, step: StepFn, problem: Problem, rtol: float = 1e-8) -> None:
    """Raise :class:`BenchmarkError` unless ``step`` gives the closed form's dW and db."""
    results = step()
    for what, got, want in (("dW", results[0], problem.dW), ("db", results[1], problem.db)):
        got = np.asarray(got)
        if got.shape != want.shape:
            raise BenchmarkError(
                f"bench: {impl.name} gives {what} of shape {got.shape}, the closed form {want.shape} "
                f"({problem.size}, {problem.layout} layout)"
            )
        error = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))
        if not error <= rtol:
            raise BenchmarkError(
                f"bench: {impl.name} gives the wrong {what} ({problem.size}, {problem.layout} layout): "
                f"max |error| / max |{what}| = {error:.2e} > {rtol:.0e}; refusing to time it"
            )
