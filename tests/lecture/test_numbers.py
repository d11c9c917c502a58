"""Negative zero is printed as 0 in every table, label and ledger."""

import numpy as np

from tinygrad_softmax import Tensor
from tinygrad_softmax.lecture.numbers import array_text, number


def test_number_drops_the_minus_of_a_printed_zero_only():
    assert number(-0.0, ".3f") == "0.000"
    assert number(-1e-9, ".3f") == "0.000"
    assert number(-1e-9, ".2e") == "-1.00e-09"  # not zero at this precision: the sign stays
    assert number(-0.0, ".4g") == "0"
    assert number(-0.25, ".3f") == "-0.250"


def test_array_text_keeps_columns_aligned_and_real_negatives():
    a = np.array([[-0.0, -1e-5, 0.5], [-0.001, 2.0, -3.0]])
    text = array_text(a, precision=3, floatmode="fixed", suppress_small=True)
    assert text == "[[ 0.000  0.000  0.500]\n [-0.001  2.000 -3.000]]"
    assert array_text(np.array([-0.0, -1e-5])) == "[ 0.e+00 -1.e-05]"


def test_relu_gradients_print_without_a_minus_in_the_ledger():
    from tinygrad_softmax.lecture.views.ledger import _side_by_side

    x = Tensor(np.array([-1.0, 2.0, -3.0]), requires_grad=True, name="x")
    y = (x.relu() * -1.0).sum()
    y.backward()
    assert x.grad is not None and np.signbit(x.grad).any()  # the engine does produce −0.0 here
    assert "-0.0" not in "".join(_side_by_side(x.grad, x.grad, ("a", "b")))
