"""Numerical gradients by central differences, and a check against autograd.

``numerical_gradient`` takes any callable on a NumPy array, so it can check
the engine, the closed form, or a student's own code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TINY = 1e-300


class GradcheckError(AssertionError):
    """Autograd and the numerical gradient disagree."""


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """df/dx by central differences: (f(x + eps) − f(x − eps)) / 2 eps, one entry at a time.

    ``f`` returns a scalar. ``x`` is perturbed in place and restored, also when ``f`` raises.
    """
    _check_step("numerical_gradient", eps)
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError("numerical_gradient: x must be a float ndarray (it is perturbed in place)")
    if x.dtype.itemsize < 4:  # float16 keeps 3 digits: x ± a usable eps rounds back to x, giving 0
        raise TypeError(
            f"numerical_gradient: x is {x.dtype}, too coarse for central differences "
            f"(its resolution is {np.finfo(x.dtype).eps:.1e}); pass x.astype(np.float64)"
        )
    if not x.flags.writeable:
        raise ValueError(
            "numerical_gradient: x is read-only (a broadcast view or a locked array), but it is "
            "perturbed in place; pass a writable copy, x.copy(), that f reads"
        )
    grad = np.zeros(x.shape, dtype=x.dtype)
    for i in np.ndindex(x.shape):  # any layout works: no flat view of x needed
        saved = x[i]
        try:
            x[i] = saved + eps
            up = _total(f(x))
            x[i] = saved - eps
            down = _total(f(x))
        finally:
            x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


def _check_step(who: str, eps: float, atol: float = 0.0, rtol: float = 0.0) -> None:
    """A step and tolerances the check can use: eps > 0, atol and rtol ≥ 0, all finite."""
    if not (isinstance(eps, (int, float, np.number)) and np.isfinite(eps) and eps > 0):
        raise ValueError(
            f"{who}: eps, the step of the central differences, must be finite and > 0, got {eps!r}"
        )
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if not (isinstance(tol, (int, float, np.number)) and np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{who}: {name} must be a finite number ≥ 0, got {tol!r}")


def mismatch(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> tuple[int, ...] | None:
    """The index of the worst entry where ``|actual − expected| ≤ atol + rtol·|expected|`` fails, or None.

    Written so that NaN fails it: a NaN or an infinity that ``expected`` does not
    have is never within tolerance (``excess.max() > 0`` would be False for NaN,
    and pass it). Entries equal in both count as close. A NaN is the worst entry.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf and NaN are judged, not warned about
        gap = np.abs(actual - expected)
        close = (actual == expected) | (gap <= atol + rtol * np.abs(expected))
        if close.all():
            return None
        excess = np.where(close, -np.inf, np.nan_to_num(gap - (atol + rtol * np.abs(expected)), nan=np.inf))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))


def _total(value: Any) -> float:
    """f's value as one float: a Tensor's or an array's entries summed."""
    data = value.numpy() if hasattr(value, "numpy") and hasattr(value, "grad_fn") else value
    return float(np.asarray(data).sum())


