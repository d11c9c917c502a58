"""Every op that takes an axis: negative axes, axis tuples, repeated axes, empty axes.

Each gradient is checked against central differences in float64; a repeated
axis is refused with a message naming the op.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import gradcheck


def leaf(*shape: int, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True, name="x")


# ---------------------------------------------------------------- transpose (item 1)


def test_transpose_with_a_negative_axis_on_a_square_matrix_gives_the_transposed_gradient():
    x = Tensor(np.zeros((2, 2)), requires_grad=True)
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    (x.transpose(-1, 0) * W).sum().backward()
    np.testing.assert_array_equal(x.grad, W.T)


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 3, 4)])
@pytest.mark.parametrize("axes", [(0, -1, 1), (-1, -2, -3), (-3, 2, -2), (2, 0, 1)])
def test_transpose_with_negative_axes_matches_the_non_negative_spelling(shape, axes):
    x = leaf(*shape)
    weights = np.random.default_rng(1).standard_normal(np.transpose(np.zeros(shape), axes).shape)
    (x.transpose(*axes) * weights).sum().backward()
    np.testing.assert_array_equal(x.grad, np.transpose(weights, np.argsort([a % 3 for a in axes])))
    assert gradcheck(lambda t: t.transpose(*axes), leaf(*shape))


@pytest.mark.parametrize("axes", [(0, 0), (1, -1), (0, 1, 1)])
def test_transpose_refuses_repeated_axes_clearly(axes):
    with pytest.raises(ValueError, match=r"transpose: axes .* (repeat an axis|are not a permutation)"):
        leaf(2, 3).transpose(*axes)


@pytest.mark.parametrize("axes", [(0, 2), (0,), (0, 1.5)])
def test_transpose_refuses_axes_that_are_not_a_permutation(axes):
    with pytest.raises(ValueError, match=r"transpose: axes .* are not a permutation of the axes of shape"):
        leaf(2, 3).transpose(*axes)


# ---------------------------------------------------------------- reductions

REDUCTIONS: dict[str, Callable[..., Tensor]] = {
    "sum": lambda t, **kw: t.sum(**kw),
    "mean": lambda t, **kw: t.mean(**kw),
    "max": lambda t, **kw: t.max(**kw),
}
AXES = [-1, -2, -3, (0, -1), (-1, -3), (-2, 0), (0, 1, 2), (-1, 1, 0), None]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_every_reduction_with_negative_axes_and_tuples(name, axis, keepdims):
    assert gradcheck(lambda t: REDUCTIONS[name](t, axis=axis, keepdims=keepdims), leaf(2, 3, 4))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [(0, 0), (1, -2), (-1, 2, 0)], ids=str)
def test_every_reduction_refuses_a_repeated_axis(name, axis):
    with pytest.raises(ValueError, match=rf"{name}: axis .* repeats an axis"):
        REDUCTIONS[name](leaf(2, 3, 4), axis=axis)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [1.0, "0", (0, 1.0), True])
def test_every_reduction_refuses_an_axis_that_is_not_an_integer(name, axis):
    with pytest.raises(TypeError, match=rf"{name}: axis must be an integer or a tuple of integers, got"):
        REDUCTIONS[name](leaf(2, 3), axis=axis)


@pytest.mark.parametrize("axis", [-1, -2, 0, 1])
def test_gather_with_a_negative_axis(axis):
    index = np.random.default_rng(2).integers(0, 3, size=(3, 3))
    assert gradcheck(lambda t: t.gather(axis, index), leaf(3, 3))


@pytest.mark.parametrize("axis", [-1, -2, 0, 1])
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_along_any_axis(fn, axis):
    assert gradcheck(lambda t: fn(t, axis=axis), leaf(3, 4))


@pytest.mark.parametrize("axis", [-1, -2, 0, 1])
@pytest.mark.parametrize(
    "loss", [F.cross_entropy, F.softmax_cross_entropy], ids=["cross_entropy", "softmax_cross_entropy"]
)
def test_cross_entropy_along_any_class_axis(loss, axis):
    labels = np.array([0, 2, 1]) if axis % 2 == 1 else np.array([1, 0, 2])  # 3 samples, 3 classes
    assert gradcheck(lambda t: loss(t, labels, axis=axis), leaf(3, 3))


# ---------------------------------------------------------------- empty batches (item 8)


@pytest.mark.parametrize(
    "fn,expected_shape",
    [
        (lambda t: F.softmax(t, axis=1), (0, 3)),
        (lambda t: F.log_softmax(t, axis=1), (0, 3)),
        (lambda t: t.max(axis=1), (0,)),
        (lambda t: t.mean(axis=1), (0,)),
        (lambda t: t.sum(axis=1), (0,)),
        (lambda t: t.sum(), ()),
        (lambda t: t.sum(axis=0), (3,)),
    ],
    ids=["softmax", "log_softmax", "max", "mean", "sum", "sum_all", "sum_over_the_empty_axis"],
)
def test_an_empty_batch_reduces_like_numpy(fn, expected_shape):
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = fn(x)
    assert out.shape == expected_shape
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 3)


@pytest.mark.parametrize(
    "fn,message",
    [
        (
            lambda t: t.max(axis=0),
            r"max: cannot take the max over axis 0 of shape \(0, 3\): it has no entries",
        ),
        (lambda t: t.max(), r"max: cannot take the max over axis None of shape \(0, 3\): it has no entries"),
        (lambda t: t.mean(axis=0), r"mean: cannot average over axis 0 of shape \(0, 3\): it has no entries"),
        (lambda t: F.softmax(t.T, axis=1), r"softmax: axis 1 of shape \(3, 0\) has no classes"),
    ],
    ids=["max_over_the_empty_axis", "max_of_everything", "mean_over_the_empty_axis", "softmax_of_no_classes"],
)
def test_a_reduction_over_an_empty_axis_without_an_identity_is_refused_in_the_ops_words(fn, message):
    with pytest.raises(ValueError, match=message):
        fn(Tensor(np.zeros((0, 3)), requires_grad=True))
