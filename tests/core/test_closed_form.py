"""The heart of the project: autograd equals the closed form of the derivation, dZ = (P − Y)/N, dW, db.

Column layout (the derivation's): X D×N, W C×D, b C×1, Z = W X + b, classes on axis 0.
Row layout (PyTorch/CS231n): X N×D, W D×C, b (C,), Z = X W + b, classes on axis 1.
Each equation of ``docs/derivation.md`` is checked here, for the primitive
composition and for the fused op.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic
from tinygrad_softmax import functional as F
from tinygrad_softmax.lecture.training.classifier import logits

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics

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
    else:
        X = Tensor(rng.normal(size=(N, D)), name="X")
        W = Tensor(scale * rng.normal(size=(D, C)), requires_grad=True, name="W")
        b = Tensor(rng.normal(size=(C,)), requires_grad=True, name="b")
    Z = logits(W, b, X, layout)
    loss = F.cross_entropy(Z, y, axis=analytic.CLASS_AXIS[layout])
    loss.backward()
    ref = analytic.linear_classifier(W.data, b.data, X.data, y, layout=layout)
    return SimpleNamespace(X=X, W=W, b=b, Z=Z, loss=loss, y=y, ref=ref)


@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("D,N,C", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autograd_equals_the_closed_form(layout, D, N, C, seed):
    r = run_classifier(layout, D, N, C, seed)
    np.testing.assert_allclose(r.loss.item(), r.ref.loss, rtol=1e-12)
    np.testing.assert_allclose(r.Z.grad, r.ref.dZ, rtol=1e-10, atol=1e-14)  # (P − Y)/N
    np.testing.assert_allclose(r.W.grad, r.ref.dW, rtol=1e-10, atol=1e-14)  # dZ Xᵀ
    np.testing.assert_allclose(r.b.grad, r.ref.db, rtol=1e-10, atol=1e-14)  # Σ_i dZ[:, i]
    assert r.W.grad.shape == r.W.shape and r.b.grad.shape == r.b.shape


@pytest.mark.parametrize("layout", ["column", "row"])
def test_the_closed_form_written_out(layout):
    # dZ = (P − Y)/N; dW = dZ Xᵀ (column) or Xᵀ dZ (row); db = Σ over the samples of dZ.
    r = run_classifier(layout, D=4, N=5, C=3, seed=0)
    axis = analytic.CLASS_AXIS[layout]
    P = analytic.softmax(r.Z.data, axis=axis)
    Y = analytic.one_hot(r.y, 3, axis=axis)
    np.testing.assert_allclose(r.Z.grad, (P - Y) / 5, atol=1e-15)
    if layout == "column":
        np.testing.assert_allclose(r.W.grad, r.Z.grad @ r.X.data.T, atol=1e-15)
        np.testing.assert_allclose(r.b.grad, r.Z.grad.sum(axis=1, keepdims=True), atol=1e-15)
    else:
        np.testing.assert_allclose(r.W.grad, r.X.data.T @ r.Z.grad, atol=1e-15)
        np.testing.assert_allclose(r.b.grad, r.Z.grad.sum(axis=0), atol=1e-15)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_repeated_labels_are_all_counted(layout):
    # Every sample has label 1: each column's pick lands on the same class, and all of them count.
    r = run_classifier(layout, D=3, N=6, C=4, seed=7, labels=[1] * 6)
    np.testing.assert_allclose(r.Z.grad, r.ref.dZ, atol=1e-15)
    np.testing.assert_allclose(r.b.grad, r.ref.db, atol=1e-15)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_a_log_probability_picked_twice_is_counted_twice(layout):
    # L = −(1/2N) Σᵢ (log p[yᵢ, i] + log p[yᵢ, i]) is the same loss, so dZ is still (P − Y)/N;
    # but only if gather's backward adds the two picks of one position instead of keeping one.
    axis = analytic.CLASS_AXIS[layout]
    rng = np.random.default_rng(3)
    y = np.array([1, 0, 1, 2, 1])
    Z = Tensor(rng.normal(size=(3, 5) if layout == "column" else (5, 3)), requires_grad=True)
    twice = np.stack([y, y], axis=axis)  # two picks per sample, of the same class
    loss = -F.log_softmax(Z, axis=axis).gather(axis, twice).mean()
    loss.backward()
    np.testing.assert_allclose(loss.item(), analytic.cross_entropy(Z.data, y, axis), rtol=1e-13)
    np.testing.assert_allclose(Z.grad, analytic.logits_grad(Z.data, y, axis), atol=1e-15)


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


@pytest.mark.parametrize("layout", ["row", "column"])
def test_the_fused_op_gives_the_same_dz_dw_db(rng, layout):
    D, N, C = 5, 8, 3
    labels = rng.integers(0, C, size=N)
    if layout == "row":
        X, W, b = rng.normal(size=(N, D)), rng.normal(size=(D, C)), rng.normal(size=C)
    else:
        X, W, b = rng.normal(size=(D, N)), rng.normal(size=(C, D)), rng.normal(size=(C, 1))
    ref = analytic.linear_classifier(W, b, X, labels, layout)
    Wt, bt = Tensor(W, requires_grad=True), Tensor(b, requires_grad=True)
    Z = logits(Wt, bt, Tensor(X), layout)
    loss = F.softmax_cross_entropy(Z, labels, axis=analytic.CLASS_AXIS[layout])
    loss.backward()
    np.testing.assert_allclose(loss.item(), ref.loss, rtol=1e-13)
    np.testing.assert_allclose(Z.grad, ref.dZ, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(Wt.grad, ref.dW, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bt.grad, ref.db, rtol=1e-12, atol=1e-15)
