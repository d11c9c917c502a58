"""analytic, the closed-form witness, checked on its own: one-hot, the formulas, ln C at the start."""

import numpy as np
import pytest

from tinygrad_softmax import analytic
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import numerical_gradient, rel_error


def test_one_hot_in_both_layouts():
    y = np.array([2, 0, 2])
    np.testing.assert_array_equal(analytic.one_hot(y, 3), [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(analytic.one_hot(y, 3, axis=0), analytic.one_hot(y, 3).T)
    assert F.one_hot is analytic.one_hot


def test_closed_form_matches_central_differences_in_both_layouts():
    rng = np.random.default_rng(0)
    D, N, C = 3, 4, 3
    y = np.array([0, 2, 2, 1])
    for layout, (xs, ws, bs) in {
        "column": ((D, N), (C, D), (C, 1)),
        "row": ((N, D), (D, C), (C,)),
    }.items():
        X, W, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=bs)
        ref = analytic.linear_classifier(W, b, X, y, layout=layout)

        def loss_of_W(w, X=X, b=b, layout=layout):
            return analytic.linear_classifier(w, b, X, y, layout=layout).loss

        def loss_of_b(bb, X=X, W=W, layout=layout):
            return analytic.linear_classifier(W, bb, X, y, layout=layout).loss

        assert rel_error(ref.dW, numerical_gradient(loss_of_W, W.copy())) < 1e-8
        assert rel_error(ref.db, numerical_gradient(loss_of_b, b.copy())) < 1e-8
        dX = analytic.inputs_grad(ref.dZ, W, layout)
        assert dX.shape == X.shape


def test_initial_loss_is_log_c_for_zero_weights():
    X = np.random.default_rng(1).normal(size=(4, 10))
    ref = analytic.linear_classifier(np.zeros((5, 4)), np.zeros((5, 1)), X, np.arange(10) % 5)
    assert ref.loss == pytest.approx(np.log(5))


def test_logits_grad_is_p_minus_y_over_n_per_formula():
    z = np.array([[2.0, 1.0, 0.1]])
    y = np.array([0])
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(analytic.logits_grad(z, y, axis=1), p - np.array([[1.0, 0, 0]]))
