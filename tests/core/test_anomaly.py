"""detect_anomaly(): the first NaN or Inf is caught where it is born, forward or backward."""

import numpy as np
import pytest

from tinygrad_softmax import AnomalyError, Tensor, anomaly, detect_anomaly, no_grad
from tinygrad_softmax import functional as F


@pytest.fixture(autouse=True)
def quiet_numpy():
    """Overflow is what these tests provoke; NumPy's warnings about it are noise here."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield


# ---------------------------------------------------------------- forward


def test_forward_inf_names_the_op_the_shape_and_the_inputs():
    z = Tensor(np.full((3, 2), 1000.0), requires_grad=True, name="Z")
    with detect_anomaly(), pytest.raises(AnomalyError) as caught:
        z.exp()
    error = caught.value
    message = str(error)
    assert error.op == "exp"
    assert message.startswith("exp: forward")
    assert "Inf" in message and "NaN" not in message
    assert "(3, 2)" in message and "'Z'" in message
    assert "all inputs were finite" in message
    assert error.inputs == (z,)
    assert error.node is not None and error.node.parents == (z,) and error.node.op == "exp"
    assert np.isinf(error.node.data).all()


def test_forward_nan_is_reported_as_nan():
    x = Tensor([-1.0, 4.0], requires_grad=True, name="x")
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"log: forward produced NaN .* shape \(2,\)"):
        x.log()


def test_forward_names_the_inputs_that_were_already_non_finite():
    a = Tensor([1.0, np.inf], requires_grad=True, name="a")
    b = Tensor([2.0, 3.0], name="b")
    with detect_anomaly(), pytest.raises(AnomalyError) as caught:
        a * b
    message = str(caught.value)
    assert caught.value.op == "mul"
    assert "inputs already non-finite: 'a' (2,)" in message
    assert "'b'" not in message.split("non-finite:")[1]


def test_forward_anomaly_without_grad_still_carries_a_drawable_graph():
    x = Tensor([800.0], name="x")  # nothing requires grad, so nothing is recorded
    with no_grad(), detect_anomaly(), pytest.raises(AnomalyError) as caught:
        x.exp()
    node = caught.value.node
    assert node is not None and node.op == "exp" and node.parents == (x,) and node.grad_fn is not None


def test_the_first_non_finite_op_is_reported_not_its_victims():
    z = Tensor([1000.0, 0.0], requires_grad=True, name="z")
    with detect_anomaly(), pytest.raises(AnomalyError) as caught:
        e = z.exp()
        (e / e.sum()).log()
    assert caught.value.op == "exp"


# ---------------------------------------------------------------- backward


def test_backward_inf_names_the_op_and_the_input_it_was_sent_to():
    x = Tensor([0.0, 4.0], requires_grad=True, name="x")
    y = (x**0.5).sum()  # forward is finite; d√x/dx = 1/(2√x) is Inf at 0
    with detect_anomaly(), pytest.raises(AnomalyError) as caught:
        y.backward()
    message = str(caught.value)
    assert caught.value.op == "pow"
    assert message.startswith("pow: backward produced Inf")
    assert "'x' (2,)" in message
    assert caught.value.node is not None and caught.value.node.parents == (x,)


def test_backward_nan_is_reported_as_nan():
    x = Tensor([0.0], requires_grad=True, name="x")
    y = (x**0.5 * 0.0).sum()  # pow's backward: 0 · ∞ = NaN
    with detect_anomaly(), pytest.raises(AnomalyError, match="pow: backward produced NaN"):
        y.backward()


def test_failed_backward_changes_no_grad():
    x = Tensor([0.0, 4.0], requires_grad=True, name="x")
    w = Tensor([2.0, 3.0], requires_grad=True, name="w")
    (x * w).sum().backward()
    before = {"x": x.grad.copy(), "w": w.grad.copy()}
    h = x**0.5
    y = (h * w).sum()
    with detect_anomaly(), pytest.raises(AnomalyError):
        y.backward()
    np.testing.assert_array_equal(x.grad, before["x"])
    np.testing.assert_array_equal(w.grad, before["w"])
    assert h.grad is None and y.grad is None


def test_failed_forward_leaves_the_inputs_and_their_graph_usable():
    z = Tensor([1.0, 2.0], requires_grad=True, name="z")
    s = (z * 3.0).sum()
    data = z.data.copy()
    with detect_anomaly(), pytest.raises(AnomalyError):
        (z * 1000.0).exp()
    np.testing.assert_array_equal(z.data, data)
    assert z.grad is None
    s.backward()
    np.testing.assert_array_equal(z.grad, [3.0, 3.0])


def test_finite_computations_pass_and_match_the_unchecked_result():
    z = Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True, name="Z")
    labels = np.array([0, 2, 1, 1])
    with detect_anomaly():
        loss = F.cross_entropy(z, labels, axis=0)
        loss.backward()
    checked = z.grad.copy()
    z.zero_grad()
    F.cross_entropy(z, labels, axis=0).backward()
    np.testing.assert_array_equal(checked, z.grad)


# ---------------------------------------------------------------- the switch


def test_off_by_default_non_finite_values_pass_silently():
    assert anomaly.enabled is False
    x = Tensor([0.0], requires_grad=True)
    assert np.isinf(Tensor([1000.0]).exp().data).all()
    (x**0.5).sum().backward()
    assert np.isinf(x.grad).all()


def test_the_flag_nests_and_is_restored_even_after_an_error():
    assert anomaly.enabled is False
    with detect_anomaly():
        with detect_anomaly():
            assert anomaly.enabled is True
        assert anomaly.enabled is True  # the inner block does not switch the outer one off
    assert anomaly.enabled is False
    with pytest.raises(AnomalyError), detect_anomaly():
        Tensor([1000.0]).exp()
    assert anomaly.enabled is False


def test_backward_is_checked_when_it_runs_inside_the_block():
    x = Tensor([0.0], requires_grad=True, name="x")
    y = (x**0.5).sum()  # graph built outside the block
    with detect_anomaly(), pytest.raises(AnomalyError):
        y.backward()
    with detect_anomaly():
        y2 = (x**0.5).sum()  # built inside, run outside: not checked
    y2.backward()
    assert np.isinf(x.grad).all()
