"""The engine's Hessian of the linear softmax classifier equals the closed form (analytic.weights_hessian).

``hessian(f, W)`` has shape ``W.shape + W.shape``: ``H[i, j, k, l] = ∂²L/∂W[i, j] ∂W[k, l]``,
so ``H.reshape(W.size, W.size)`` is the matrix for vec(W) taken row by row (NumPy's order),
the order in which the closed form's Kronecker products are written.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic, hessian
from tinygrad_softmax import functional as F

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics

SHAPES = [(5, 4, 3), (1, 4, 3), (6, 3, 2), (1, 1, 2), (9, 2, 5)]  # (N, D, C), including N = 1 and C = 2


def problem(layout, n, d, c, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    if layout == "column":
        return rng.normal(size=(c, d)), rng.normal(size=(c, 1)), rng.normal(size=(d, n)), labels
    return rng.normal(size=(d, c)), rng.normal(size=(c,)), rng.normal(size=(n, d)), labels


def loss_of_W(layout, b, X, labels, fused=False):
    cross_entropy = F.softmax_cross_entropy if fused else F.cross_entropy

    def loss(W):
        Z = (W @ Tensor(X) if layout == "column" else Tensor(X) @ W) + Tensor(b)
        return cross_entropy(Z, labels, axis=0 if layout == "column" else 1)

    return loss


@pytest.mark.parametrize("fused", [False, True], ids=["primitives", "fused"])
@pytest.mark.parametrize("n,d,c", SHAPES)
@pytest.mark.parametrize("layout", ["column", "row"])
def test_engine_hessian_equals_the_closed_form(layout, n, d, c, fused):
    W, b, X, labels = problem(layout, n, d, c)
    engine = hessian(loss_of_W(layout, b, X, labels, fused), W)
    closed = analytic.weights_hessian(W, b, X, layout)
    assert engine.shape == closed.shape == W.shape + W.shape
    np.testing.assert_allclose(engine, closed, rtol=1e-9, atol=1e-14)


def test_the_closed_form_is_the_kronecker_sum_written_in_the_docs():
    # Column layout: H = (1/N) Σ_n (diag(p_n) − p_n p_nᵀ) ⊗ (x_n x_nᵀ) for vec(W) row by row;
    # row layout: the factors swap. Written out with np.kron, sample by sample.
    for layout in ("column", "row"):
        W, b, X, _ = problem(layout, 4, 3, 3, seed=2)
        Z = analytic.logits(W, b, X, layout)
        P = analytic.softmax(Z, axis=0 if layout == "column" else 1)
        cols = P.T if layout == "column" else P
        xs = X.T if layout == "column" else X
        H = (
            sum(
                np.kron(np.diag(p) - np.outer(p, p), np.outer(x, x))
                if layout == "column"
                else np.kron(np.outer(x, x), np.diag(p) - np.outer(p, p))
                for p, x in zip(cols, xs)
            )
            / 4
        )
        np.testing.assert_allclose(analytic.weights_hessian(W, b, X, layout).reshape(9, 9), H, atol=1e-15)


def test_the_closed_form_matches_central_differences_of_the_closed_form_gradient():
    # Independent of the engine: differentiate analytic.linear_classifier's dW numerically.
    W, b, X, labels = problem("column", 6, 3, 4, seed=3)
    eps, H = 1e-6, np.zeros((W.size, W.size))
    for k in range(W.size):
        step = np.zeros(W.size)
        step[k] = eps
        up = analytic.linear_classifier(W + step.reshape(W.shape), b, X, labels).dW
        down = analytic.linear_classifier(W - step.reshape(W.shape), b, X, labels).dW
        H[:, k] = ((up - down) / (2 * eps)).reshape(-1)
    np.testing.assert_allclose(analytic.weights_hessian(W, b, X).reshape(W.size, W.size), H, atol=1e-8)


def test_the_hessian_is_convex_with_a_zero_eigenvalue_per_feature():
    # Adding the same vector to every class's row of W shifts every logit of a sample
    # by the same amount: softmax, hence the loss, does not change. Those D directions
    # have zero curvature; every other direction has positive curvature (convexity).
    W, b, X, _ = problem("column", 20, 4, 3, seed=4)
    H = analytic.weights_hessian(W, b, X).reshape(12, 12)
    eigenvalues = np.linalg.eigvalsh(H)
    assert eigenvalues.min() > -1e-14
    assert np.sum(np.abs(eigenvalues) < 1e-12) == 4
    for j in range(4):
        shift = np.zeros((3, 4))
        shift[:, j] = 1.0  # the same vector (e_j) added to every class's row
        assert np.abs(H @ shift.reshape(-1)).max() < 1e-14


@pytest.mark.parametrize("axis", [0, 1])
def test_logits_hessian_per_sample_is_diag_p_minus_p_p_transposed(axis):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 6)) if axis == 0 else rng.normal(size=(6, 4))  # 4 classes, 6 samples
    S = analytic.logits_hessian(z, axis)
    assert S.shape == (6, 4, 4)
    for n in range(6):
        zn = np.take(z, n, axis=1 - axis)
        label = n % 4

        def per_sample(t, label=label):
            return F.cross_entropy(t.reshape(1, 4), np.array([label]))

        np.testing.assert_allclose(hessian(per_sample, zn), S[n], rtol=1e-9, atol=1e-15)
    assert analytic.logits_hessian(z[:, 0] if axis == 0 else z[0], axis=0).shape == (4, 4)
