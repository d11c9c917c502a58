"""The picture of broadcasting's adjoint: ∂L/∂b is ∂L/∂Z summed over the samples, beside the mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax.lecture.lessons.broadcast import bias_adjoint, plot_bias_adjoint
from tinygrad_softmax.lecture.training.classifier import build_classifier
from tinygrad_softmax.lecture.views import viz


def test_the_right_sum_is_the_engines_bias_gradient_and_the_mistakes_are_not():
    model = build_classifier()
    found = bias_adjoint(model.Z.grad)
    np.testing.assert_allclose(found.right, model.b.grad, atol=1e-15)
    assert found.wrong_axis.shape == (1, 5)  # one number per sample: not b's shape
    np.testing.assert_allclose(found.wrong_axis, 0, atol=1e-15)  # each column of P − Y sums to 0
    np.testing.assert_allclose(found.mean * 5, model.b.grad, atol=1e-15)  # N times too small
    assert not np.allclose(found.mean, model.b.grad)


def test_the_alt_text_says_what_the_picture_shows_with_its_numbers():
    model = build_classifier()
    alt = bias_adjoint(model.Z.grad).alt
    for v in model.b.grad.ravel():
        assert f"{v:.3f}" in alt
    assert "dashed" in alt and "5 times too small" in alt and "1×5" in alt


def test_the_picture_is_a_slide(tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_bias_adjoint(build_classifier().Z.grad, tmp_path / "bias.png")
    assert viz.png_size(path) == (1920, 1080)


def test_a_gradient_that_is_not_a_matrix_is_refused():
    with pytest.raises(ValueError, match=r"bias_adjoint: .*C×N matrix, got shape \(3,\)"):
        bias_adjoint(np.zeros(3))
