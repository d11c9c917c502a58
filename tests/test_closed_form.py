"""The heart of the project: autograd equals the seed's closed form dZ = (P − Y)/N, dW, db.

Column layout (the seed's): X D×N, W C×D, b C×1, Z = W X + b, classes on axis 0.
Row layout (PyTorch/CS231n): X N×D, W D×C, b (C,), Z = X W + b, classes on axis 1.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic
from tinygrad_softmax import functional as F

SHAPES = [  # (D, N, C): including N=1, C=2, D=1 and N > C (so labels repeat)
    (4, 5, 3),
    (1, 1, 2),
    (1, 7, 2),
    (3, 1, 4),
    (6, 16, 10),
    (2, 50, 3),
]


def run_classifier(layout, D, N, C, seed, labels=None, scale=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, size=N) if labels is None else np.asarray(labels)
    if layout == "column":
        X = Tensor(rng.normal(size=(D, N)), name="X")
        W = Tensor(scale * rng.normal(size=(C, D)), requires_grad=True, name="W")
        b = Tensor(rng.normal(size=(C, 1)), requires_grad=True, name="b")
        Z = W @ X + b
    else:
        X = Tensor(rng.normal(size=(N, D)), name="X")
        W = Tensor(scale * rng.normal(size=(D, C)), requires_grad=True, name="W")
        b = Tensor(rng.normal(size=(C,)), requires_grad=True, name="b")
        Z = X @ W + b
    loss = F.cross_entropy(Z, y, axis=analytic.CLASS_AXIS[layout])
    loss.backward()
    ref = analytic.linear_classifier(W.data, b.data, X.data, y, layout=layout)
    return SimpleNamespace(X=X, W=W, b=b, Z=Z, loss=loss, y=y, ref=ref)


@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("D,N,C", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autograd_equals_the_seeds_formulas(layout, D, N, C, seed):
    r = run_classifier(layout, D, N, C, seed)
    np.testing.assert_allclose(r.loss.item(), r.ref.loss, rtol=1e-12)
    np.testing.assert_allclose(r.Z.grad, r.ref.dZ, rtol=1e-10, atol=1e-14)  # (P − Y)/N
    np.testing.assert_allclose(r.W.grad, r.ref.dW, rtol=1e-10, atol=1e-14)  # dZ Xᵀ
    np.testing.assert_allclose(r.b.grad, r.ref.db, rtol=1e-10, atol=1e-14)  # Σ_i dZ[:, i]
    assert r.W.grad.shape == r.W.shape and r.b.grad.shape == r.b.shape


def test_the_readme_snippet_column_layout():
    rng = np.random.default_rng(0)
    D, N, C = 4, 5, 3
    X = Tensor(rng.normal(size=(D, N)), name="X")
    W = Tensor(rng.normal(size=(C, D)), requires_grad=True, name="W")
    b = Tensor(np.zeros((C, 1)), requires_grad=True, name="b")
    y = rng.integers(0, C, size=N)
    Z = W @ X + b
    loss = F.cross_entropy(Z, y, axis=0)
    loss.backward()
    ref = analytic.linear_classifier(W.data, b.data, X.data, y, layout="column")
    P = analytic.softmax(Z.data, axis=0)
    Y = analytic.one_hot(y, C, axis=0)
    np.testing.assert_allclose(Z.grad, (P - Y) / N, atol=1e-15)
    np.testing.assert_allclose(W.grad, Z.grad @ X.data.T, atol=1e-15)
    np.testing.assert_allclose(b.grad, Z.grad.sum(axis=1, keepdims=True), atol=1e-15)
    np.testing.assert_allclose(Z.grad, ref.dZ, atol=1e-15)


def test_the_readme_snippet_row_layout():
    rng = np.random.default_rng(0)
    D, N, C = 4, 5, 3
    X = Tensor(rng.normal(size=(N, D)), name="X")
    W = Tensor(rng.normal(size=(D, C)), requires_grad=True, name="W")
    b = Tensor(np.zeros(C), requires_grad=True, name="b")
    y = rng.integers(0, C, size=N)
    Z = X @ W + b
    F.cross_entropy(Z, y, axis=1).backward()
    P = analytic.softmax(Z.data, axis=1)
    Y = analytic.one_hot(y, C, axis=1)
    np.testing.assert_allclose(Z.grad, (P - Y) / N, atol=1e-15)
    np.testing.assert_allclose(W.grad, X.data.T @ Z.grad, atol=1e-15)
    np.testing.assert_allclose(b.grad, Z.grad.sum(axis=0), atol=1e-15)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_repeated_labels_are_all_counted(layout):
    # Every sample has label 1: the gather's backward must add, not overwrite.
    r = run_classifier(layout, D=3, N=6, C=4, seed=7, labels=[1] * 6)
    np.testing.assert_allclose(r.Z.grad, r.ref.dZ, atol=1e-15)
    np.testing.assert_allclose(r.b.grad, r.ref.db, atol=1e-15)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_each_samples_logit_gradient_sums_to_zero(layout):
    r = run_classifier(layout, D=5, N=9, C=4, seed=3)
    np.testing.assert_allclose(r.Z.grad.sum(axis=analytic.CLASS_AXIS[layout]), 0.0, atol=1e-15)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_huge_logits_are_stable(layout):
    # Logits of magnitude 1e4: exp would overflow without the detached-max shift.
    r = run_classifier(layout, D=3, N=4, C=3, seed=5, scale=1e4)
    assert np.abs(r.Z.data).max() > 1e3
    assert np.isfinite(r.loss.item())
    np.testing.assert_allclose(r.loss.item(), r.ref.loss, rtol=1e-12)
    np.testing.assert_allclose(r.Z.grad, r.ref.dZ, atol=1e-15)
    np.testing.assert_allclose(r.W.grad, r.ref.dW, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32_and_agrees_loosely():
    rng = np.random.default_rng(4)
    Z = Tensor(rng.normal(size=(5, 3)).astype(np.float32), requires_grad=True)
    y = rng.integers(0, 3, size=5)
    loss = F.cross_entropy(Z, y)
    loss.backward()
    assert loss.dtype == np.float32 and Z.grad.dtype == np.float32
    np.testing.assert_allclose(Z.grad, analytic.logits_grad(Z.data.astype(np.float64), y, axis=1), atol=1e-6)


def test_logits_grad_is_p_minus_y_over_n_per_formula():
    z = np.array([[2.0, 1.0, 0.1]])
    y = np.array([0])
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(analytic.logits_grad(z, y, axis=1), p - np.array([[1.0, 0, 0]]))