def rel_error(a: Any, b: Any) -> float:
    """max |a − b| / max(|a| + |b|): scale-free, 0 when equal, ≤ 1 always.

    Entries equal in both (infinities included) count as no error; an entry
    where either is NaN or infinite and they differ counts as the worst, 1.
    ``a`` and ``b`` must have the same shape.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes {a.shape} and {b.shape} differ; compare arrays of one shape")
    differ = a != b
    if not differ.any():
        return 0.0
    if not (np.isfinite(a[differ]).all() and np.isfinite(b[differ]).all()):
        return 1.0
    finite = np.isfinite(a) & np.isfinite(b)  # equal infinities add no error and set no scale
    # Subtracted only where they differ (all finite there): a − b over the whole array would compute
    # inf − inf at equal infinities, a warning for entries that count as no error.
    a_differ, b_differ = a[differ], b[differ]
    with np.errstate(over="ignore"):  # near the largest float, |a| + |b| or a − b can overflow ...
        scale = np.max(np.abs(a) + np.abs(b), where=finite, initial=0.0)
        error = np.max(np.abs(a_differ - b_differ))
    if not (np.isfinite(scale) and np.isfinite(error)):  # ... and then both halved give the same ratio
        scale = np.max(np.abs(0.5 * a) + np.abs(0.5 * b), where=finite, initial=0.0)
        error = np.max(np.abs(0.5 * a_differ - 0.5 * b_differ))
    return float(error / max(scale, TINY))


def gradcheck(
    f: Callable[..., Any],
    *tensors: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the autograd gradient of ``f(*tensors)`` against central differences.

    ``f`` returns a Tensor; if it is not a scalar it is reduced to one with a
    fixed random weighting, so every output entry is tested. Each input that
    requires grad is checked elementwise with ``|auto − num| ≤ atol + rtol·|num|``.
    Raises :class:`GradcheckError` naming the input and its worst element.
    Inputs' ``.grad`` are left as they were. Use float64 inputs.
    """
    _check_step("gradcheck", eps, atol, rtol)
    checked = [t for t in tensors if getattr(t, "requires_grad", False)]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    out = f(*tensors)
    if not hasattr(out, "backward"):
        raise TypeError(
            f"gradcheck: f must return a Tensor (built from its inputs), got {type(out).__name__}"
        )
    weights = np.random.default_rng(seed).standard_normal(out.shape)

    def scalar(_: np.ndarray) -> float:
        return float(np.sum(f(*tensors).numpy() * weights))

    saved = [t.grad for t in checked]
    try:
        for t in checked:
            t.grad = None
        out.backward(weights.astype(out.dtype))
        auto = [np.zeros_like(t.data) if t.grad is None else t.grad for t in checked]
    finally:
        for t, g in zip(checked, saved):
            t.grad = g

    for position, (t, analytic_grad) in enumerate(zip(checked, auto)):
        numeric = numerical_gradient(scalar, t.data, eps)
        worst = mismatch(analytic_grad, numeric, atol, rtol)
        if worst is not None:
            label = t.name or f"input {position}"
            advice = (
                ""
                if t.dtype == np.float64
                else f"; the input is {t.dtype}, too coarse for central differences: check in float64"
            )
            raise GradcheckError(
                f"gradcheck: gradient of {label} (shape {t.shape}) is wrong at index "
                f"{worst}: "
                f"autograd {analytic_grad[worst]:.6g}, numerical {numeric[worst]:.6g} "
                f"(rel_error over the input {rel_error(analytic_grad, numeric):.2e}){advice}"
            )
    return True


def gradgradcheck(
    f: Callable[..., Any],
    *tensors: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the engine's second derivatives of ``f(*tensors)`` against central differences of its first.

    The first derivatives, ``g_t = ∂⟨f, w⟩/∂t`` for a fixed random weighting
    ``w`` of the output, are computed with ``grad(..., create_graph=True)`` and
    reduced to one scalar ``s = Σ_t ⟨g_t, v_t⟩`` with fixed random directions
    ``v_t``. :func:`gradcheck` then compares the engine's derivative of ``s``
    (a walk back through the recorded backward pass: ``H v``) with central
    differences of ``s`` (first derivatives only). A backward rule that is right
    but not differentiable (a value it uses taken as a constant when it is
    not) passes :func:`gradcheck` and fails here. Raises :class:`GradcheckError`.
    """
    from .derivatives import grad  # the engine; this module's other checks need only NumPy

    _check_step("gradgradcheck", eps, atol, rtol)
    checked = [i for i, t in enumerate(tensors) if getattr(t, "requires_grad", False)]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad, so there is nothing to check")
    rng = np.random.default_rng(seed)
    out_shape = f(*tensors).shape
    weights = rng.standard_normal(out_shape)
    directions = [rng.standard_normal(tensors[i].shape) for i in checked]

    def first_derivatives(*ts: Any) -> Any:
        inputs = [ts[i] for i in checked]
        out = f(*ts)
        grads = grad(out, inputs, grad_output=weights.astype(out.dtype), create_graph=True)
        total = sum(((g * v).sum() for g, v in zip(grads, directions)), start=0.0 * out.sum())
        # Plus 0·Σt: a gradient that does not depend on the inputs (f linear) is still
        # a function of them, whose zero derivative is then checked too.
        return total + sum((0.0 * t.sum() for t in inputs), start=0.0)

    try:
        return gradcheck(first_derivatives, *tensors, eps=eps, atol=atol, rtol=rtol, seed=seed)
    except GradcheckError as error:
        message = str(error).replace("gradcheck: gradient of", "gradgradcheck: second derivative (H v) of", 1)
        raise GradcheckError(message) from None
