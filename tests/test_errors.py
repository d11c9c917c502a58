"""Bad input gets a clear error naming the op and the shapes or values, and nothing is lost."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.engine import topological_order


@pytest.fixture
def w():
    return Tensor(np.ones((2, 3)), requires_grad=True, name="W")


def test_matmul_shape_mismatch(w):
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        w @ Tensor(np.ones((4, 5)))


def test_matmul_of_a_scalar(w):
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(\)"):
        w @ Tensor(2.0)


@pytest.mark.parametrize(
    "op,fn", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)]
)
def test_shapes_that_do_not_broadcast(w, op, fn):
    other = Tensor(np.ones((4, 5)))
    method = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__"}[op]
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4, 5\) cannot be broadcast"):
        getattr(w, method)(other)


def test_gather_with_float_indices(w):
    with pytest.raises(TypeError, match=r"gather: .*integer.*float64"):
        w.gather(1, np.zeros((2, 1)))


def test_gather_with_out_of_range_index(w):
    with pytest.raises(IndexError, match=r"gather: .*\[0, 3\).*7"):
        w.gather(1, np.array([[0], [7]]))


def test_gather_with_negative_index(w):
    with pytest.raises(IndexError, match=r"gather: .*-1"):
        w.gather(1, np.array([[0], [-1]]))


def test_gather_with_wrong_ndim(w):
    with pytest.raises(ValueError, match=r"gather: .*ndim|gather: .*dimensions"):
        w.gather(1, np.array([0, 1]))


def test_gather_with_bad_axis(w):
    with pytest.raises(ValueError, match=r"gather: axis 2 .*\(2, 3\)"):
        w.gather(2, np.zeros((2, 1), dtype=int))


def test_cross_entropy_labels_out_of_range():
    z = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"cross_entropy: labels must be in \[0, 3\).*\[3\]"):
        F.cross_entropy(z, np.array([0, 1, 2, 3]))
    with pytest.raises(IndexError, match=r"cross_entropy: .*-1"):
        F.cross_entropy(z, np.array([0, -1, 2, 1]))


def test_cross_entropy_labels_wrong_shape_or_type():
    z = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"cross_entropy: labels of shape \(3,\).*\(4, 3\)"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match=r"cross_entropy: labels must be integer"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0, 1.0]))


def test_cross_entropy_in_the_column_layout_checks_the_class_axis():
    z = Tensor(np.zeros((3, 4)), requires_grad=True)  # C=3 classes on axis 0
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.cross_entropy(z, np.array([0, 1, 2, 3]), axis=0)


def test_backward_on_a_non_scalar_without_grad(w):
    with pytest.raises(ValueError, match=r"backward: .*non-scalar.*\(2, 3\)"):
        (w * 2).backward()


def test_backward_with_a_grad_of_the_wrong_shape(w):
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\) .*\(2, 3\)"):
        (w * 2).backward(np.ones(3))


def test_backward_on_a_tensor_without_grad():
    with pytest.raises(RuntimeError, match=r"backward: .*does not require grad"):
        Tensor(1.0).backward()


@pytest.mark.parametrize("data", ["abc", ["a", "b"], {"x": 1}, None, [1, [2, 3]]])
def test_non_numeric_data(data):
    with pytest.raises(TypeError, match=r"Tensor: data must be numeric"):
        Tensor(data)


def test_pow_with_a_tensor_exponent(w):
    with pytest.raises(TypeError, match=r"pow: the exponent must be a number"):
        w ** Tensor(2.0)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reduction_axis_out_of_range(w, op):
    with pytest.raises(ValueError, match=rf"{op}: axis 5 is out of range .*\(2, 3\)"):
        getattr(w, op)(axis=5)


def test_reshape_to_the_wrong_size(w):
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        w.reshape(4)


def test_item_of_a_big_tensor(w):
    with pytest.raises(ValueError, match=r"item: .*\(2, 3\)"):
        w.item()


# ---------------------------------------------------------------- nothing is lost


def graph_size(root):
    return len(topological_order(root))


def test_a_failed_op_adds_nothing_to_the_graph(w):
    z = w * 2.0
    before = graph_size(z)
    for bad in (
        lambda: z @ Tensor(np.ones((4, 5))),
        lambda: z + np.ones((4, 5)),
        lambda: z.gather(1, [[9], [0]]),
    ):
        with pytest.raises((ValueError, IndexError)):
            bad()
    assert graph_size(z) == before
    z.sum().backward()
    np.testing.assert_allclose(w.grad, 2.0)


def test_a_failed_backward_changes_no_grad():
    class BrokenLog(ops.Log):
        def backward(self, grad, x, out):
            raise FloatingPointError("log: backward failed on purpose")

    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    good = (x * 3.0).sum()
    good.backward()
    before = x.grad.copy()
    h = x * 2.0  # an intermediate that would receive a gradient before the failure
    bad = (Tensor._apply(BrokenLog(), x) + h).sum()
    with pytest.raises(FloatingPointError):
        bad.backward()
    np.testing.assert_array_equal(x.grad, before)
    assert h.grad is None and bad.grad is None


def test_a_backward_with_a_bad_seed_changes_no_grad(w):
    y = w * 2
    (y.sum()).backward()
    before = w.grad.copy()
    with pytest.raises(ValueError):
        y.backward(np.ones((5, 5)))
    np.testing.assert_array_equal(w.grad, before)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.softmax_cross_entropy])
def test_an_empty_batch_is_an_error_not_nan(loss):
    z = Tensor(np.zeros((0, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=rf"{loss.__name__}: no samples to average over .*\(0, 3\)"):
        loss(z, np.zeros(0, dtype=int))
