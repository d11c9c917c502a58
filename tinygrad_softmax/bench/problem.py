"""The workload: one batch of the linear softmax classifier, with the closed-form gradients.

Every implementation is handed a :class:`Problem` and must return the same
``dW`` and ``db`` as the closed form (``analytic``) before it is timed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import analytic
from ..analytic import CLASS_AXIS, Layout

SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (4, 3, 3),
    "small": (64, 32, 10),
    "mnist-like": (256, 784, 10),
    "cifar-like": (1024, 3072, 100),
}
LAYOUTS: tuple[Layout, ...] = ("row", "column")


class BenchmarkError(RuntimeError):
    """An implementation computed the wrong gradients, so its time would mean nothing."""


@dataclass(frozen=True)
class Problem:
    """One batch of the classifier, with the closed-form gradients to check against."""

    size: str
    layout: Layout
    X: np.ndarray
    W: np.ndarray
    b: np.ndarray
    labels: np.ndarray
    dW: np.ndarray
    db: np.ndarray

    def copy(self) -> Problem:
        """The same problem in arrays of its own, each laid out in memory as the original."""

        def own(a: np.ndarray) -> np.ndarray:
            return np.array(a, order="K", copy=True)

        return replace(
            self,
            X=own(self.X),
            W=own(self.W),
            b=own(self.b),
            labels=own(self.labels),
            dW=own(self.dW),
            db=own(self.db),
        )

    @property
    def axis(self) -> int:
        """The class axis of the logits: 1 in the row layout, 0 in the column layout."""
        return CLASS_AXIS[self.layout]

    @property
    def samples(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> int:
        return int(self.W.shape[1] if self.layout == "row" else self.W.shape[0])


def make_problem(size: str, layout: Layout, seed: int = 0) -> Problem:
    """Random float64 data of the named size; W small enough that the logits are O(1)."""
    N, D, C = SIZES[size]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=N)
    X = rng.normal(size=(N, D))
    W = rng.normal(scale=1 / math.sqrt(D), size=(D, C))
    b = rng.normal(scale=0.1, size=C)
    if layout == "column":
        X, W, b = np.ascontiguousarray(X.T), np.ascontiguousarray(W.T), b[:, None].copy()
    reference = analytic.linear_classifier(W, b, X, labels, layout)
    return Problem(size, layout, X, W, b, labels, reference.dW, reference.db)


StepFn = Callable[[], tuple[Any, Any]]  # one training step; returns (dW, db)
