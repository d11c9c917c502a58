"""gradcheck: central differences, the scale-free error, and the check that names a wrong rule."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax.gradcheck import GradcheckError, gradcheck, numerical_gradient, rel_error


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
