"""jacobian(): reverse mode, one backward walk per output element, checked three ways."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_softmax import Tensor, jacobian, no_grad
from tinygrad_softmax import functional as F
from tinygrad_softmax.lecture.lab import format_softmax_jacobian, numerical_jacobian, softmax_jacobian_demo


def finite_differences(f, x, eps=1e-6):
    """Central differences written out here, independent of the package's helper."""
    x = np.asarray(x, dtype=np.float64)
    with no_grad():
        out_size = f(Tensor(x)).data.size
    J = np.zeros((out_size, x.size))
    for j in range(x.size):
        step = np.zeros(x.size)
        step[j] = eps
        step = step.reshape(x.shape)
        with no_grad():
            up = f(Tensor(x + step)).data.reshape(-1)
            down = f(Tensor(x - step)).data.reshape(-1)
        J[:, j] = (up - down) / (2 * eps)
    return J


# ---------------------------------------------------------------- closed forms


def test_softmax_jacobian_is_diag_p_minus_p_pT(rng):
    z = rng.normal(size=5)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(jacobian(F.softmax, z), np.diag(p) - np.outer(p, p), atol=1e-15)


def test_log_softmax_jacobian_is_identity_minus_ones_pT(rng):
    z = rng.normal(size=4)
    p = np.exp(z) / np.exp(z).sum()
    expected = np.eye(4) - np.outer(np.ones(4), p)
    np.testing.assert_allclose(jacobian(F.log_softmax, z), expected, atol=1e-14)


def test_elementwise_exp_has_a_diagonal_jacobian(rng):
    x = rng.normal(size=6)
    np.testing.assert_allclose(jacobian(lambda t: t.exp(), x), np.diag(np.exp(x)), rtol=1e-15)


def test_linear_map_jacobian_is_the_matrix(rng):
    A = rng.normal(size=(3, 4))
    x = rng.normal(size=4)
    np.testing.assert_allclose(jacobian(lambda t: Tensor(A) @ t, x), A, rtol=1e-15)


def test_matrix_input_keeps_the_full_shape(rng):
    """Z = W X: ∂Z[i, n]/∂W[k, d] = δ_ik X[d, n], so J has shape Z.shape + W.shape."""
    W, X = rng.normal(size=(3, 2)), rng.normal(size=(2, 5))
    J = jacobian(lambda w: w @ Tensor(X), W)
    assert J.shape == (3, 5, 3, 2)
    expected = np.einsum("ik,dn->inkd", np.eye(3), X)
    np.testing.assert_allclose(J, expected, rtol=1e-15)
    np.testing.assert_allclose(J.reshape(15, 6), expected.reshape(15, 6))


def test_scalar_output_gives_the_gradient(rng):
    """For the seed's loss the Jacobian at the logits is one row: (P − Y)/N."""
    Z = rng.normal(size=(3, 4))
    labels = np.array([2, 0, 0, 1])
    J = jacobian(lambda z: F.cross_entropy(z, labels, axis=0), Z)
    assert J.shape == (3, 4)
    P = np.exp(Z) / np.exp(Z).sum(axis=0)
    Y = np.eye(3)[labels].T
    np.testing.assert_allclose(J, (P - Y) / 4, atol=1e-15)


def test_function_that_ignores_x_has_a_zero_jacobian():
    J = jacobian(lambda t: Tensor([1.0, 2.0]) * 3.0, np.ones(3))
    assert J.shape == (2, 3)
    assert not J.any()


# ---------------------------------------------------------------- finite differences and PyTorch

