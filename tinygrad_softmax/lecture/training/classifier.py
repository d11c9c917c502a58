"""The linear softmax classifier of the derivation, built on the engine with fixed seeds.

Shared by the command line, the demo, the pictures and the benchmark, so
every one of them shows the same graph. :func:`logits` is its forward pass,
written once for both layouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ... import functional as F
from ...analytic import CLASS_AXIS, Layout
from ...tensor import Tensor

Operand = TypeVar("Operand")  # a Tensor, a NumPy array, or any array with @ and +


def logits(W: Operand, b: Operand, X: Operand, layout: Layout) -> Operand:
    """The classifier's forward pass: Z = W X + b (column layout) or Z = X W + b (row layout).

    Column: X is D×N (one sample per column), W is C×D, b is C×1. Row: X is
    N×D, W is D×C, b has C entries. Works on Tensors (recording the graph) and
    on plain arrays alike.
    """
    if layout == "column":
        return W @ X + b  # type: ignore[operator]
    if layout == "row":
        return X @ W + b  # type: ignore[operator]
    raise ValueError(f"logits: layout must be 'column' or 'row', got {layout!r}")


@dataclass
class Classifier:
    """One forward and backward pass of the softmax linear classifier."""

    layout: Layout
    X: Tensor
    W: Tensor
    b: Tensor
    labels: np.ndarray
    Z: Tensor
    loss: Tensor

    @property
    def class_axis(self) -> int:
        return CLASS_AXIS[self.layout]


def build_classifier(
    layout: Layout = "column",
    D: int = 4,
    N: int = 5,
    C: int = 3,
    seed: int = 0,
    dtype: type = np.float64,
    weight_scale: float = 1.0,
    backward: bool = True,
    labels: Sequence[int] | np.ndarray | None = None,
) -> Classifier:
    """Z = W X + b (column) or Z = X W + b (row), then the mean cross-entropy.

    With N > C some class is the label of several samples. Each sample still
    picks one entry of its own column (or row), so gather's backward adds into
    each position once; repeated indices within one pick are tested in
    ``tests/core/test_ops.py``. ``labels`` (N classes in [0, C)) replace the drawn ones; X and W
    stay those of ``seed``.
    """
    if layout not in CLASS_AXIS:
        raise ValueError(f"layout must be 'column' or 'row', got {layout!r}")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, C, size=N)  # drawn even when given, so X and W depend on the seed alone
    classes = drawn if labels is None else np.array(labels, dtype=np.int64)
    if classes.shape != (N,) or classes.min() < 0 or classes.max() >= C:
        raise ValueError(f"build_classifier: labels must be {N} classes in [0, {C}), got {classes.tolist()}")
    if layout == "column":
        X = Tensor(rng.normal(size=(D, N)).astype(dtype), name="X")
        W = Tensor((weight_scale * rng.normal(size=(C, D))).astype(dtype), requires_grad=True, name="W")
        b = Tensor(np.zeros((C, 1), dtype=dtype), requires_grad=True, name="b")
    else:
        X = Tensor(rng.normal(size=(N, D)).astype(dtype), name="X")
        W = Tensor((weight_scale * rng.normal(size=(D, C))).astype(dtype), requires_grad=True, name="W")
        b = Tensor(np.zeros(C, dtype=dtype), requires_grad=True, name="b")
    Z = logits(W, b, X, layout)
    Z.name = "Z"
    loss = F.cross_entropy(Z, classes, axis=CLASS_AXIS[layout])
    loss.name = "loss"
    if backward:
        loss.backward()
    return Classifier(layout, X, W, b, classes, Z, loss)
