"""The contracts: a rule's values (array, Tensor, symbolic) are one Value; a Tensor is the walk's Node.

A backward rule is written once and runs on three kinds of value; these tests
check that each kind has what :class:`~tinygrad_softmax.contracts.Value`
names, that the recording kinds say so, and that the fused loss's one rule
gives the same gradient on all three.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from tinygrad_softmax import Tensor, compile, grad, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.compiler.program import Program
from tinygrad_softmax.compiler.symbolic import Sym
from tinygrad_softmax.contracts import Node, RecordingValue, Value, constant, is_recorded


def _kinds() -> dict[str, Any]:
    array = np.arange(6.0).reshape(2, 3)
    return {"array": array, "tensor": Tensor(array), "symbolic": Sym(Program(), array)}


@pytest.mark.parametrize("kind", ["array", "tensor", "symbolic"])
def test_each_kind_of_value_has_what_a_rule_may_use(kind):
    value = _kinds()[kind]
    assert isinstance(value, Value)
    assert isinstance(value, RecordingValue) == (kind != "array") == is_recorded(value)

    # What Value names means the same on each kind: the numbers agree with NumPy's.
    def use(v: Any) -> Any:
        return ((-v * 2.0 - 1.0) / 4.0 @ (v.T @ v) ** 2.0).sum(axis=0, keepdims=True).transpose((1, 0))

    out = use(value)
    numbers = out.value if isinstance(out, Sym) else constant(out)  # a symbolic value's array is .value
    np.testing.assert_array_equal(numbers, use(np.arange(6.0).reshape(2, 3)))
    assert out.shape == (3, 1) and out.ndim == 2


def test_numbers_are_not_recorded_values():
    assert not is_recorded(1.0) and not is_recorded(np.float64(2.0)) and not is_recorded(np.ones(2))
    assert not isinstance(1.0, Value)


def test_a_tensor_is_a_node():
    def as_node(node: Node) -> Node:
        return node

    t = as_node(Tensor([1.0], requires_grad=True))
    for name in ("_data", "_grad", "requires_grad", "parents", "grad_fn", "serial", "op", "name", "shape"):
        assert hasattr(t, name), name


def test_the_fused_rule_has_no_branch_on_the_kind_of_value():
    source = inspect.getsource(ops.SoftmaxCrossEntropy.backward)
    assert "is_recorded" not in source and "isinstance" not in source and "Tensor" not in source


def test_the_fused_rule_gives_one_gradient_on_arrays_tensors_and_symbolic_values(rng):
    z = Tensor(rng.normal(size=(4, 6)), requires_grad=True)
    labels = rng.integers(0, 4, size=6)
    loss = F.softmax_cross_entropy(z, labels, axis=0)
    loss.backward()  # arrays
    (recorded,) = grad(loss, z, create_graph=True)  # Tensors: the rule's ops recorded
    _, (compiled,) = compile(lambda t: F.softmax_cross_entropy(t, labels, axis=0), simplify=False)(
        z
    )  # symbolic
    expected = (F.softmax(z, axis=0).data - F.one_hot(labels, 4, axis=0)) / 6
    np.testing.assert_allclose(z.grad, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(recorded.data, z.grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(compiled, z.grad)  # the compiled program computes the same bits
    assert recorded.requires_grad  # and the recorded one can be differentiated again
