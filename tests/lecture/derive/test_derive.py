"""The engine derives the gradient as a formula: its own backward rules on symbolic values, then identities.

Not a lookup: the same loss written five other ways reaches the same formula, and
three losses whose gradient is not p − y get their own correct formulas. Every
formula is evaluated with NumPy and compared with the engine's gradient.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from tinygrad_softmax import ops
from tinygrad_softmax.lecture.derive import LOSSES, DerivationError, Problem, derive, derive_model
from tinygrad_softmax.lecture.derive.derivation import TOLERANCE
from tinygrad_softmax.lecture.derive.expr import Expr, evaluate, num, onehot, var
from tinygrad_softmax.lecture.derive.render import Sizes, latex, unicode
from tinygrad_softmax.lecture.derive.report import to_latex, to_text
from tinygrad_softmax.lecture.derive.simplify import IDENTITIES, Simplifier
from tinygrad_softmax.tensor import Tensor

P_MINUS_Y = "(softmax(Z) − onehot(y))/N"
SIZES = Sizes({5: "N", 3: "C", 4: "D"})


def text(d, name, view="expanded"):
    return unicode(d.formula(name, view).expr, d.sizes)


# ---------------------------------------------------------------- the classifier, both layouts


@pytest.mark.parametrize("layout", ["column", "row"])
def test_the_three_formulas_of_the_linear_softmax_classifier(layout):
    d = derive_model(Problem(layout=layout))
    assert text(d, "Z") == P_MINUS_Y
    if layout == "column":
        assert text(d, "W", "chain") == "∂L/∂Z · Xᵀ"
        assert text(d, "W") == "(1/N) (softmax(Z) − onehot(y)) · Xᵀ"
        assert d.index_line(d.formula("W")) == "∂L/∂W_cd = (1/N) Σₙ (p_cn − y_cn) x_dn"
    else:
        assert text(d, "W", "chain") == "Xᵀ · ∂L/∂Z"
        assert text(d, "W") == "(1/N) Xᵀ · (softmax(Z) − onehot(y))"
        assert d.index_line(d.formula("W")) == "∂L/∂W_dc = (1/N) Σₙ x_nd (p_nc − y_nc)"
    assert text(d, "b", "chain") == "Σₙ ∂L/∂Z"
    assert text(d, "b") == "(1/N) Σₙ (softmax(Z) − onehot(y))"
    assert d.simplified and d.worst_error <= TOLERANCE


@pytest.mark.parametrize("layout", ["column", "row"])
def test_the_two_layer_net(layout):
    d = derive_model(Problem(layout=layout, model="mlp"))
    assert text(d, "Z2") == "(softmax(Z₂) − onehot(y))/N"
    assert text(d, "Z1", "chain") == "1[Z₁ > 0] ⊙ ∂L/∂H"
    if layout == "column":
        assert text(d, "H", "chain") == "W₂ᵀ · ∂L/∂Z₂"
        assert text(d, "W1", "chain") == "∂L/∂Z₁ · Xᵀ"
    else:
        assert text(d, "H", "chain") == "∂L/∂Z₂ · W₂ᵀ"
        assert text(d, "W1", "chain") == "Xᵀ · ∂L/∂Z₁"
    assert text(d, "b1", "chain") == "Σₙ ∂L/∂Z₁"
    assert d.simplified and d.worst_error <= TOLERANCE


# ---------------------------------------------------------------- not a lookup


SAME_LOSS = ["cross-entropy", "logsumexp", "no-shift", "sum-over-n", "one-hot-product"]


@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("loss", SAME_LOSS)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_same_loss_written_other_ways_reaches_the_same_formula(loss, layout, seed):
    d = derive_model(Problem(layout=layout, seed=seed), loss)
    reference = derive_model(Problem(layout=layout, seed=seed))
    for name in ("Z", "W", "b"):
        assert text(d, name) == text(reference, name)
    assert text(d, "Z") == P_MINUS_Y
    assert d.worst_error <= TOLERANCE


@pytest.mark.parametrize("layout", ["column", "row"])
def test_losses_whose_gradient_is_not_p_minus_y(layout):
    smoothing = derive_model(Problem(layout=layout), "label-smoothing")
    assert text(smoothing, "Z") == "(softmax(Z) − q)/N"
    weighted = derive_model(Problem(layout=layout), "class-weighted")
    assert text(weighted, "Z") == "w ⊙ (softmax(Z) − onehot(y))/K"
    squared = derive_model(Problem(layout=layout), "squared-error")
    assert text(squared, "Z") == (
        "2·softmax(Z) ⊙ (softmax(Z) − onehot(y) + Σ_c (softmax(Z) ⊙ (onehot(y) − softmax(Z))))/N"
    )
    for d in (smoothing, weighted, squared):
        assert d.simplified and d.worst_error <= TOLERANCE


def test_the_squared_error_formula_is_the_softmax_jacobian_applied_to_2_p_minus_y():
    # An independent check in NumPy: dZ = J_softmaxᵀ g per sample, g = 2(p − y)/N
    d = derive_model(Problem(), "squared-error")
    formula = np.broadcast_to(evaluate(d.formula("Z").expr), (3, 5))
    rng = np.random.default_rng(0)
    rng.integers(0, 3, size=5)  # the labels, drawn first by derive_model
    leaves = {n.attrs[0]: n.value for n in _leaves(d.formula("Z").expr)}
    Z = leaves["Z"]
    y = leaves["y"].astype(int)
    P = np.exp(Z - Z.max(0)) / np.exp(Z - Z.max(0)).sum(0)
    Y = np.eye(3)[:, y]
    g = 2 * (P - Y) / 5
    expected = np.stack([(np.diag(P[:, n]) - np.outer(P[:, n], P[:, n])) @ g[:, n] for n in range(5)], axis=1)
    np.testing.assert_allclose(formula, expected, rtol=0, atol=1e-15)


def _leaves(e):
    from tinygrad_softmax.lecture.derive.expr import walk

    return [n for n in walk(e) if n.kind == "var"]


def test_every_loss_variant_is_derived_and_checked():
    for name in LOSSES:
        d = derive_model(Problem(), name)
        assert d.worst_error <= TOLERANCE, name


# ---------------------------------------------------------------- honesty


def test_what_cannot_be_simplified_is_shown_as_computed_and_said_so():
    # A max that is not detached: its rule's winners (1[Z = max Z]) stay in the formula.
    rng = np.random.default_rng(0)
    Z = Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="Z")
    loss = (Z - Z.max(axis=0, keepdims=True)).exp().sum().log()
    d = derive(loss, [Z], 0, Sizes({4: "N", 3: "C"}))
    f = d.formula("Z")
    assert not f.simplified and not d.simplified
    assert "exp" in unicode(f.expr) or "max" in unicode(f.expr)
    assert "not simplified further" in to_text(d)
    assert f.error <= TOLERANCE


def test_a_formula_that_disagrees_with_the_engine_is_never_printed(monkeypatch):
    # Break one identity on purpose: Σ onehot = 2. The check must refuse the result.
    from tinygrad_softmax.lecture.derive import simplify

    original = simplify.Simplifier._known_sum

    def wrong(self, factors, axes):
        found = original(self, factors, axes)
        if found is not None and factors[0][0].kind == "onehot":
            return {(): (Fraction(2), ())}
        return found

    monkeypatch.setattr(simplify.Simplifier, "_known_sum", wrong)
    with pytest.raises(DerivationError, match="differs from the engine's gradient"):
        derive_model(Problem())


def test_the_rules_that_run_are_those_of_ops(monkeypatch):
    # A rule changed in ops.py changes the derived formula (and the engine's gradient with it):
    # the formula is not written in anywhere else.
    monkeypatch.setattr(ops.Exp, "backward", lambda self, grad, x, out: (grad * out * 2,))
    d = derive_model(Problem())
    assert text(d, "Z") == "(2·softmax(Z) − onehot(y))/N"


def test_sizes_that_coincide_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="sizes must differ"):
        derive_model(Problem(samples=3, classes=3))


def test_a_derivation_changes_nothing_in_the_graph():
    rng = np.random.default_rng(0)
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="W")
    X = Tensor(rng.normal(size=(4, 5)), name="X")
    Z = W @ X
    Z.name = "Z"
    from tinygrad_softmax import functional as F

    loss = F.cross_entropy(Z, np.array([0, 1, 2, 0, 1]), axis=0)
    derive(loss, [Z, W], 0, SIZES)
    assert W.grad is None and Z.grad is None


# ---------------------------------------------------------------- the identities, one at a time


def _check(before: Expr, expected: str, identity: str, shape):
    s = Simplifier()
    after = s.simplify(before)
    assert unicode(after, SIZES) == expected
    assert identity in s.used
    np.testing.assert_allclose(
        np.broadcast_to(evaluate(after), shape), np.broadcast_to(evaluate(before), shape), rtol=0, atol=1e-14
    )


RNG = np.random.default_rng(7)
A = var("a", RNG.normal(size=(3, 5)), constant=False)
M = var("m", RNG.normal(size=(1, 5)))
LABELS = var("y", np.array([0, 2, 1, 1, 0]))
HOT = onehot(LABELS, 0, (3, 5))


def test_identity_softmax():
    e = (A - M).exp()
    _check(e / e.sum(axis=0, keepdims=True), "softmax(a)", "softmax", (3, 5))


def test_identity_softmax_needs_m_constant_along_the_summed_axis():
    m = var("m", RNG.normal(size=(3, 1)))  # constant along axis 1, not along the summed axis 0
    e = (A - m).exp()
    s = Simplifier()
    out = s.simplify(e / e.sum(axis=0, keepdims=True))
    assert "softmax(a − m)" in unicode(out)


def test_identity_scatter_add_at_the_labels():
    picks = ops.Gather(0, np.array([[0, 2, 1, 1, 0]]))
    v = var("v", RNG.normal(size=(1, 5)))
    scatter = Expr._apply(ops.ScatterAdd(picks, (3, 5)), v)
    _check(scatter, "onehot(y) ⊙ v", "scatter-add at the labels", (3, 5))


def test_identity_one_hot_sums_to_1():
    _check(HOT.sum(axis=0, keepdims=True) * A, "a", "one-hot sums to 1", (3, 5))


def test_identity_like_terms():
    _check(A / 5 + HOT / 5, "(a + onehot(y))/N", "like terms", (3, 5))
    _check(A - A + HOT, "onehot(y)", "like terms", (3, 5))


def test_identity_sum_over_a_broadcast_axis():
    expanded = Expr._apply(ops.Expand((3, 5)), M)
    _check(expanded.sum(axis=0, keepdims=True), "3·m", "sum over a broadcast axis", (1, 5))


def test_identity_constant_out_of_a_sum():
    _check((M * A).sum(axis=0, keepdims=True), "m ⊙ (Σ_c a)", "constant out of a sum", (1, 5))


def test_identity_transposes():
    B = var("B", RNG.normal(size=(5, 4)))
    _check((A @ B).T, "Bᵀ · aᵀ", "transpose of a product", (4, 3))
    _check(A.T.T, "a", "transpose of a transpose", (3, 5))


def test_identity_numbers_out_of_a_product():
    B = var("B", RNG.normal(size=(5, 4)))
    _check((A / 5) @ B, "(1/N) a · B", "numbers out of a product", (3, 4))


def test_identity_probabilities_sum_to_1():
    q = var("q", np.full((3, 5), 1 / 3))
    _check(q.sum(axis=0, keepdims=True) * A, "a", "probabilities sum to 1", (3, 5))
    e = A.exp()
    soft = e / e.sum(axis=0, keepdims=True)
    s = Simplifier()
    assert unicode(s.simplify((soft * M).sum(axis=0, keepdims=True))) == "m"


def test_identity_one_sum_of_several():
    _check(
        A.sum(axis=0, keepdims=True) * M - (A * A).sum(axis=0, keepdims=True) * M,
        "m ⊙ (Σ_c (a ⊙ (1 − a)))",
        "one sum of several",
        (1, 5),
    )


def test_every_identity_has_a_test_of_its_own():
    tested = {
        "softmax",
        "scatter-add at the labels",
        "one-hot sums to 1",
        "like terms",
        "sum over a broadcast axis",
        "constant out of a sum",
        "transpose of a product",
        "transpose of a transpose",
        "numbers out of a product",
        "probabilities sum to 1",
        "one sum of several",
        "a broadcast copy",
    }
    assert set(IDENTITIES) == tested


# ---------------------------------------------------------------- outputs


def test_latex_parses_with_mathtext():
    pytest.importorskip("matplotlib")
    from tinygrad_softmax.lecture.derive.report import latex_lines
    from tinygrad_softmax.lecture.derive.slide import check_mathtext

    lines: set[str] = set()  # each distinct line once: the loss variants share most of them
    for model in ("linear", "mlp"):
        for layout in ("column", "row"):
            for loss in ["cross-entropy", *LOSSES] if model == "linear" else ["cross-entropy"]:
                lines.update(latex_lines(derive_model(Problem(layout=layout, model=model), loss)))
    for line in sorted(lines):
        check_mathtext(line)
    assert "\\begin{align*}" in to_latex(derive_model(Problem()))


def test_latex_of_a_broken_formula_is_refused_by_the_check():
    pytest.importorskip("matplotlib")
    from tinygrad_softmax.lecture.derive.slide import check_mathtext

    with pytest.raises(ValueError):
        check_mathtext("\\frac{1}{N")


def test_the_slide_is_1920_by_1080(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from tinygrad_softmax.lecture.derive.slide import write_formula_png

    path = write_formula_png(derive_model(Problem(model="mlp")), tmp_path / "formula.png")
    with Image.open(path) as image:
        assert image.size == (1920, 1080)


def test_the_text_says_where_the_transposes_and_the_1_over_n_come_from():
    for layout, product in (("column", "∂L/∂W = ∂L/∂Z · Xᵀ"), ("row", "∂L/∂W = Xᵀ · ∂L/∂Z")):
        out = to_text(derive_model(Problem(layout=layout)))
        assert "1/N: the mean's rule" in out
        assert product in out
        assert "Σ in ∂L/∂b" in out and "adjoint of broadcasting" in out
    assert "1/N: the division's rule" in to_text(derive_model(Problem(), "sum-over-n"))


def test_latex_and_unicode_agree_on_names():
    e = var("dL/dZ1", 0.0)
    assert unicode(e) == "∂L/∂Z₁"
    assert latex(e) == "\\frac{\\partial L}{\\partial Z_{1}}"
    assert unicode(num(Fraction(1, 5)) * var("a", 1.0)) == "1/5·a"


def test_the_derived_section_of_the_derivation_is_the_tools_output():
    from pathlib import Path

    from tinygrad_softmax.lecture.derive.report import with_docs_section

    page = (Path(__file__).resolve().parents[3] / "docs" / "derivation.md").read_text(encoding="utf-8")
    assert with_docs_section(page) == page, (
        'docs/derivation.md §8 is out of date; regenerate it with: python -c "from pathlib import Path; '
        "from tinygrad_softmax.lecture.derive.report import with_docs_section as w; "
        "p = Path('docs/derivation.md'); p.write_text(w(p.read_text()))\""
    )


def test_the_fused_ops_rule_simplifies_to_the_same_formula():
    # softmax_cross_entropy has (P − Y)/N written into its rule; run on symbolic values, that rule
    # comes out as the same formula the primitive ops reach by the chain rule.
    from tinygrad_softmax import functional as F

    rng = np.random.default_rng(3)
    Z = Tensor(rng.normal(size=(3, 5)), requires_grad=True, name="Z")
    loss = F.softmax_cross_entropy(Z, np.array([0, 2, 1, 1, 0]), axis=0)
    d = derive(loss, [Z], 0, SIZES)
    assert text(d, "Z") == P_MINUS_Y and d.worst_error <= TOLERANCE
