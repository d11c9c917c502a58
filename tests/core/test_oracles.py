"""External oracles: HIPS autograd and PyTorch compute the same gradients.

Random programs are drawn from the engine's ops and run three times, once per
backend, through the same small interpreter; loss and gradients must agree.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad as autograd_grad

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F

# Inputs a random program does not use get a zero gradient; autograd warns about them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Output seems independent of input"),
    pytest.mark.numerics,  # last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another
]

SHAPES = {"a": (3, 4), "b": (4,), "w": (4, 2), "c": (3, 1)}


class EngineOps:
    def exp(self, x):
        return x.exp()

    def log1p_sq(self, x):  # log(1 + x²): log on a positive argument
        return (x * x + 1.0).log()

    def relu(self, x):
        return x.relu()

    def sum(self, x, axis):
        return x.sum(axis=axis, keepdims=True)

    def mean(self, x, axis):
        return x.mean(axis=axis, keepdims=True)

    def max(self, x, axis):
        return x.max(axis=axis, keepdims=True)

    def transpose_twice(self, x):
        return x.T.T

    def transpose(self, x):
        return x.T

    def matmul(self, x, y):
        return x @ y

    def softmax(self, x):
        return F.softmax(x, axis=-1)

    def gather(self, x, index):
        return x.gather(1, index)

    def total(self, x):
        return x.sum()


class AutogradOps(EngineOps):
    def exp(self, x):
        return anp.exp(x)

    def log1p_sq(self, x):
        return anp.log(x * x + 1.0)

    def relu(self, x):
        return anp.maximum(x, 0.0)

    def sum(self, x, axis):
        return anp.sum(x, axis=axis, keepdims=True)

    def mean(self, x, axis):
        return anp.mean(x, axis=axis, keepdims=True)

    def max(self, x, axis):
        return anp.max(x, axis=axis, keepdims=True)

    def transpose_twice(self, x):
        return anp.transpose(anp.transpose(x))

    def transpose(self, x):
        return anp.transpose(x)

    def matmul(self, x, y):
        return anp.dot(x, y)

    def softmax(self, x):
        e = anp.exp(x - anp.max(x, axis=-1, keepdims=True))
        return e / anp.sum(e, axis=-1, keepdims=True)

    def gather(self, x, index):
        return x[np.arange(x.shape[0])[:, None], index]

    def total(self, x):
        return anp.sum(x)


def random_program(seed):
    """A list of steps applied to the running value ``h``, starting at ``h = a``."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(rng.integers(3, 8)):
        kind = rng.choice(["unary", "binary", "reduce", "softmax", "gather"])
        if kind == "unary":
            steps.append(("unary", str(rng.choice(["exp_scaled", "log1p_sq", "relu", "transpose_twice"]))))
        elif kind == "binary":
            steps.append(("binary", str(rng.choice(["add_b", "mul_c", "sub_c", "div_b"]))))
        elif kind == "reduce":
            steps.append(("reduce", str(rng.choice(["sum", "mean", "max"])), int(rng.integers(0, 2))))
        else:
            steps.append((str(kind),))
    steps.append(("matmul_w",))
    return steps


def run(program, ops, inputs, index):
    a, b, w, c = inputs
    binary = {
        "add_b": lambda h: h + b,
        "mul_c": lambda h: h * c,
        "sub_c": lambda h: c - h,
        "div_b": lambda h: h / (b * b + 1.0),
    }
    h = a
    for step in program:
        if step[0] == "unary":
            h = ops.exp(h * 0.3) if step[1] == "exp_scaled" else getattr(ops, step[1])(h)
        elif step[0] == "binary":
            h = binary[step[1]](h)
        elif step[0] == "reduce":
            h = getattr(ops, step[1])(h, step[2]) + a  # broadcast back to (3, 4)
        elif step[0] == "softmax":
            h = ops.softmax(h)
        elif step[0] == "gather":  # (3, 4) → (3, 2), then back to (3, 4) through wᵀ
            h = ops.matmul(ops.gather(h, index), ops.transpose(w))
        elif step[0] == "matmul_w":
            h = ops.matmul(h, w)
    return ops.total(h * h)


