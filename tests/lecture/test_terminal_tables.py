"""compare and explain fit a 100-column terminal by default; wide=True keeps the full table."""

import pytest

from tinygrad_softmax.lecture.lessons.compare import compare
from tinygrad_softmax.lecture.training.classifier import build_classifier
from tinygrad_softmax.lecture.views.ledger import explain


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("bug", [None, "missing-one-hot"])
def test_compare_fits_100_columns_and_wide_keeps_max_abs(layout, bug):
    result = compare(layout, "float64", with_dx=True, bug=bug)
    narrow, wide = result.to_text(), result.to_text(wide=True)
    assert _widest(narrow) <= 100 < _widest(wide)
    assert "max|Δ|" in wide and "max|Δ|" not in narrow
    for row in result.rows:  # every verdict is in both
        assert row.verdict in narrow and row.verdict in wide


@pytest.mark.parametrize("layout", ["column", "row"])
def test_explain_fits_100_columns_and_wide_does_not_wrap(layout):
    model = build_classifier(layout)
    reference = (model.Z, model.labels, model.class_axis)
    narrow = explain(model.loss, reference=reference)
    wide = explain(model.loss, reference=reference, wide=True)
    assert _widest(narrow) <= 100 < _widest(wide)
    assert "∂L/∂A = ∂L/∂Z · Bᵀ, ∂L/∂B = Aᵀ · ∂L/∂Z" in wide.replace("\n", "") or "matmul" in wide
    assert len(narrow.splitlines()) > len(wide.splitlines())
