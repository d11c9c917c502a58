"""gradcheck: central differences, the scale-free error, and the check that names a wrong rule."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax.gradcheck import (
    GradcheckError,
    gradcheck,
    gradgradcheck,
    mismatch,
    numerical_gradient,
    rel_error,
)


def test_rel_error():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0], [-1.0]) == 1.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error([1.0, 100.0], [1.1, 100.0]) == pytest.approx(0.1 / 200)


def test_numerical_gradient_restores_its_input():
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])


def test_numerical_gradient_rejects_integers():
    with pytest.raises(TypeError, match="numerical_gradient"):
        numerical_gradient(np.sum, np.arange(3))


def test_gradcheck_catches_a_wrong_rule_and_names_the_input(rng):
    class WrongExp(ops.Exp):
        def backward(self, grad, x, out):
            return (grad * out * 1.01,)

    x = Tensor(rng.normal(size=3), requires_grad=True, name="x")
    with pytest.raises(GradcheckError, match=r"gradient of x \(shape \(3,\)\) is wrong at index"):
        gradcheck(lambda t: Tensor._apply(WrongExp(), t), x)
    assert x.grad is None  # gradcheck leaves .grad as it was


# ---------------------------------------------------------------- NaN and infinity never pass


class NaNExp(ops.Exp):
    """A broken rule: right, times NaN."""

    def backward(self, grad, x, out):
        return (grad * out * np.nan,)


def test_a_nan_gradient_fails_gradcheck(rng):
    x = Tensor(rng.normal(size=3), requires_grad=True, name="x")
    with pytest.raises(GradcheckError, match=r"gradient of x .* at index \(0,\): autograd nan, numerical"):
        gradcheck(lambda t: Tensor._apply(NaNExp(), t), x)


def test_a_nan_second_derivative_fails_gradgradcheck(rng):
    x = Tensor(rng.normal(size=3), requires_grad=True, name="x")
    with pytest.raises(
        GradcheckError, match=r"gradgradcheck: second derivative \(H v\) of x .* autograd nan"
    ):
        gradgradcheck(lambda t: Tensor._apply(NaNExp(), t) * t, x)


@pytest.mark.parametrize(
    ("actual", "expected", "worst"),
    [
        ([0.0, 2.0, 4.0], [0.0, 2.0, 4.0], None),
        ([np.nan, 2.0, 4.0], [0.0, 2.0, 4.0], (0,)),  # x**0's old rule at 0 against the truth
        ([0.0, 2.5, np.nan], [0.0, 2.0, 4.0], (2,)),  # a NaN is worse than any number
        ([0.0, np.inf, 4.0], [0.0, 2.0, 4.0], (1,)),
        ([0.0, np.inf, 4.0], [0.0, np.inf, 4.0], None),  # equal infinities agree
        ([0.0, np.nan, 4.0], [0.0, np.nan, 4.0], (1,)),  # NaN is no value, so never an agreement
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.1], (2,)),
    ],
)
def test_mismatch_is_not_blind_to_nan(actual, expected, worst):
    assert mismatch(np.array(actual), np.array(expected), atol=1e-5, rtol=1e-3) == worst


@pytest.mark.parametrize("eps", [0, 0.0, -1e-6, np.nan, np.inf])
def test_a_step_that_is_not_positive_and_finite_is_refused(eps):
    x = Tensor(np.ones(2), requires_grad=True)
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(ValueError, match=rf"^{check.__name__}: eps, the step of the central"):
            check(lambda t: t * t, x, eps=eps)
    with pytest.raises(ValueError, match=r"^numerical_gradient: eps, the step of the central"):
        numerical_gradient(np.sum, np.ones(2), eps=eps)


@pytest.mark.parametrize(("name", "value"), [("atol", -1.0), ("rtol", np.nan), ("atol", np.inf)])
def test_a_tolerance_that_is_not_finite_and_non_negative_is_refused(name, value):
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=rf"^gradcheck: {name} must be a finite number ≥ 0"):
        gradcheck(lambda t: t * t, x, **{name: value})
