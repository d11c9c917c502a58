"""Derivatives of whole functions, built on the backward walk.

``jacobian(f, x)`` stacks one reverse-mode walk per output element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine
from .tensor import Tensor, is_grad_enabled

__all__ = ["jacobian"]


def jacobian(f: Callable[[Tensor], Tensor], x: Tensor | Any) -> np.ndarray:
    """J[i, j] = ∂f(x)[i] / ∂x[j], by reverse mode: one backward walk per output element.

    Row i is the gradient of ``out[i]`` alone, so the walk is seeded with the
    one-hot array ``e_i`` (1 at ``i``, 0 elsewhere), and the rows are stacked.

    The result has shape ``out.shape + x.shape`` (PyTorch's convention):
    ``J[i..., j...]`` is the derivative of ``out[i...]`` with respect to
    ``x[j...]``. For vectors that is the usual matrix; for anything else
    ``J.reshape(out.size, x.size)`` is.

    ``f`` gets a fresh leaf holding ``x``'s data, and ``engine.walk`` writes no
    ``.grad``, so neither ``x`` nor any tensor ``f`` uses gains a gradient.
    """
    if not is_grad_enabled():
        raise RuntimeError("jacobian: called inside no_grad(), where no graph is recorded to walk back")
    data = x.data if isinstance(x, Tensor) else x
    leaf = Tensor(data, requires_grad=True, name=x.name if isinstance(x, Tensor) else "x")
    out = f(leaf)
    if not isinstance(out, Tensor):
        raise TypeError(f"jacobian: f must return a Tensor, got {type(out).__name__}")
    rows = np.zeros((out.data.size, leaf.data.size), dtype=np.result_type(out.dtype, leaf.dtype))
    if out.requires_grad:  # otherwise out does not depend on x at all, and J = 0
        for i in range(out.data.size):
            seed = np.zeros(out.data.size, dtype=out.dtype)
            seed[i] = 1
            for step in engine.walk(out, seed.reshape(out.shape)):
                if step.node is leaf:
                    rows[i] = step.grad.reshape(-1)
    return rows.reshape(out.shape + leaf.shape)