def make_inputs(seed):
    rng = np.random.default_rng(seed + 1000)
    arrays = [rng.normal(size=SHAPES[k]) for k in ("a", "b", "w", "c")]
    index = rng.integers(0, 4, size=(3, 2))
    return arrays, index


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_agree_with_hips_autograd(seed):
    program = random_program(seed)
    arrays, index = make_inputs(seed)

    tensors = [Tensor(x, requires_grad=True) for x in arrays]
    loss = run(program, EngineOps(), tensors, index)
    loss.backward()

    def f(*xs):
        return run(program, AutogradOps(), xs, index)

    expected_loss = f(*arrays)
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=1e-10)
    for i, t in enumerate(tensors):
        expected = autograd_grad(f, i)(*arrays)
        got = np.zeros_like(t.data) if t.grad is None else t.grad
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10, err_msg=f"{program}, input {i}")


def test_softmax_cross_entropy_agrees_with_hips_autograd():
    rng = np.random.default_rng(0)
    X, W, y = rng.normal(size=(8, 5)), rng.normal(size=(5, 4)), np.array([0, 1, 1, 3, 3, 3, 2, 0])

    def loss_fn(W):
        z = anp.dot(X, W)
        z = z - anp.max(z, axis=1, keepdims=True)
        log_p = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
        return -anp.mean(log_p[np.arange(8), y])

    Wt = Tensor(W, requires_grad=True)
    loss = F.cross_entropy(Tensor(X) @ Wt, y)
    loss.backward()
    np.testing.assert_allclose(loss.item(), loss_fn(W), rtol=1e-12)
    np.testing.assert_allclose(Wt.grad, autograd_grad(loss_fn)(W), rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------- PyTorch, where installed


@pytest.mark.parametrize("layout", ["column", "row"])
def test_classifier_agrees_with_pytorch(layout, torch):
    rng = np.random.default_rng(3)
    D, N, C = 6, 9, 4
    y = rng.integers(0, C, size=N)
    if layout == "column":
        X, W, b = rng.normal(size=(D, N)), rng.normal(size=(C, D)), rng.normal(size=(C, 1))
    else:
        X, W, b = rng.normal(size=(N, D)), rng.normal(size=(D, C)), rng.normal(size=(C,))
    Wt, bt = Tensor(W, requires_grad=True), Tensor(b, requires_grad=True)
    Z = Wt @ Tensor(X) + bt if layout == "column" else Tensor(X) @ Wt + bt
    loss = F.cross_entropy(Z, y, axis=0 if layout == "column" else 1)
    loss.backward()

    Wp = torch.tensor(W, requires_grad=True)
    bp = torch.tensor(b, requires_grad=True)
    Xp = torch.tensor(X)
    Zp = Wp @ Xp + bp if layout == "column" else Xp @ Wp + bp
    logits = Zp.T if layout == "column" else Zp
    lossp = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    lossp.backward()
    np.testing.assert_allclose(loss.item(), lossp.item(), rtol=1e-12)
    np.testing.assert_allclose(Wt.grad, Wp.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(bt.grad, bp.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_reductions_and_gather_agree_with_pytorch(axis, torch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    x[0, 1] = x[0, 2] = x.max() + 1  # a tie: both engines share the gradient equally for max()
    index = rng.integers(0, 4, size=(3, 6))
    t = Tensor(x, requires_grad=True)
    p = torch.tensor(x, requires_grad=True)
    ours = t.sum(axis=axis).sum() * 0.5 + t.mean(axis=axis).sum() + t.gather(1, index).exp().sum()
    dims = () if axis is None else axis
    theirs = (
        (p.sum(dim=dims) if axis is not None else p.sum()).sum() * 0.5
        + (p.mean(dim=dims) if axis is not None else p.mean()).sum()
        + p.gather(1, torch.tensor(index)).exp().sum()
    )
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(t.grad, p.grad.numpy(), rtol=1e-12)
    t.zero_grad()
    p.grad = None
    t.max().backward()
    p.max().backward()  # PyTorch's full max() also splits the gradient among ties
    np.testing.assert_allclose(t.grad, p.grad.numpy())
