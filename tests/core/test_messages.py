"""Error messages point at the op the student called, with the values involved."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F
from tinygrad_softmax.gradcheck import GradcheckError, gradcheck, numerical_gradient, rel_error


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_takes_an_ndarray(fn):
    z = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(fn(z).data, fn(Tensor(z)).data)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.softmax_cross_entropy], ids=["cross_entropy", "fused"])
def test_cross_entropy_takes_an_ndarray(loss):
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    assert loss(z, [2, 0]).item() == pytest.approx(F.cross_entropy(Tensor(z), [2, 0]).item())


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [1.5, "1", None])
def test_softmax_refuses_an_axis_that_is_not_an_integer(name, axis):
    with pytest.raises(TypeError, match=rf"{name}: axis must be an integer \(the class axis\), got"):
        getattr(F, name)(Tensor(np.ones((2, 3))), axis=axis)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_with_an_axis_out_of_range_names_softmax(name):
    with pytest.raises(ValueError, match=rf"^{name}: axis 5 is out of range for a tensor of shape \(2, 3\)"):
        getattr(F, name)(Tensor(np.ones((2, 3))), axis=5)


def test_cross_entropy_refuses_a_float_axis():
    with pytest.raises(TypeError, match="cross_entropy: axis must be an integer"):
        F.cross_entropy(Tensor(np.ones((2, 3))), [0, 1], axis=1.0)


def test_sum_with_a_float_axis_names_sum():
    with pytest.raises(TypeError, match=r"sum: axis must be an integer or a tuple of integers, got 1\.0"):
        Tensor(np.ones((2, 3))).sum(axis=1.0)


@pytest.mark.parametrize("expression", [lambda t: t + 10**400, lambda t: 10**400 * t, lambda t: t / 10**400])
def test_a_number_too_large_for_the_dtype_names_the_op(expression):
    with pytest.raises(
        OverflowError, match=r"^(add|mul|div): the number 1\.00e\+400 is too large for a float64 tensor"
    ):
        expression(Tensor([1.0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.frombuffer(np.arange(3.0).tobytes()),  # read-only
        lambda: np.broadcast_to(np.arange(3.0), (2, 3)),  # a read-only view without a flat layout
        lambda: np.arange(12.0).reshape(3, 4)[:, ::2],  # strided
    ],
    ids=["read_only", "broadcast_view", "strided"],
)
def test_gradcheck_accepts_tensors_made_from_any_array(make):
    t = Tensor(make(), requires_grad=True)
    assert gradcheck(lambda x: (x * x).sum(), t)


def test_numerical_gradient_on_a_read_only_array_says_what_to_pass():
    x = np.arange(3.0)
    x.setflags(write=False)
    with pytest.raises(
        ValueError, match=r"numerical_gradient: x is read-only .* pass a writable copy, x\.copy\(\)"
    ):
        numerical_gradient(lambda v: float(v.sum()), x)


def test_gradcheck_with_an_f_that_returns_an_ndarray():
    with pytest.raises(TypeError, match=r"gradcheck: f must return a Tensor .*, got ndarray"):
        gradcheck(lambda x: x.data * 2, Tensor([1.0], requires_grad=True))


def test_gradcheck_on_float32_advises_float64():
    x = Tensor(np.linspace(1, 3, 5, dtype=np.float32), requires_grad=True, name="x")
    with pytest.raises(
        GradcheckError, match="the input is float32, too coarse for central differences: check in float64"
    ):
        gradcheck(lambda t: (t * t * t).exp().sum(), x)


def test_numerical_gradient_refuses_float16():
    with pytest.raises(
        TypeError, match=r"numerical_gradient: x is float16, too coarse .* x\.astype\(np\.float64\)"
    ):
        numerical_gradient(lambda v: float((v * v).sum()), np.ones(3, dtype=np.float16))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([np.inf, 1.0], [np.inf, 1.0], 0.0),
        ([-np.inf], [-np.inf], 0.0),
        ([np.inf], [1.0], 1.0),
        ([np.inf], [-np.inf], 1.0),
        ([np.nan], [1.0], 1.0),
        ([np.nan], [np.nan], 1.0),
        ([np.inf, 1.0], [np.inf, 1.5], 0.5 / 2.5),
    ],
)
def test_rel_error_is_between_0_and_1_for_infinities_and_nan(a, b, expected):
    assert rel_error(a, b) == pytest.approx(expected)


def test_rel_error_refuses_arrays_of_different_shapes():
    with pytest.raises(ValueError, match=r"rel_error: shapes \(3,\) and \(1,\) differ"):
        rel_error(np.ones(3), np.ones(1))
