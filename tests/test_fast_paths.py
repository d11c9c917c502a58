"""The engine's shortcuts give the same answers as the plain way, and keep the spec's promises."""

import gc
import weakref

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.engine import topological_order, walk
from tinygrad_softmax.lecture import build_classifier


def scatter_add_reference(shape, axis, index, grad):
    """PyTorch's gather backward written the slow, obvious way."""
    dx = np.zeros(shape)
    for position in np.ndindex(*index.shape):
        target = list(position)
        target[axis] = index[position]
        dx[tuple(target)] += grad[position]
    return dx


@pytest.mark.parametrize(
    ("shape", "axis", "index"),
    [
        ((4, 3), 1, [[2], [0], [0], [1]]),  # one pick per row: the assignment path
        ((3, 4), 0, [[1, 0, 2, 2]]),  # one pick per column
        ((4, 3), 1, [[2, 2], [0, 1], [1, 1], [0, 0]]),  # repeats within a row: must add
        ((3, 4), 0, [[1, 1, 0, 2], [1, 2, 0, 2]]),  # repeats within a column
        ((2, 3, 4), 2, [[[3], [0], [3]], [[1], [1], [2]]]),
        ((4, 3), 1, [[1], [2]]),  # an index smaller than the input
    ],
)
def test_gather_backward_matches_the_scatter_add_definition(rng, shape, axis, index):
    index = np.array(index)
    x = Tensor(rng.normal(size=shape), requires_grad=True)
    upstream = rng.normal(size=index.shape)
    out = x.gather(axis, index)
    for position in np.ndindex(*index.shape):
        source = list(position)
        source[axis] = index[position]
        assert out.data[position] == x.data[tuple(source)]
    out.backward(upstream)
    np.testing.assert_allclose(x.grad, scatter_add_reference(shape, axis, index, upstream))


def test_gather_rejects_negative_and_too_large_indices_naming_the_range():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"gather: index values must be in \[0, 3\) .* from -1 to 0"):
        x.gather(1, [[-1], [0]])
    with pytest.raises(IndexError, match=r"gather: index values must be in \[0, 3\) .* from 0 to 3"):
        x.gather(1, [[3], [0]])


@pytest.mark.parametrize(
    ("grad_shape", "shape"),
    [
        ((4, 3), (3,)),
        ((4, 3), (4, 1)),
        ((4, 3), (1, 3)),
        ((2, 4, 3), (4, 1)),
        ((4, 3), ()),
        ((2, 1, 3), (1, 5, 1)),
    ],
)
def test_unbroadcast_sums_what_broadcasting_copied(rng, grad_shape, shape):
    if shape == (
        1,
        5,
        1,
    ):  # (2, 1, 3) does not come from broadcasting (1, 5, 1): an error, not a wrong answer
        with pytest.raises(ValueError, match=r"unbroadcast: .*\(2, 1, 3\).*\(1, 5, 1\)"):
            ops.unbroadcast(rng.normal(size=grad_shape), shape)
        return
    grad = rng.normal(size=grad_shape)
    # The definition: the adjoint of broadcast_to, <unbroadcast(g), v> = <g, broadcast_to(v)>.
    v = rng.normal(size=shape)
    got = ops.unbroadcast(grad, shape)
    assert got.shape == shape
    np.testing.assert_allclose(np.sum(got * v), np.sum(grad * np.broadcast_to(v, grad_shape)))


def test_unbroadcast_reads_missing_axes_as_leading_ones():
    got = ops.unbroadcast(np.arange(3.0), (1, 3))
    np.testing.assert_array_equal(got, [[0.0, 1.0, 2.0]])


def test_sum_and_mean_backward_give_writable_arrays_of_their_own(rng):
    x = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    s = x.sum(axis=1, keepdims=True)
    m = x.mean()
    (s.sum() + m).backward()
    np.testing.assert_allclose(x.grad, 1.0 + 1 / 12)
    steps = {id(step.node): step for step in walk(s.sum() + m, np.ones(()))}
    for node in (s, m):
        (contribution,) = steps[id(node)].parent_grads
        assert contribution.flags.writeable and contribution.base is None
        contribution += 100  # a viewer editing it changes nothing else
    assert np.all(x.grad < 2)


def test_each_intermediate_grad_is_its_own_array():
    model = build_classifier("row")
    order = topological_order(model.loss)
    grads = [t.grad for t in order]
    assert len({id(g) for g in grads}) == len(grads)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1 :])


def test_order_follows_creation_even_when_a_leaf_is_made_late(rng):
    a = Tensor(rng.normal(size=3), requires_grad=True, name="a")
    h = a.exp()
    late = Tensor(rng.normal(size=3), requires_grad=True, name="late")  # made after h, used after h
    out = (h * late + a).sum()
    order = topological_order(out)
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        for p in t.parents:
            if p.requires_grad:
                assert position[id(p)] < position[id(t)]
    out.backward()
    np.testing.assert_allclose(a.grad, np.exp(a.data) * late.data + 1)
    np.testing.assert_allclose(late.grad, np.exp(a.data))


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.softmax_cross_entropy])
def test_a_step_graph_is_freed_by_reference_counting(rng, loss_fn):
    gc.collect()
    gc.disable()
    try:
        X = Tensor(rng.normal(size=(6, 4)))
        W = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
        b = Tensor(np.zeros(3), requires_grad=True)
        loss = loss_fn(X @ W + b, rng.integers(0, 3, size=6), axis=1)
        loss.backward()
        inner = [weakref.ref(t) for t in topological_order(loss) if t is not W and t is not b]
        assert len(inner) >= 2
        del loss
        assert all(ref() is None for ref in inner)  # no reference cycle kept any of them
        assert W.grad is not None and b.grad is not None
    finally:
        gc.enable()


def test_a_training_loop_leaves_nothing_for_the_cycle_collector(rng):
    X = Tensor(rng.normal(size=(8, 4)))
    W = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    labels = rng.integers(0, 3, size=8)
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            W.grad = b.grad = None
            F.cross_entropy(X @ W + b, labels, axis=1).backward()
            W.data -= 0.1 * W.grad
        assert gc.collect() == 0  # everything was already freed by reference counting
    finally:
        gc.enable()


def test_a_100k_chain_is_freed_without_recursion():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward(np.ones(2))
    tail = weakref.ref(y.parents[0])
    del y  # freeing 100,000 nested parents must not overflow the C stack
    assert tail() is None
    np.testing.assert_allclose(x.grad, 1.0)


def test_a_failed_backward_in_the_classifier_changes_no_grad(monkeypatch):
    model = build_classifier("column")
    before = {id(t): t.grad.copy() for t in topological_order(model.loss)}

    def broken(self, grad, x, out):
        raise FloatingPointError("gather: backward failed on purpose")

    monkeypatch.setattr(ops.Gather, "backward", broken)
    with pytest.raises(FloatingPointError):
        model.loss.backward()
    for t in topological_order(model.loss):
        np.testing.assert_array_equal(t.grad, before[id(t)])


def test_nothing_is_kept_for_backward_when_no_input_requires_grad(rng):
    x = Tensor(rng.normal(size=(3, 3)))
    y = (x.exp() * 2).sum()
    assert y.grad_fn is None and y.parents == () and not y.requires_grad
