"""Hypothesis over shapes: the closed form, the fused op, unbroadcast, reductions, the Jacobian."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_softmax import Tensor, analytic, jacobian
from tinygrad_softmax import functional as F
from tinygrad_softmax.lecture.training.classifier import logits
from tinygrad_softmax.ops import unbroadcast

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics

dims = st.integers(min_value=1, max_value=6)


@given(
    D=dims,
    N=dims,
    C=st.integers(2, 6),
    seed=st.integers(0, 2**31 - 1),
    layout=st.sampled_from(["column", "row"]),
)
def test_classifier_gradients_match_the_closed_form(D, N, C, seed, layout):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, size=N)
    if layout == "column":
        X, W, b = rng.normal(size=(D, N)), rng.normal(size=(C, D)), rng.normal(size=(C, 1))
    else:
        X, W, b = rng.normal(size=(N, D)), rng.normal(size=(D, C)), rng.normal(size=(C,))
    Xt, Wt, bt = Tensor(X), Tensor(W, requires_grad=True), Tensor(b, requires_grad=True)
    Z = logits(Wt, bt, Xt, layout)
    loss = F.cross_entropy(Z, y, axis=analytic.CLASS_AXIS[layout])
    loss.backward()
    ref = analytic.linear_classifier(W, b, X, y, layout=layout)
    np.testing.assert_allclose(loss.item(), ref.loss, rtol=1e-12)
    np.testing.assert_allclose(Z.grad, ref.dZ, atol=1e-14)
    np.testing.assert_allclose(Wt.grad, ref.dW, atol=1e-13)
    np.testing.assert_allclose(bt.grad, ref.db, atol=1e-14)


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    return shapes.input_shapes


@given(shapes=broadcastable_pair(), seed=st.integers(0, 1000))
def test_elementwise_gradients_sum_back_to_each_input_shape(shapes, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes
    a = Tensor(rng.normal(size=a_shape), requires_grad=True)
    b = Tensor(rng.uniform(1, 2, size=b_shape), requires_grad=True)
    out = a * b + a / b
    upstream = rng.normal(size=out.shape)
    out.backward(upstream)
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    # d/da (a b + a/b) = b + 1/b, summed over the axes a was broadcast along
    expect_a = unbroadcast(upstream * np.broadcast_to(b.data + 1 / b.data, out.shape), a_shape)
    expect_b = unbroadcast(upstream * (a.data - a.data / b.data**2), b_shape)
    np.testing.assert_allclose(a.grad, expect_a, atol=1e-12)
    np.testing.assert_allclose(b.grad, expect_b, atol=1e-12)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data())
def test_sum_and_mean_gradients_over_any_axes(shape, data):
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    axis = tuple(axes) if axes else None
    keepdims = data.draw(st.booleans())
    x = Tensor(np.arange(np.prod(shape), dtype=float).reshape(shape), requires_grad=True)
    x.sum(axis=axis, keepdims=keepdims).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(shape))
    x.zero_grad()
    x.mean(axis=axis, keepdims=keepdims).sum().backward()
    count = np.prod([shape[i] for i in (axis if axis is not None else range(len(shape)))])
    np.testing.assert_allclose(x.grad, np.full(shape, 1.0 / count))


@given(N=dims, C=st.integers(1, 6), seed=st.integers(0, 1000))
def test_gather_backward_counts_every_pick(N, C, seed):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(N, C)), requires_grad=True)
    index = rng.integers(0, C, size=(N, 3))  # 3 picks per row: repeats are likely
    x.gather(1, index).sum().backward()
    counts = np.zeros((N, C))
    for i in range(N):
        for j in index[i]:
            counts[i, j] += 1
    np.testing.assert_array_equal(x.grad, counts)


@given(
    z=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
        elements=st.floats(-1e4, 1e4, allow_nan=False),
    ),
    axis=st.sampled_from([0, 1]),
)
def test_softmax_is_a_distribution_for_any_logits(z, axis):
    p = F.softmax(Tensor(z), axis=axis).data
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, analytic.softmax(z, axis=axis), atol=1e-15)


@given(
    n=st.integers(1, 6),
    c=st.integers(1, 5),
    axis=st.sampled_from([0, 1, -1]),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1.0, -2.5, 0.5]),
)
def test_fused_and_primitives_agree_for_any_shape_and_upstream_gradient(n, c, axis, seed, scale):
    rng = np.random.default_rng(seed)
    shape = (c, n) if axis == 0 else (n, c)
    logits_data = rng.normal(size=shape) * 4
    labels = rng.integers(0, c, size=n)
    results = []
    for loss_fn in (F.cross_entropy, F.softmax_cross_entropy):
        z = Tensor(logits_data, requires_grad=True)
        loss = loss_fn(z, labels, axis=axis)
        (loss * scale).backward()
        results.append((loss.item(), z.grad))
    (loss_p, grad_p), (loss_f, grad_f) = results
    np.testing.assert_allclose(loss_f, loss_p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad_f, grad_p, rtol=1e-11, atol=1e-15)


@given(st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_softmax_jacobian_rows_sum_to_zero_and_match_closed_form(classes, seed):
    z = np.random.default_rng(seed).normal(scale=3.0, size=classes)
    J = jacobian(F.softmax, z)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(J, np.diag(p) - np.outer(p, p), atol=1e-14)
    np.testing.assert_allclose(J.sum(axis=0), 0, atol=1e-14)  # Σ_i p_i = 1 whatever z is
