"""The seed's softmax classifier, built on the engine with fixed seeds.

Shared by the command line, the demo, the pictures and the benchmark, so
every one of them shows the same graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..analytic import CLASS_AXIS, Layout
from ..tensor import Tensor


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
) -> Classifier:
    """Z = W X + b (column) or Z = X W + b (row), then the mean cross-entropy.

    The labels always include a repeat when N > C, so the gather's scatter-add
    is exercised.
    """
    if layout not in CLASS_AXIS:
        raise ValueError(f"layout must be 'column' or 'row', got {layout!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=N)
    if layout == "column":
        X = Tensor(rng.normal(size=(D, N)).astype(dtype), name="X")
        W = Tensor((weight_scale * rng.normal(size=(C, D))).astype(dtype), requires_grad=True, name="W")
        b = Tensor(np.zeros((C, 1), dtype=dtype), requires_grad=True, name="b")
        Z = W @ X + b
    else:
        X = Tensor(rng.normal(size=(N, D)).astype(dtype), name="X")
        W = Tensor((weight_scale * rng.normal(size=(D, C))).astype(dtype), requires_grad=True, name="W")
        b = Tensor(np.zeros(C, dtype=dtype), requires_grad=True, name="b")
        Z = X @ W + b
    Z.name = "Z"
    loss = F.cross_entropy(Z, labels, axis=CLASS_AXIS[layout])
    loss.name = "loss"
    if backward:
        loss.backward()
    return Classifier(layout, X, W, b, labels, Z, loss)
