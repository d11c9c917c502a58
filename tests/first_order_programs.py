"""Programs whose first-order gradients are pinned in ``data/first_order_reference.npz``.

The reference values were computed by the engine before its backward rules were
rewritten to be differentiable (rules on NumPy arrays only). The rewrite must
leave every bit of every first-order gradient as it was: ``test_rules.py``
recomputes these programs and compares with ``np.array_equal``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F


def _classifier(layout: str, fused: bool, dtype: type) -> Callable[[], dict[str, np.ndarray]]:
    def run() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(7)
        n, d, c = 37, 11, 5
        labels = rng.integers(0, c, size=n)
        if layout == "column":
            X = Tensor(rng.normal(size=(d, n)).astype(dtype), name="X")
            W = Tensor(rng.normal(size=(c, d)).astype(dtype), requires_grad=True, name="W")
            b = Tensor(rng.normal(size=(c, 1)).astype(dtype), requires_grad=True, name="b")
            Z = W @ X + b
            axis = 0
        else:
            X = Tensor(rng.normal(size=(n, d)).astype(dtype), name="X")
            W = Tensor(rng.normal(size=(d, c)).astype(dtype), requires_grad=True, name="W")
            b = Tensor(rng.normal(size=(c,)).astype(dtype), requires_grad=True, name="b")
            Z = X @ W + b
            axis = 1
        loss = (F.softmax_cross_entropy if fused else F.cross_entropy)(Z, labels, axis=axis)
        loss.backward()
        assert W.grad is not None and b.grad is not None and Z.grad is not None
        return {"loss": loss.data, "W": W.grad, "b": b.grad, "Z": Z.grad}

    return run


def _every_op() -> dict[str, np.ndarray]:
    """A program using each op once or more: broadcasting, ties, repeated indices, vectors."""
    rng = np.random.default_rng(11)
    a = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    v = Tensor(rng.normal(size=(3,)), requires_grad=True)
    m = Tensor(rng.normal(size=(2, 3, 3)), requires_grad=True)
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5], [0.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    t = Tensor(ties, requires_grad=True)
    h = (a * v - v / (a * a + 1.0)) ** 3.0
    h = h + (-a).exp() + (a * a + 2.0).log() + a.relu()
    h = h @ v + (v @ a.T).sum()  # matrix·vector and vector·matrix
    g = (m @ m.transpose(0, 2, 1)).mean(axis=(1, 2)) + m.reshape(6, 3).max(axis=0).sum()
    picks = t.gather(1, np.array([[0, 0], [2, 2], [1, 1], [0, 2]])).sum(axis=1)  # repeated indices
    ties = t.max(axis=1) + t.max()
    loss = (h * picks).sum() + (ties * h).mean() + g.sum() + (v @ v)
    loss.backward()
    assert a.grad is not None and v.grad is not None and m.grad is not None and t.grad is not None
    return {"loss": loss.data, "a": a.grad, "v": v.grad, "m": m.grad, "t": t.grad}


PROGRAMS: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    f"{layout}-{'fused' if fused else 'primitive'}-{np.dtype(dtype).name}": _classifier(layout, fused, dtype)
    for layout in ("column", "row")
    for fused in (False, True)
    for dtype in (np.float64, np.float32)
}
PROGRAMS["every-op"] = _every_op


def compute_all() -> dict[str, np.ndarray]:
    """Every program's loss and gradients, flattened to ``program/name`` keys."""
    return {f"{prog}/{key}": value for prog, run in PROGRAMS.items() for key, value in run().items()}


if __name__ == "__main__":  # how the reference file was written (with the engine of that time)
    import pathlib

    np.savez(pathlib.Path(__file__).with_name("data") / "first_order_reference.npz", **compute_all())
