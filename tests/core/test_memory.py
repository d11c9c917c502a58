"""Memory: the lecture keeps every gradient; retain_intermediate_grads=False keeps only the leaves'.

Peaks are measured with tracemalloc (NumPy reports its arrays to it), never with a clock.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tinygrad_softmax import Tensor

SIZE = 50_000  # float64 entries per array: 400 kB
LINKS = 30
ARRAY = SIZE * 8


def chain() -> tuple[Tensor, Tensor]:
    x = Tensor(np.ones(SIZE), requires_grad=True, name="x")
    y = x
    for i in range(LINKS):
        y = y * 1.001 if i % 2 else y + 0.5
    return x, y.sum()


def backward_memory(retain: bool) -> tuple[float, float, Tensor]:
    """(peak during backward, kept after it) in arrays of SIZE floats, above what the graph holds."""
    x, loss = chain()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        loss.backward(retain_intermediate_grads=retain)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / ARRAY, (after - before) / ARRAY, x


def test_by_default_every_intermediate_keeps_its_gradient():
    peak, kept, x = backward_memory(retain=True)
    assert kept >= LINKS, (peak, kept)
    np.testing.assert_allclose(x.grad, 1.001 ** (LINKS // 2))


def test_without_intermediate_grads_the_walk_frees_each_gradient_once_passed_on():
    peak, kept, x = backward_memory(retain=False)
    assert peak <= 4, f"peak {peak:.1f} arrays: intermediate gradients were held"
    assert kept <= 1.5, f"{kept:.1f} arrays kept after backward"
    np.testing.assert_allclose(x.grad, 1.001 ** (LINKS // 2))


def test_only_leaves_and_retained_tensors_get_a_grad_without_intermediate_grads():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    z = h.exp()
    loss = z.sum()
    loss.backward(retain_intermediate_grads=False)
    np.testing.assert_allclose(x.grad, 3 * np.exp([3.0, 6.0]))
    np.testing.assert_allclose(h.grad, np.exp([3.0, 6.0]))
    assert z.grad is None and loss.grad is None


@pytest.mark.parametrize("retain", [True, False])
def test_the_leaf_gradients_are_the_same_either_way(retain, rng):
    W = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    X = Tensor(rng.standard_normal((5, 4)))
    (X @ W).relu().exp().sum().backward(retain_intermediate_grads=retain)
    expected = X.data.T @ (np.exp(np.maximum(X.data @ W.data, 0)) * (X.data @ W.data > 0))
    np.testing.assert_allclose(W.grad, expected)


def test_the_code_in_docs_reliability_runs():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert blocks, "docs/reliability.md has no python block"
    for block in blocks:
        exec(compile(block, "docs/reliability.md", "exec"), {})
