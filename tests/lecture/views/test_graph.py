"""lecture/views/graph.py: how every viewer reads a recorded graph (order, labels, the adjoint of
broadcasting)."""

from __future__ import annotations

import pytest

from tinygrad_softmax.lecture import build_classifier
from tinygrad_softmax.lecture.views.graph import broadcast_note, summed_axes


@pytest.mark.parametrize(
    ("parent", "out", "axes"),
    [
        ((3, 1), (3, 5), (1,)),  # b in the column layout: summed over the samples
        ((3,), (5, 3), (0,)),  # b in the row layout: a new leading axis
        ((1, 5), (3, 5), (0,)),  # the log-sum-exp, broadcast over the classes
        ((), (3, 5), (0, 1)),  # a scalar, broadcast everywhere
        ((1, 1), (1, 4), (1,)),  # an axis of length 1 that stays 1 is not summed
        ((3, 5), (3, 5), ()),
    ],
)
def test_summed_axes_are_the_axes_broadcasting_added_or_stretched(parent, out, axes):
    assert summed_axes(parent, out) == axes


@pytest.mark.parametrize(("layout", "axis"), [("column", 1), ("row", 0)])
def test_the_broadcast_note_names_the_bias_axis_and_nothing_else(layout, axis):
    model = build_classifier(layout)
    add = model.Z  # Z = W X + b
    product, bias = add.parents
    assert broadcast_note(add, bias) == f"summed over axis {axis}: the adjoint of broadcasting"
    assert broadcast_note(add, product) is None  # same shape as Z: nothing summed
    assert broadcast_note(product, model.W) is None  # matmul does not broadcast
