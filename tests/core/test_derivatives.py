"""grad, jacobian (both modes), hessian, hvp, jvp and gradgradcheck, against PyTorch and each other."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax import Tensor, grad, hessian, hvp, jacobian, jvp, no_grad, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import GradcheckError, gradcheck, gradgradcheck

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.numerics,  # last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another
]


def leaf(rng, *shape, name=None, positive=False):
    data = rng.normal(size=shape)
    return Tensor(np.abs(data) + 0.5 if positive else data, requires_grad=True, name=name)


def softmax_net(t):
    return F.softmax((t * t).reshape(2, 3) @ np.arange(6.0).reshape(3, 2) / 5, axis=0)


# ---------------------------------------------------------------- Jacobians: reverse, forward, jvp


def test_forward_and_reverse_mode_jacobians_agree(rng):
    x = rng.normal(size=6)
    reverse = jacobian(softmax_net, x)
    forward = jacobian(softmax_net, x, mode="forward")
    assert reverse.shape == forward.shape == (2, 2, 6)
    np.testing.assert_allclose(forward, reverse, rtol=1e-12, atol=1e-15)
    assert np.abs(reverse).max() > 0.01  # not trivially zero


def test_jvp_is_the_jacobian_times_v(rng):
    x, v = rng.normal(size=6), rng.normal(size=6)
    J = jacobian(softmax_net, x).reshape(4, 6)
    np.testing.assert_allclose(jvp(softmax_net, x, v).reshape(-1), J @ v, rtol=1e-12, atol=1e-15)


def test_jvp_matches_torch_func_jvp(torch, rng):
    x, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 2))

    def ours(t):
        return (t.exp() @ w).relu() * 2

    def theirs(t):
        return torch.relu(torch.exp(t) @ torch.tensor(w)) * 2

    _, expected = torch.func.jvp(theirs, (torch.tensor(x),), (torch.tensor(v),))
    np.testing.assert_allclose(jvp(ours, x, v), expected.numpy(), rtol=1e-12)


def test_jvp_of_the_classifier_loss_matches_torch(torch, rng):
    X, labels = rng.normal(size=(4, 7)), rng.integers(0, 3, size=7)
    W, V = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    ours = jvp(lambda w: F.cross_entropy(w @ X, labels, axis=0), W, V)
    _, theirs = torch.func.jvp(
        lambda w: torch.nn.functional.cross_entropy((w @ torch.tensor(X)).T, torch.tensor(labels)),
        (torch.tensor(W),),
        (torch.tensor(V),),
    )
    assert ours.shape == ()
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)


def test_jacobian_checks_mode_and_no_grad(rng):
    with pytest.raises(ValueError, match="mode must be 'reverse' or 'forward'"):
        jacobian(softmax_net, rng.normal(size=6), mode="sideways")  # type: ignore[arg-type]
    with no_grad(), pytest.raises(RuntimeError, match="inside no_grad"):
        jvp(softmax_net, rng.normal(size=6), rng.normal(size=6))
    with pytest.raises(ValueError, match=r"jvp: v has shape \(5,\) but x has shape \(6,\)"):
        jvp(softmax_net, rng.normal(size=6), rng.normal(size=5))


def test_a_constant_function_has_zero_derivatives(rng):
    x = rng.normal(size=3)
    assert not jvp(lambda t: Tensor(np.ones(2)), x, x).any()
    assert not jacobian(lambda t: Tensor(np.ones(2)), x, mode="forward").any()
    assert not hessian(lambda t: (t * 2.0).sum(), x).any()  # a linear function: H = 0
    assert not hvp(lambda t: (t * 2.0).sum(), x, x).any()


# ---------------------------------------------------------------- Hessians


def test_hessian_matches_pytorch_on_a_mixed_program(torch, rng):
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(3, 3))

    def ours(t):
        return ((t @ w).exp().sum(axis=0) * t.max(axis=0)).sum() + (t**3.0).mean() + (t.relu() * t).sum()

    def theirs(t):
        tw = torch.tensor(w)
        return (torch.exp(t @ tw).sum(0) * torch.amax(t, 0)).sum() + (t**3).mean() + (torch.relu(t) * t).sum()

    expected = torch.autograd.functional.hessian(theirs, torch.tensor(x)).numpy()
    got = hessian(ours, x)
    assert got.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_hvp_is_the_hessian_times_v(rng):
    x, v = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))

    def f(t):
        return F.cross_entropy(t @ np.ones((3, 4)) * 0.3 + t.sum(), np.array([1, 3]))

    H = hessian(f, x).reshape(6, 6)
    np.testing.assert_allclose(H, H.T, atol=1e-15)
    np.testing.assert_allclose(hvp(f, x, v).reshape(-1), H @ v.reshape(-1), rtol=1e-12, atol=1e-15)


def test_hessian_wants_a_scalar(rng):
    with pytest.raises(ValueError, match=r"hessian: f must return a scalar, got shape \(2, 2\)"):
        hessian(softmax_net, rng.normal(size=6))
    with pytest.raises(TypeError, match="hvp: f must return a Tensor"):
        hvp(lambda t: 3.0, rng.normal(size=2), rng.normal(size=2))  # type: ignore[arg-type, return-value]


def test_the_callers_tensors_gain_no_grad(rng):
    x = leaf(rng, 3)
    w = leaf(rng, 3)
    hessian(lambda t: (t * w).exp().sum(), x)
    jacobian(lambda t: (t * w).exp(), x, mode="forward")
    assert x.grad is None and w.grad is None


def test_the_callers_tensors_keep_their_arrays(rng):
    """They are only read: a tensor a graph holds keeps its very array. (Reading ``.data``
    would swap in a copy, copy on write, and the next op recording the tensor would copy it again.)"""
    x = leaf(rng, 3)
    w = leaf(rng, 3)
    out = (x * w).exp()
    start = w * 2.0  # held by a graph too
    tensors = (x, w, out, start)
    arrays = [t._data for t in tensors]
    grad(out, [x, w], grad_output=start)
    jacobian(lambda t: (t * w).exp(), x)
    jacobian(lambda t: (t * w).exp(), x, mode="forward")
    hessian(lambda t: (t * w).exp().sum(), x)
    hvp(lambda t: (t * w).exp().sum(), x, start)
    jvp(lambda t: (t * w).exp(), x, start)
    assert all(t._data is array for t, array in zip(tensors, arrays))


# ---------------------------------------------------------------- gradgradcheck

OPS = {
    "add (broadcast)": (lambda a, b: (a + b) * a, [(3, 4), (4,)]),
    "sub (broadcast)": (lambda a, b: (a - b) * (b - a), [(3, 4), (3, 1)]),
    "mul": (lambda a, b: a * b * a, [(3, 4), (3, 4)]),
    "div": (lambda a, b: a / b, [(3, 4), ("positive", (3, 4))]),
    "neg": (lambda a: -(a * a), [(3,)]),
    "pow": (lambda a: a**3.0, [("positive", (3, 2))]),
    "exp": (lambda a: a.exp(), [(3, 2)]),
    "log": (lambda a: a.log(), [("positive", (3, 2))]),
    "relu": (lambda a: a.relu() * a, [(3, 4)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "matmul (vectors)": (lambda a, b: (a @ b) @ a, [(3,), (3, 3)]),
    "sum": (lambda a: a.sum(axis=0) * a.sum(), [(3, 4)]),
    "mean": (lambda a: a.mean(axis=1, keepdims=True) * a, [(3, 4)]),
    "max": (lambda a: a.max(axis=1) * a.max(axis=1), [(3, 4)]),
    "gather": (lambda a: a.gather(1, np.array([[0, 0], [2, 1], [3, 3]])) ** 2.0, [(3, 4)]),
    "transpose": (lambda a: a.transpose(-1, 0) * a.T, [(3, 3)]),
    "reshape": (lambda a: a.reshape(6, 2) * a.reshape(6, 2), [(3, 4)]),
    "softmax_cross_entropy": (lambda a: F.softmax_cross_entropy(a, np.array([0, 2, 1])), [(3, 4)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([0, 2, 1])), [(3, 4)]),
}


def _inputs(rng, specs):
    return [
        leaf(rng, *spec[1], positive=True) if spec[0] == "positive" else leaf(rng, *spec) for spec in specs
    ]


@pytest.mark.parametrize("name", OPS)
def test_gradgradcheck_passes_on_every_op(rng, name):
    f, specs = OPS[name]
    assert gradgradcheck(f, *_inputs(rng, specs))


def test_gradgradcheck_catches_a_rule_that_is_right_but_not_differentiable(rng):
    class ExpWithConstantOutput(ops.Exp):
        """The right first derivative (exp(x) = out) but out read as a constant, so its derivative is lost."""

        def backward(self, grad, x, out):
            return (grad * ops.constant(out),)

    x = leaf(rng, 3, 2, name="x")
    f = lambda t: Tensor._apply(ExpWithConstantOutput(), t)  # noqa: E731
    assert gradcheck(f, x)  # first order: fine
    with pytest.raises(GradcheckError, match=r"gradgradcheck: second derivative \(H v\) of x"):
        gradgradcheck(f, x)


# ---------------------------------------------------------------- reverse-mode Jacobians, checked three ways


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


# ---------------------------------------------------------------- reverse-mode Jacobians: closed forms


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
    """For the mean cross-entropy the Jacobian at the logits is one row: (P − Y)/N."""
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
