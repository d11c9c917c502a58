"""functional: cross_entropy from the primitive ops, the fused softmax_cross_entropy, softmax and log_softmax.

The fused op gives the same loss and gradient as the primitive composition;
both check their labels and refuse an empty batch.
"""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic, no_grad
from tinygrad_softmax import functional as F
from tinygrad_softmax.engine import topological_order
from tinygrad_softmax.gradcheck import gradcheck

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics


def both_losses(logits, labels, axis, dtype=np.float64, scale=1.0):
    """(loss, grad) from the primitive composition and from the fused op, on separate leaves."""
    results = []
    for loss_fn in (F.cross_entropy, F.softmax_cross_entropy):
        z = Tensor(np.asarray(logits, dtype=dtype), requires_grad=True)
        loss = loss_fn(z, labels, axis=axis)
        (loss * scale).backward()
        results.append((loss, z.grad))
    return results


LAYOUTS = [
    ((5, 3), 1),
    ((5, 3), -1),
    ((3, 5), 0),
    ((2, 4, 3), -1),
    ((2, 4, 3), 1),
    ((4, 2, 3), 0),
    ((7, 1), 1),
]


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS)
def test_fused_equals_the_primitive_composition(rng, shape, axis):
    logits = rng.normal(size=shape) * 3
    labels_shape = tuple(n for d, n in enumerate(shape) if d != axis % len(shape))
    labels = rng.integers(0, shape[axis], size=labels_shape)
    (loss_p, grad_p), (loss_f, grad_f) = both_losses(logits, labels, axis)
    assert loss_f.shape == loss_p.shape == ()
    np.testing.assert_allclose(loss_f.item(), loss_p.item(), rtol=1e-13)
    np.testing.assert_allclose(grad_f, grad_p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("layout", ["row", "column"])
def test_fused_gradient_is_the_closed_form(rng, layout):
    axis = analytic.CLASS_AXIS[layout]
    N, C = 6, 4
    logits = rng.normal(size=(N, C) if layout == "row" else (C, N))
    labels = np.array([0, 3, 3, 1, 0, 3])  # repeats on purpose
    (_, grad_p), (loss_f, grad_f) = both_losses(logits, labels, axis)
    closed = analytic.logits_grad(logits, labels, axis)
    np.testing.assert_allclose(grad_f, closed, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad_p, closed, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss_f.item(), analytic.cross_entropy(logits, labels, axis), rtol=1e-13)


def test_float32_stays_float32_and_agrees(rng):
    logits = rng.normal(size=(5, 4))
    labels = rng.integers(0, 4, size=5)
    (loss_p, grad_p), (loss_f, grad_f) = both_losses(logits, labels, 1, dtype=np.float32)
    np.testing.assert_allclose(loss_f.item(), loss_p.item(), rtol=1e-6)
    assert loss_f.dtype == np.float32 and grad_f.dtype == np.float32
    np.testing.assert_allclose(grad_f, grad_p, rtol=1e-5, atol=1e-7)


def test_huge_logits_give_a_finite_loss_and_the_exact_gradient():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    labels = np.array([0, 2])
    (_, grad_p), (loss_f, grad_f) = both_losses(logits, labels, 1)
    assert np.isfinite(loss_f.item())
    np.testing.assert_allclose(loss_f.item(), np.log(2) / 2)
    np.testing.assert_allclose(grad_f, [[0.0, 0.0, 0.0], [0.0, 0.25, -0.25]], atol=1e-15)
    np.testing.assert_allclose(grad_f, grad_p, atol=1e-15)


def test_the_graph_is_one_node_and_reusable(rng):
    z = Tensor(rng.normal(size=(4, 3)), requires_grad=True, name="Z")
    labels = np.array([2, 0, 1, 2])
    loss = F.softmax_cross_entropy(z, labels)
    assert loss.op == "softmax_cross_entropy" and loss.parents == (z,)
    assert [t.op or t.name for t in topological_order(loss)] == ["Z", "softmax_cross_entropy"]
    loss.backward()
    first = z.grad.copy()
    loss.backward()  # a second backward adds the same gradient again
    np.testing.assert_allclose(z.grad, 2 * first)
    np.testing.assert_allclose(first, analytic.logits_grad(z.data, labels, 1), atol=1e-15)


def test_nothing_is_recorded_under_no_grad(rng):
    z = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    with no_grad():
        loss = F.softmax_cross_entropy(z, [0, 1, 2, 0])
    assert not loss.requires_grad and loss.parents == () and loss.op == ""


def test_plain_arrays_are_accepted_as_logits(rng):
    logits = rng.normal(size=(4, 3))
    loss = F.softmax_cross_entropy(logits, [0, 1, 2, 0])
    np.testing.assert_allclose(loss.item(), analytic.cross_entropy(logits, np.array([0, 1, 2, 0]), -1))


# ---------------------------------------------------------------- bad labels, for both losses


@pytest.fixture
def z():
    return Tensor(np.zeros((4, 3)), requires_grad=True, name="Z")


def test_labels_out_of_range(z):
    with pytest.raises(IndexError, match=r"softmax_cross_entropy: labels must be in \[0, 3\).*\[3\]"):
        F.softmax_cross_entropy(z, [0, 1, 3, 2])
    with pytest.raises(IndexError, match=r"softmax_cross_entropy: .*\[-1\]"):
        F.softmax_cross_entropy(z, [0, -1, 1, 2])


def test_float_labels(z):
    with pytest.raises(TypeError, match=r"softmax_cross_entropy: labels must be integer .*float64"):
        F.softmax_cross_entropy(z, [0.0, 1.0, 2.0, 0.0])


def test_float_labels_get_the_fix_a_student_needs():
    """Labels read from a file come as floats, and one-hot Y is the derivation's other y."""
    z = Tensor(np.zeros((3, 4)), requires_grad=True)  # column layout: C=3 classes on axis 0
    y = np.array([0, 2, 1, 2])
    with pytest.raises(
        TypeError, match=r"whole numbers \(\[0\.0, 2\.0, 1\.0\], \.\.\.\): pass labels\.astype\(int\)"
    ):
        F.cross_entropy(z, y.astype(float), axis=0)
    with pytest.raises(
        TypeError, match=r"shape \(3, 4\), the logits' shape: .*one-hot .*labels\.argmax\(axis=0\)"
    ):
        F.cross_entropy(z, np.eye(3)[:, y], axis=0)
    # Integer one-hot Y has the right dtype but the logits' shape: the shape error gives the same hint.
    with pytest.raises(
        ValueError,
        match=r"labels of shape \(3, 4\) do not match .*\(expected labels of shape \(4,\)\): "
        r"these look like one-hot labels Y; pass the class indices instead, labels\.argmax\(axis=0\)$",
    ):
        F.cross_entropy(z, np.eye(3, dtype=np.int64)[:, y], axis=0)
    with pytest.raises(ValueError, match=r"\(expected labels of shape \(4,\)\)$"):  # not 0/1: no hint
        F.cross_entropy(z, np.full((3, 4), 2), axis=0)
    # Fractions are neither: no fix is guessed.
    with pytest.raises(TypeError, match=r"got dtype float64$"):
        F.cross_entropy(z, np.array([0.5, 1.0, 2.0, 0.0]), axis=0)
    assert z.grad is None


def test_labels_of_the_wrong_shape(z):
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels of shape \(3,\) .*\(4, 3\)"):
        F.softmax_cross_entropy(z, [0, 1, 2])
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels of shape \(4,\) .*axis 0"):
        F.softmax_cross_entropy(z, [0, 1, 2, 0], axis=0)


def test_axis_out_of_range_and_0d_logits(z):
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: axis 2 is out of range .*\(4, 3\)"):
        F.softmax_cross_entropy(z, [0, 1, 2, 0], axis=2)
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: .*0-d"):
        F.softmax_cross_entropy(Tensor(1.0, requires_grad=True), [])


@pytest.mark.parametrize("loss", [F.cross_entropy, F.softmax_cross_entropy])
def test_an_empty_batch_is_an_error_not_nan(loss):
    z = Tensor(np.zeros((0, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=rf"{loss.__name__}: no samples to average over .*\(0, 3\)"):
        loss(z, np.zeros(0, dtype=int))


def test_a_failed_call_adds_nothing_to_the_graph(z):
    h = z * 2.0
    with pytest.raises(IndexError):
        F.softmax_cross_entropy(h, [0, 1, 5, 2])
    assert len(topological_order(h)) == 2
    h.sum().backward()
    np.testing.assert_allclose(z.grad, 2.0)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_the_softmax_family_against_central_differences(rng, axis):
    x = Tensor(rng.normal(size=(4, 3)), requires_grad=True, name="z")
    assert gradcheck(lambda t: F.softmax(t, axis=axis), x)
    assert gradcheck(lambda t: F.log_softmax(t, axis=axis), x)
    labels = rng.integers(0, x.shape[axis], size=x.shape[1 - axis % 2])
    assert gradcheck(lambda t: F.cross_entropy(t, labels, axis=axis), x)


def test_cross_entropy_labels_out_of_range():
    z = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"cross_entropy: labels must be in \[0, 3\).*\[3\]"):
        F.cross_entropy(z, np.array([0, 1, 2, 3]))
    with pytest.raises(IndexError, match=r"cross_entropy: .*-1"):
        F.cross_entropy(z, np.array([0, -1, 2, 1]))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
)
@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.softmax_cross_entropy])
def test_labels_of_every_integer_width_are_range_checked(loss_fn, dtype):
    """Labels are checked by one max over them read as unsigned integers of their width,
    where a negative label is huge: any width, signed or not, still gets the error."""
    z = Tensor(np.zeros((4, 3)), requires_grad=True)
    good = np.array([0, 1, 2, 1], dtype=dtype)
    loss_fn(z, good).backward()
    assert z.grad is not None and np.isclose(z.grad.sum(), 0.0)
    too_big = np.array([0, 1, 2, 3], dtype=dtype)
    with pytest.raises(IndexError, match=r"labels must be in \[0, 3\).*\[3\]"):
        loss_fn(z, too_big)
    if np.dtype(dtype).kind == "i":
        with pytest.raises(IndexError, match=r"labels must be in \[0, 3\).*\[-1\]"):
            loss_fn(z, np.array([0, -1, 2, 1], dtype=dtype))


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
