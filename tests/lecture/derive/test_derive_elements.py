"""The element view: the engine's rules on arrays of SymPy expressions; SymPy's own diff is the witness."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from tinygrad_softmax.lecture.derive import elements  # noqa: E402


def test_three_classes_one_sample_label_1():
    view = elements.element_view(3, 1)
    assert elements.text(view.grad[0, 0]) == "e^{z₁}/(e^{z₁} + e^{z₂} + e^{z₃}) − 1"
    assert elements.text(view.grad[1, 0]) == "e^{z₂}/(e^{z₁} + e^{z₂} + e^{z₃})"
    assert view.witness_agrees and view.error <= elements.TOLERANCE


@pytest.mark.parametrize(("C", "N", "labels"), [(3, 1, [2]), (2, 2, [0, 1]), (3, 2, [1, 1]), (4, 1, [3])])
def test_sympys_own_diff_is_the_independent_witness(C, N, labels):
    view = elements.element_view(C, N, np.array(labels))
    z = view.logits
    # The loss written directly in SymPy, with no engine and no rule in between
    loss = (
        -sum(sp.log(sp.exp(z[labels[n], n]) / sum(sp.exp(z[c, n]) for c in range(C))) for n in range(N)) / N
    )
    for c in range(C):
        for n in range(N):
            assert sp.simplify(sp.diff(loss, z[c, n]) - view.grad[c, n]) == 0
    assert view.error <= elements.TOLERANCE


def test_each_chain_rule_step_is_a_formula():
    view = elements.element_view(3, 1)
    ops_run = [step.op for step in view.steps]
    assert ops_run == ["neg", "mean", "gather", "sub", "sub", "log", "sum", "exp"]
    exp_step = view.steps[-1]
    assert elements.text(exp_step.grad[0, 0]) == "e^{z₁}/(e^{z₁} + e^{z₂} + e^{z₃})"


def test_the_hessian_of_the_logits_is_diag_p_minus_p_p_transposed():
    view = elements.element_view(3, 1)
    text = elements.to_text(view)
    assert "H₁₁ = p₁ − p₁²" in text and "H₁₂ = −p₁·p₂" in text
    z = view.logits[:, 0]
    p = [sp.exp(z[i]) / sum(sp.exp(zj) for zj in z) for i in range(3)]
    for i in range(3):
        for j in range(3):
            expected = (p[i] if i == j else 0) - p[i] * p[j]
            assert sp.simplify(view.hessian[i, j] - expected) == 0


def test_the_element_latex_parses_with_mathtext():
    pytest.importorskip("matplotlib")
    from tinygrad_softmax.lecture.derive.slide import check_mathtext

    for line in elements.latex_lines(elements.element_view(2, 2, np.array([0, 1]))):
        check_mathtext(line)


def test_sizes_too_large_for_a_slide_are_refused():
    with pytest.raises(ValueError, match="C·N ≤ 12"):
        elements.element_view(5, 3)
    with pytest.raises(ValueError, match="labels"):
        elements.element_view(3, 1, np.array([3]))