FUNCTIONS = {  # ours, and the same function in PyTorch (t.softmax, t.relu: no module needed)
    "softmax": (F.softmax, lambda t: t.softmax(-1)),
    "softmax over axis 0": (lambda t: F.softmax(t, axis=0), lambda t: t.softmax(0)),
    "x·x / sum": (lambda t: t * t / t.sum(), lambda t: t * t / t.sum()),
    "max fan-out": (lambda t: t.max(axis=-1, keepdims=True) * t, lambda t: t.amax(-1, keepdim=True) * t),
    "transpose and matmul": (lambda t: t.T @ t, lambda t: t.T @ t),
    "log of relu + 1": (lambda t: (t.relu() + 1.0).log(), lambda t: (t.relu() + 1.0).log()),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_matches_finite_differences(name, rng):
    ours, _ = FUNCTIONS[name]
    x = rng.normal(size=(3, 4)) + 0.1  # away from relu's kink at 0
    J = jacobian(ours, x)
    numeric = finite_differences(ours, x)
    np.testing.assert_allclose(J.reshape(numeric.shape), numeric, atol=1e-7)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_matches_pytorch(name, rng, torch):
    ours, theirs = FUNCTIONS[name]
    x = rng.normal(size=(3, 4)) + 0.1
    J = jacobian(ours, x)
    expected = torch.autograd.functional.jacobian(theirs, torch.tensor(x)).numpy()
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-14)


def test_package_numerical_jacobian_matches_the_independent_one(rng):
    x = rng.normal(size=(2, 3))
    ours = numerical_jacobian(F.softmax, x)
    assert ours.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(ours.reshape(6, 6), finite_differences(F.softmax, x))


@given(st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_softmax_jacobian_rows_sum_to_zero_and_match_closed_form(classes, seed):
    z = np.random.default_rng(seed).normal(scale=3.0, size=classes)
    J = jacobian(F.softmax, z)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(J, np.diag(p) - np.outer(p, p), atol=1e-14)
    np.testing.assert_allclose(J.sum(axis=0), 0, atol=1e-14)  # Σ_i p_i = 1 whatever z is


# ---------------------------------------------------------------- no side effects


def test_leaves_no_gradient_anywhere():
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True, name="w")
    x.grad = np.array([7.0, 7.0, 7.0])
    J = jacobian(lambda t: t * w, x)
    np.testing.assert_allclose(J, np.diag(w.data))
    np.testing.assert_array_equal(x.grad, [7.0, 7.0, 7.0])
    assert w.grad is None


def test_float32_input_gives_float32_jacobian():
    J = jacobian(F.softmax, np.array([0.1, 0.2, 0.3], dtype=np.float32))
    assert J.dtype == np.float32


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="jacobian: f must return a Tensor, got ndarray"):
        jacobian(lambda t: t.data * 2, np.ones(2))
    with no_grad(), pytest.raises(RuntimeError, match="jacobian: called inside no_grad"):
        jacobian(F.softmax, np.ones(2))


# ---------------------------------------------------------------- the lecture demo


@pytest.mark.parametrize("classes, seed", [(2, 0), (4, 0), (10, 3)])
def test_softmax_jacobian_demo_lands_on_p_minus_y(classes, seed):
    demo = softmax_jacobian_demo(classes, seed)
    assert demo.engine_jacobian.shape == (classes, classes)
    assert demo.closed_form_error < 1e-15
    assert demo.finite_difference_error < 1e-8
    assert demo.chain_error < 1e-14
    # The chain really is the seed's dz: p minus the one-hot label.
    expected = demo.p.copy()
    expected[demo.label] -= 1
    np.testing.assert_allclose(demo.chain, expected, atol=1e-14)
    text = format_softmax_jacobian(demo)
    assert "diag(p) − p pᵀ" in text and "p − y" in text


def test_softmax_jacobian_demo_rejects_one_class():
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        softmax_jacobian_demo(1)


# ---------------------------------------------------------------- command line


def test_cli_jacobian_prints_the_comparison(capsys):
    from tinygrad_softmax.cli import main

    assert main(["jacobian", "--classes", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    demo = softmax_jacobian_demo(3, 1)
    assert "Closed form diag(p) − p pᵀ" in out
    assert f"true class y = {demo.label}" in out
    assert "-0.0000" not in out  # ∂L/∂p is 0 off the true class, printed as 0
    assert out.count("\n     [") == 2 * (3 - 1)  # two 3×3 matrices


def test_cli_jacobian_rejects_one_class(capsys):
    from tinygrad_softmax.cli import main

    assert main(["jacobian", "--classes", "1"]) == 2
    assert "at least 2 classes, got 1" in capsys.readouterr().err
