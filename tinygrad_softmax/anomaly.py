"""Catch the first NaN or Inf where it is born, forward or backward.

Inside ``detect_anomaly()``, every op checks its output and the backward walk
checks every gradient it passes on; the first non-finite value raises
:class:`AnomalyError` naming the op, the tensor and its shape, and which of the
op's inputs were already non-finite (so you can tell the source from a victim).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import grad_mode
from .contracts import Node, Op


class _AnomalyMode(threading.local):
    """How many ``detect_anomaly()`` blocks the current thread is inside (0 in a new thread)."""

    depth = 0


mode = _AnomalyMode()


def is_enabled() -> bool:
    """True inside ``detect_anomaly()`` in this thread."""
    return mode.depth > 0


def __getattr__(name: str) -> Any:
    if name == "enabled":  # the older spelling of is_enabled(), as a read-only module attribute
        return mode.depth > 0
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared. ``node`` is the tensor it appeared in (when it exists)."""

    def __init__(self, message: str, op: str, inputs: Sequence[Node], node: Node | None = None):
        super().__init__(message)
        self.op = op
        self.inputs = tuple(inputs)
        self.node = node


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose output, or whose backward gradient, is not finite.

    Per thread, like PyTorch's: other threads run unchecked.
    """
    if mode.depth == 0:  # the thread is watched: every op it makes takes Tensor._apply's slow path
        grad_mode.watch(+1)
    mode.depth += 1
    try:
        yield
    finally:
        mode.depth -= 1
        if mode.depth == 0:
            grad_mode.watch(-1)


def describe(t: Node) -> str:
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


def _inputs_report(inputs: Sequence[Node]) -> str:
    bad = [describe(t) for t in inputs if not np.isfinite(t._data).all()]
    return f"inputs already non-finite: {', '.join(bad)}" if bad else "all inputs were finite"


def check_forward(fn: Op, inputs: Sequence[Node], out: Node) -> None:
    """Raise if ``fn``'s forward produced a NaN or Inf.

    The error carries ``out`` (``Tensor._apply`` links it to its parents even
    when the op was not recorded) so a viewer can draw the graph up to the
    offending node; nothing downstream ever sees it. This only reads.
    """
    if np.isfinite(out._data).all():
        return
    names = ", ".join(describe(t) for t in inputs)
    raise AnomalyError(
        f"{fn.name}: forward produced {_what(out._data)} in its output of shape {out.shape} "
        f"(inputs: {names}); {_inputs_report(inputs)}",
        fn.name,
        inputs,
        out,
    )


def check_backward(node: Node, parent: Node, grad: np.ndarray) -> None:
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
