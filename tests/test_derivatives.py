"""grad, jacobian (both modes), hessian, hvp, jvp and gradgradcheck, against PyTorch and each other."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax import Tensor, hessian, hvp, jacobian, jvp, no_grad, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import GradcheckError, gradcheck, gradgradcheck

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


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
