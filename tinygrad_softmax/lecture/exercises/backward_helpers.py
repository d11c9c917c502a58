"""The helpers a student's backward rules may call, and the op settings they read through ``self``.

This file is the whole of what the student's process can import besides NumPy
and the standard library: the grader copies it, with the submission, into a
private folder, and runs the student's code where the package itself cannot be
imported. So it imports nothing but NumPy, and it computes on arrays only (the
package's own rules also run on Tensors; a student's run on arrays).

    expand(g, shape)            g copied out to shape: the adjoint of sum
    sum_to(g, shape)            g summed down to shape: the adjoint of broadcasting
    scatter_add(g, self, shape) g added into zeros where a gather picked: the adjoint of gather
    constant(v)                 v, a value the derivative treats as fixed (a mask, the winners of max)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Grads", "Value", "OpSettings", "constant", "expand", "scatter_add", "sum_to"]

Value = Any  # what a rule computes with: an ndarray here
Grads = tuple[Any, ...]  # one gradient (or None) per input


def constant(value: Value) -> np.ndarray:
    """``value`` itself: what a rule reads through it is a constant to the derivative."""
    return np.asarray(value)


def expand(grad: Value, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` copied along its size-1 (or missing leading) axes until it has ``shape``."""
    out = np.empty(shape, dtype=np.result_type(grad))
    out[...] = grad
    return out


def sum_to(grad: Value, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed down to ``shape`` over the axes broadcasting added or stretched.

    If b of shape (C, 1) was broadcast across N columns in Z = W X + b, each of its
    entries fed N outputs, so its gradient is the sum of those N: db = Σ_i dZ[:, i].
    """
    grad = np.asarray(grad)
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    elif extra < 0:
        grad = grad.reshape((1,) * -extra + grad.shape)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"sum_to: a gradient of shape {np.shape(grad)} does not sum down to shape {shape}")
    return grad


def scatter_add(grad: Value, picks: OpSettings, shape: tuple[int, ...]) -> np.ndarray:
    """Zeros of ``shape`` with ``grad`` added where the gather ``picks`` took its values."""
    return picks.scatter(np.asarray(grad), shape)


def _picked_positions(index: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """NumPy fancy indices for a PyTorch-style gather of ``index`` along ``axis``."""
    ndim = index.ndim
    return tuple(
        index if d == axis else np.arange(n).reshape((n,) + (1,) * (ndim - d - 1))
        for d, n in enumerate(index.shape)
    )


class OpSettings:
    """What ``self`` is in a student's rule: the op's settings, as the forward left them.

    Reductions: ``axis``, ``keepdims``, ``axes`` (the reduced axes, sorted), ``count``
    (mean: the entries averaged into each output), ``with_kept_axes(value, x)``.
    Gather: ``axis``, ``index``, ``positions``. Pow: ``exponent``. Transpose:
    ``order``. Reshape: ``shape``. Every op: ``needs_grad``, one flag per input.
    """

    # What the ops' settings may hold (set from the request, each only on the ops that have it).
    axis: Any
    axes: tuple[int, ...]
    index: Any

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        for key, value in settings.items():
            setattr(self, key, value)
        if isinstance(getattr(self, "index", None), np.ndarray):
            self.positions = _picked_positions(self.index, int(self.axis))
            self.one_pick_per_line = self.index.shape[int(self.axis)] == 1

    def __repr__(self) -> str:
        return f"<the {self.name} op>"

    def with_kept_axes(self, value: Value, x: Value) -> Value:
        """``value`` with the reduced axes back as size-1 axes (what keepdims=True gives)."""
        value = np.asarray(value)
        if getattr(self, "keepdims", False) or value.ndim == 0:
            return value
        axes = self.axes
        return value.reshape(tuple(1 if i in axes else n for i, n in enumerate(np.shape(x))))

    def scatter(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Zeros of ``shape`` with ``values`` added (``np.add.at``) at the picked positions."""
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, self.positions, values)
        return out
