"""A failure changes nothing; a flag switched late or a bad `.grad` is refused or ignored cleanly.

The `Node` protocol the walk relies on is checked here too.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_softmax import Tensor, anomaly, engine, ops
from tinygrad_softmax.gradcheck import gradcheck, numerical_gradient

# ---------------------------------------------------------------- item 5: perturbations are undone


def test_numerical_gradient_restores_its_input_when_f_raises():
    x = np.array([1e-7, 1.0])
    calls = []

    def f(v: np.ndarray) -> float:
        calls.append(v[0])
        if len(calls) == 2:  # on the step down
            raise RuntimeError("f failed")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1e-7, 1.0])


def test_gradcheck_restores_its_inputs_when_f_raises():
    t = Tensor([1e-7, 1.0], requires_grad=True)
    calls = []

    def f(x: Tensor) -> Tensor:
        calls.append(1)
        if len(calls) == 3:  # the first perturbed evaluation
            raise RuntimeError("f failed")
        return (x * x).sum()

    with pytest.raises(RuntimeError, match="f failed"):
        gradcheck(f, t)
    np.testing.assert_array_equal(t.data, [1e-7, 1.0])
    assert t.grad is None


def test_numerical_gradient_works_on_a_non_contiguous_array():
    x = np.arange(6.0).reshape(2, 3).T  # a transposed view: no flat view of it exists
    g = numerical_gradient(lambda v: float((v**2).sum()), x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-7)


# ---------------------------------------------------------------- item 6: a wrong-shaped .grad


def test_assigning_a_grad_of_the_wrong_shape_is_refused():
    t = Tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(
        ValueError, match=r"grad: a gradient of shape \(3, 1\) does not fit a tensor of shape \(1, 2\)"
    ):
        t.grad = np.zeros((3, 1))
    assert t.grad is None


def test_assigning_a_grad_takes_the_tensors_dtype_and_refuses_non_numbers():
    t = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    t.grad = [1, 2]
    assert t.grad is not None and t.grad.dtype == np.float32
    with pytest.raises(TypeError, match="grad: must be numeric"):
        t.grad = np.array(["a", "b"])


def test_backward_checks_every_existing_grad_before_writing_any():
    w = Tensor([[1.0, 2.0]], requires_grad=True, name="w")
    t = Tensor([[3.0, 4.0]], requires_grad=True, name="t")
    w.grad = np.array([[10.0, 20.0]])
    t.grad = np.zeros((1, 2))
    t.data = np.ones((3, 1))  # the data changes shape; its old .grad no longer fits
    y = (w * t).sum()
    with pytest.raises(ValueError, match=r"backward: 't' \(3, 1\) holds a \.grad of shape \(1, 2\)"):
        y.backward()
    np.testing.assert_array_equal(w.grad, [[10.0, 20.0]])  # nothing was written
    assert y.grad is None
    t.zero_grad()
    y.backward()  # and after zero_grad() it works
    assert t.grad is not None and t.grad.shape == (3, 1)


# ---------------------------------------------------------------- item 7: requires_grad switched on late


def test_requires_grad_switched_on_after_the_forward_is_ignored_by_that_graph():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    y = (w * x).sum()
    x.requires_grad = True  # the op already recorded x as a constant
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])
    assert x.grad is None
    z = (w * x).sum()  # a new forward sees the flag
    z.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_requires_grad_switched_on_late_for_an_input_used_twice():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    first = w * x  # x a constant here
    x.requires_grad = True
    y = (first + x * x).sum()  # and a variable here
    y.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 8.0])  # only the path recorded with the flag on
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


# ---------------------------------------------------------------- the walk's contract


def test_a_tensor_is_a_node_of_the_walk():
    def as_node(n: engine.Node) -> engine.Node:
        return n

    t = as_node(Tensor([1.0], requires_grad=True))
    for name in ("data", "grad", "requires_grad", "parents", "grad_fn", "serial", "shape", "dtype"):
        assert hasattr(t, name), name


def test_an_anomaly_check_never_links_graph_nodes():
    # Tensor._apply links the offending node before asking; the checker only reads.
    x, out = Tensor([0.0]), Tensor([np.inf])
    with pytest.raises(anomaly.AnomalyError, match="log: forward produced Inf"):
        anomaly.check_forward(ops.Log(), (x,), out)
    assert out.parents == () and out.grad_fn is None and out.op == ""


def test_an_unrecorded_op_that_overflows_still_reports_its_graph():
    x = Tensor([0.0], name="x")  # requires no grad: nothing is recorded
    with pytest.raises(anomaly.AnomalyError) as info, anomaly.detect_anomaly(), np.errstate(divide="ignore"):
        x.log()
    assert info.value.node is not None and info.value.node.parents == (x,)
