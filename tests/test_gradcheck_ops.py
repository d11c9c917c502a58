"""Every op's backward rule against central differences, in float64.

Broadcasting in both directions, axis None / int / negative / tuple, keepdims.
"""

import numpy as np
import pytest

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import GradcheckError, gradcheck


def leaf(rng, *shape, name=None, positive=False):
    data = rng.uniform(0.5, 2.0, size=shape) if positive else rng.normal(size=shape)
    return Tensor(data, requires_grad=True, name=name)


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),  # b broadcast over rows
    ((4,), (3, 4)),  # a broadcast over rows
    ((3, 1), (1, 4)),  # both broadcast
    ((2, 3, 4), (3, 1)),  # rank differs and a size-1 axis
    ((), (2, 3)),  # scalar tensor
    ((2, 3), ()),
]


@pytest.mark.parametrize("a_shape,b_shape", BROADCAST_PAIRS)
@pytest.mark.parametrize(
    "fn",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b],
    ids=["add", "sub", "mul", "div"],
)
def test_binary_ops_with_broadcasting(rng, a_shape, b_shape, fn):
    a = leaf(rng, *a_shape, name="a")
    b = leaf(rng, *b_shape, name="b", positive=True)  # keep div away from 0
    assert gradcheck(fn, a, b)


@pytest.mark.parametrize(
    "fn,positive",
    [
        (lambda x: -x, False),
        (lambda x: x**3, False),
        (lambda x: x**-1.5, True),
        (lambda x: x**0.5, True),
        (lambda x: x.exp(), False),
        (lambda x: x.log(), True),
        (lambda x: x.relu(), False),
        (lambda x: x.T, False),
        (lambda x: x.transpose(1, 0, 2), False),
        (lambda x: x.reshape(6, 4), False),
        (lambda x: x.reshape(-1), False),
        (lambda x: 1 - x, False),
        (lambda x: 2.0 / x, True),
        (lambda x: np.ones(4) * x + 3, False),
    ],
    ids=[
        "neg",
        "pow3",
        "pow-1.5",
        "sqrt",
        "exp",
        "log",
        "relu",
        "T",
        "transpose",
        "reshape",
        "flatten",
        "rsub",
        "rdiv",
        "ndarray-mix",
    ],
)
def test_unary_ops(rng, fn, positive):
    x = leaf(rng, 2, 3, 4, name="x", positive=positive)
    if not positive:  # relu's kink: stay away from 0 so differences are exact
        x.data[np.abs(x.data) < 1e-3] = 0.5
    assert gradcheck(fn, x)


AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reductions(rng, op, axis, keepdims):
    x = leaf(rng, 2, 3, 4, name="x")
    assert gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((3, 4), (4, 5)), ((1, 4), (4, 1)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 2))],
)
def test_matmul(rng, a_shape, b_shape):
    a, b = leaf(rng, *a_shape, name="A"), leaf(rng, *b_shape, name="B")
    assert gradcheck(lambda p, q: p @ q, a, b)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_with_repeats(rng, axis):
    x = leaf(rng, 4, 5, name="x")
    index_shape = list(x.shape)
    index_shape[axis] = 7  # more picks than entries: repeats are certain
    index = rng.integers(0, x.shape[axis], size=index_shape)
    assert gradcheck(lambda t: t.gather(axis, index), x)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_functional_softmax_family(rng, axis):
    x = leaf(rng, 4, 3, name="z")
    assert gradcheck(lambda t: F.softmax(t, axis=axis), x)
    assert gradcheck(lambda t: F.log_softmax(t, axis=axis), x)
    labels = rng.integers(0, x.shape[axis], size=x.shape[1 - axis % 2])
    assert gradcheck(lambda t: F.cross_entropy(t, labels, axis=axis), x)


def test_a_composite_expression(rng):
    a, b, c = leaf(rng, 3, 4, name="a"), leaf(rng, 4, name="b"), leaf(rng, 4, 2, name="c", positive=True)
    assert gradcheck(lambda p, q, r: (((p * q).exp() + 1).log() @ r**0.5).max(axis=0).sum(), a, b, c)


def test_gradcheck_catches_a_wrong_rule_and_names_the_input(rng):
    from tinygrad_softmax import ops

    class WrongExp(ops.Exp):
        def backward(self, grad, x, out):
            return (grad * out * 1.01,)

    x = leaf(rng, 3, name="x")
    with pytest.raises(GradcheckError, match=r"gradient of x \(shape \(3,\)\) is wrong at index"):
        gradcheck(lambda t: Tensor._apply(WrongExp(), t), x)
    assert x.grad is None  # gradcheck leaves .grad as it was
