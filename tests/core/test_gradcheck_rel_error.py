"""rel_error computes quietly: no NumPy warning at infinities, NaN or the largest floats."""

import warnings

import numpy as np
import pytest

from tinygrad_softmax.gradcheck import rel_error

BIG = np.finfo(np.float64).max


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([np.inf, 1.0], [np.inf, 1.5], 0.5 / 2.5),  # equal infinities: no error, no scale, no inf − inf
        ([-np.inf, 2.0], [-np.inf, 2.0], 0.0),
        ([np.inf, np.nan], [np.inf, 0.0], 1.0),
        ([BIG], [-BIG], 1.0),  # a − b and |a| + |b| would overflow
        ([BIG, 1.0], [BIG / 2, 1.0], 0.5 / 1.5),
        ([5e-324], [0.0], 5e-324 / 1e-300),  # below the floor TINY the scale is TINY
    ],
)
def test_rel_error_gives_its_documented_value_without_a_warning(a, b, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        assert rel_error(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-320)
