"""Catch the first NaN or Inf where it is born, forward or backward.

Inside ``detect_anomaly()``, every op checks its output and the backward walk
checks every gradient it passes on; the first non-finite value raises
:class:`AnomalyError` naming the op, the tensor and its shape, and which of the
op's inputs were already non-finite (so you can tell the source from a victim).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ops import Op
    from .tensor import Tensor

enabled = False  # read by Tensor._apply and engine.walk; cheap when off


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared. ``node`` is the tensor it appeared in (when it exists)."""

    def __init__(self, message: str, op: str, inputs: Sequence[Tensor], node: Tensor | None = None):
        super().__init__(message)
        self.op = op
        self.inputs = tuple(inputs)
        self.node = node


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose output, or whose backward gradient, is not finite."""
    global enabled
    before = enabled
    enabled = True
    try:
        yield
    finally:
        enabled = before


def describe(t: Tensor) -> str:
    """``'W' (3, 4)`` or ``<matmul> (3, 5)`` for a tensor without a name."""
    label = repr(t.name) if t.name else f"<{t.op or 'leaf'}>"
    return f"{label} {t.shape}"


def _what(values: np.ndarray) -> str:
    kinds = []
    if np.isnan(values).any():
        kinds.append("NaN")
    if np.isinf(values).any():
        kinds.append("Inf")
    return " and ".join(kinds)


def _inputs_report(inputs: Sequence[Tensor]) -> str:
    bad = [describe(t) for t in inputs if not np.isfinite(t.data).all()]
    return f"inputs already non-finite: {', '.join(bad)}" if bad else "all inputs were finite"


def check_forward(fn: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
    """Raise if ``fn``'s forward produced a NaN or Inf.

    The error carries ``out`` (with its parents, even when the op was not
    recorded) so a viewer can draw the graph up to the offending node; nothing
    downstream ever sees it.
    """
    if np.isfinite(out.data).all():
        return
    if not out.parents:
        # Not recorded (no input needs grad, or no_grad()): link it anyway, so the
        # graph up to the offending node can still be drawn. `out` is never returned.
        out.op, out.parents, out.grad_fn = fn.name, tuple(inputs), fn
    names = ", ".join(describe(t) for t in inputs)
    raise AnomalyError(
        f"{fn.name}: forward produced {_what(out.data)} in its output of shape {out.shape} "
        f"(inputs: {names}); {_inputs_report(inputs)}",
        fn.name,
        inputs,
        out,
    )


def check_backward(node: Tensor, parent: Tensor, grad: np.ndarray) -> None:
    """Raise if ``node``'s backward rule sent a NaN or Inf gradient to ``parent``."""
    if np.isfinite(grad).all():
        return
    raise AnomalyError(
        f"{node.op}: backward produced {_what(grad)} in the gradient for {describe(parent)} "
        f"(the op's output is {describe(node)}); {_inputs_report(node.parents)}",
        node.op,
        node.parents,
        node,
    )
