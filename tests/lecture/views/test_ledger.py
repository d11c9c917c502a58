"""The chain-rule ledger follows the engine's walk and ends in the closed form (P − Y)/N."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import tinygrad_softmax
from tinygrad_softmax import Tensor, analytic, engine, ops
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import build_classifier
from tinygrad_softmax.lecture.views.graph import shape_text, tensor_labels
from tinygrad_softmax.lecture.views.ledger import LogitsReference, explain, ledger_rows

ROW = re.compile(r"^\s*(\d+)  (\S+(?: \S+)*?)(?:\s{2,}|$)")


def walk_steps(root: Tensor) -> list[engine.Step]:
    return list(engine.walk(root, np.ones_like(root.data)))


def reference_of(model) -> LogitsReference:
    return LogitsReference(model.Z, model.labels, model.class_axis)


@pytest.fixture(params=["column", "row"])
def model(request):
    return build_classifier(request.param)


def test_steps_match_the_engine_walk(model):
    text = explain(model.loss, reference=reference_of(model))
    rows = [(int(m.group(1)), m.group(2)) for line in text.splitlines() if (m := ROW.match(line))]
    labels = tensor_labels(model.loss)
    steps = walk_steps(model.loss)
    assert [step for step, _ in rows] == list(range(1, len(steps) + 1))
    assert [name for _, name in rows] == [labels[s.node] for s in steps]


def test_rows_carry_op_rule_and_shapes(model):
    rows = ledger_rows(model.loss, reference_of(model))
    steps = walk_steps(model.loss)
    labels = tensor_labels(model.loss)
    assert len(rows) == len(steps)
    for row, step in zip(rows, steps):
        assert row.upstream == shape_text(step.grad.shape)
        if step.node.grad_fn is None:
            assert row.op == "leaf" and f"{row.node}.grad" in row.rule
            continue
        assert row.op.startswith(step.node.op + "(")
        assert row.rule == step.node.grad_fn.rule
        for parent, grad in zip(step.node.parents, step.parent_grads):
            expected = "needs no grad" if grad is None else shape_text(grad.shape)
            assert f"{labels[parent]} {expected}" in row.sent or f"{labels[parent]} ({expected})" in row.sent


def test_the_bias_row_shows_the_adjoint_of_broadcasting():
    model = build_classifier()
    z_row = next(r for r in ledger_rows(model.loss, reference_of(model)) if r.node == "Z")
    assert "b 3×1 (summed over axis 1: the adjoint of broadcasting)" in z_row.sent
    assert "(P − Y)/N" in z_row.note


def test_the_ledger_ends_at_the_logits_with_a_tiny_difference(model):
    text = explain(model.loss, reference=reference_of(model))
    last = text.strip().splitlines()[-1]
    assert last.startswith("max |∂loss/∂Z − (P − Y)/N| = ")
    assert float(last.rsplit("= ", 1)[1]) < 1e-12
    closed = analytic.logits_grad(model.Z.data, model.labels, model.class_axis)
    assert f"{closed[0, 0]:.4f}" in text


def test_a_wrong_gradient_shows_up_at_the_end():
    model = build_classifier()
    wrong = LogitsReference(model.Z, (model.labels + 1) % 3, 0)
    last = explain(model.loss, reference=wrong).strip().splitlines()[-1]
    assert float(last.rsplit("= ", 1)[1]) > 1e-3


def test_markdown_table(model):
    text = explain(model.loss, markdown=True, reference=reference_of(model))
    lines = text.strip().splitlines()
    table = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == len(walk_steps(model.loss))
    assert all(line.count(" | ") == 5 for line in table)  # six cells, no stray pipes
    assert "|---:|" in text and "```" in text
    assert float(lines[-1].rsplit("= ", 1)[1]) < 1e-12


def test_without_a_reference_there_is_no_comparison():
    text = explain(build_classifier().loss)
    assert "(P − Y)/N" not in text
    assert "∂L/∂in₁ = ∂L/∂out" in text


def test_explain_changes_no_grad():
    model = build_classifier()
    before = model.W.grad.copy()
    explain(model.loss, reference=reference_of(model))
    np.testing.assert_array_equal(model.W.grad, before)


def test_bad_calls_name_explain():
    model = build_classifier()
    outsider = Tensor(np.zeros((3, 5)), requires_grad=True)
    with pytest.raises(ValueError, match=r"explain: the reference logits \(shape \(3, 5\)\)"):
        explain(model.loss, reference=(outsider, model.labels, 0))
    with pytest.raises(ValueError, match="explain: labels of shape"):
        explain(model.loss, reference=(model.Z, model.labels[:3], 0))
    with pytest.raises(ValueError, match=r"explain: the root must be a scalar loss, got shape \(3, 5\)"):
        explain(model.Z)
    with pytest.raises(ValueError, match="does not require grad"):
        explain(Tensor(1.0))


def test_package_exports_explain():
    assert tinygrad_softmax.explain is explain
    assert "explain" in tinygrad_softmax.__all__ and "viz" in tinygrad_softmax.__all__


# ---------------------------------------------------------------- every op has a rule


def ops_without_a_rule(module_name: str) -> list[str]:
    """Names of the concrete op classes defined in ``module_name`` with no ``rule`` of their own kind."""
    found, stack = [], list(ops.Op.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        concrete = cls.backward is not ops.Op.backward and not inspect.isabstract(cls)
        if (
            cls.__module__ == module_name
            and concrete
            and not (isinstance(cls.rule, str) and cls.rule.strip())
        ):
            found.append(cls.__name__)
    return found


def test_every_op_in_ops_has_a_rule():
    concrete = [
        c for c in vars(ops).values() if inspect.isclass(c) and issubclass(c, ops.Op) and c is not ops.Op
    ]
    assert len(concrete) >= 15  # the introspection sees the ops
    assert ops_without_a_rule(ops.__name__) == []


def test_the_rule_check_catches_an_op_without_one():
    class Square(ops.Op):
        name = "square"

        def forward(self, x: np.ndarray) -> np.ndarray:
            return x**2

        def backward(self, grad: np.ndarray, x: np.ndarray, out: np.ndarray) -> ops.Grads:
            return (grad,)

    assert ops_without_a_rule(__name__) == ["Square"]


# ---------------------------------------------------------------- the command line


def test_cli_explain(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "matmul(W, X)" in out
    assert float(out.strip().splitlines()[-1].rsplit("= ", 1)[1]) < 1e-12


def test_cli_explain_markdown_row_layout(capsys):
    assert main(["explain", "--markdown", "--layout", "row"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Chain-rule ledger") and "matmul(X, W)" in out
    assert "b (3,) (summed over axis 0" in out
