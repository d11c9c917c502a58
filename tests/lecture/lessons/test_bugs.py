"""Injected backward bugs: each one is caught by the comparison, and none leaks into the engine."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic
from tinygrad_softmax import functional as F
from tinygrad_softmax.cli import main
from tinygrad_softmax.engine import topological_order
from tinygrad_softmax.lecture import build_classifier
from tinygrad_softmax.lecture.lessons.bugs import BUGS, classifier_loss
from tinygrad_softmax.lecture.lessons.compare import compare

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics


def _leaves(layout, seed=3):
    model = build_classifier(layout, D=3, N=6, C=4, seed=seed, backward=False)
    W = Tensor(model.W.data.copy(), requires_grad=True, name="W")
    b = Tensor(model.b.data.copy() + 0.1, requires_grad=True, name="b")
    X = Tensor(model.X.data.copy(), requires_grad=True, name="X")
    return W, b, X, model.labels


@pytest.mark.parametrize("layout", ["column", "row"])
def test_without_a_bug_the_spelled_out_graph_is_the_engines_own(layout):
    W, b, X, labels = _leaves(layout)
    Z, loss = classifier_loss(W, b, X, labels, layout)
    loss.backward()
    spelled = [t.op for t in topological_order(loss)]
    grads = [t.grad.copy() for t in (Z, W, b, X)]

    W2, b2, X2, _ = _leaves(layout)
    Z2 = W2 @ X2 + b2 if layout == "column" else X2 @ W2 + b2
    loss2 = F.cross_entropy(Z2, labels, axis=analytic.CLASS_AXIS[layout])
    loss2.backward()
    assert spelled == [t.op for t in topological_order(loss2)]
    assert loss.item() == loss2.item()
    for mine, engines in zip(grads, (Z2.grad, W2.grad, b2.grad, X2.grad)):
        np.testing.assert_array_equal(mine, engines)


@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("name", list(BUGS))
def test_every_bug_keeps_the_forward_and_fails_the_check(name, layout):
    result = compare(layout, bug=name, with_dx=True)
    clean = compare(layout, with_dx=True)
    assert result.loss == clean.loss  # only backward is wrong
    assert not result.passed
    assert "WRONG" in [row.verdict for row in result.rows]
    for row in result.rows:
        assert row.diffs[2].rel < 1e-7  # the two witnesses still agree with each other
    assert result.conclusion().startswith("FAIL") and name in result.conclusion()


def test_each_bug_does_exactly_its_mistake():
    layout, N = "column", 6
    W, b, X, labels = _leaves(layout)
    ref = analytic.linear_classifier(W.data, b.data, X.data, labels, layout)
    P = analytic.softmax(analytic.logits(W.data, b.data, X.data), axis=0)

    def grads(bug):
        W, b, X, _ = _leaves(layout)
        Z, loss = classifier_loss(W, b, X, labels, layout, bug)
        loss.backward()
        return Z.grad, W.grad, b.grad

    dz, dw, db = grads("missing-1-over-N")
    np.testing.assert_allclose(dz, N * ref.dZ, atol=1e-14)
    np.testing.assert_allclose(dw, N * ref.dW, atol=1e-13)
    dz, dw, db = grads("sign-flip")
    np.testing.assert_allclose(dz, -ref.dZ, atol=1e-15)
    np.testing.assert_allclose(dw, -ref.dW, atol=1e-15)
    dz, _, _ = grads("missing-one-hot")
    np.testing.assert_allclose(dz, P / N, atol=1e-15)  # P − Y without the Y
    dz, dw, db = grads("bias-not-summed")
    np.testing.assert_allclose(dz, ref.dZ, atol=1e-15)
    np.testing.assert_allclose(dw, ref.dW, atol=1e-15)
    np.testing.assert_allclose(db, ref.dZ[:, :1], atol=1e-15)  # one sample's column, not the sum
    _, _, db = grads("bias-averaged")
    np.testing.assert_allclose(db, ref.db / N, atol=1e-15)
    dz, _, _ = grads("exp-rule")
    assert np.abs(dz - ref.dZ).max() > 1e-3
    assert np.abs(dz.sum(axis=0)).max() > 1e-3


def test_bias_bugs_leave_dz_and_dw_right_and_break_the_sum_line():
    for name in ("bias-not-summed", "bias-averaged"):
        result = compare("row", bug=name)
        verdicts = {row.name: row.verdict for row in result.rows}
        assert verdicts == {"dZ": "ok", "dW": "ok", "db": "WRONG"}
        assert result.failures() == ["db", "db = Σ over samples of dZ"]


def test_the_engine_is_untouched_after_a_buggy_graph():
    W, b, X, labels = _leaves("column")
    classifier_loss(W, b, X, labels, "column", "missing-1-over-N")[1].backward()
    model = build_classifier("column", D=3, N=6, C=4, seed=3)
    ref = analytic.linear_classifier(model.W.data, model.b.data, model.X.data, model.labels, "column")
    np.testing.assert_allclose(model.Z.grad, ref.dZ, atol=1e-15)
    np.testing.assert_allclose(model.b.grad, ref.db, atol=1e-15)
    assert compare("column").passed


def test_buggy_ops_look_like_the_real_ones_in_the_graph():
    W, b, X, labels = _leaves("column")
    _, loss = classifier_loss(W, b, X, labels, "column", "sign-flip")
    assert loss.op == "neg" and type(loss.grad_fn).__name__ == "NegWithoutSign"


@pytest.mark.parametrize("name", list(BUGS))
def test_cli_inject_bug_exits_1_and_shows_the_failure(name, capsys):
    assert main(["compare", "--inject-bug", name]) == 1
    out = capsys.readouterr().out
    last_paragraph = out.rstrip().split("\n\n")[-1]  # the conclusion, wrapped to 100 columns
    assert "WRONG" in out and f"injected bug: {name}" in out and last_paragraph.startswith("FAIL")


def test_cli_help_lists_every_bug(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, bug in BUGS.items():
        assert name in out and bug.summary in out


def test_cli_rejects_an_unknown_bug(capsys):
    assert main(["compare", "--inject-bug", "typo"]) == 2  # one line, like every refused value
    assert "typo" in capsys.readouterr().err
