"""Data edited in place between forward and backward never changes the gradient.

The graph a forward recorded keeps the arrays it read: edits made afterwards
through ``.data``, through the caller's own array, through a view taken
earlier, or to labels and gather indices reach the tensors (and the next
forward), never that graph. See docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_softmax import Tensor, no_grad
from tinygrad_softmax import functional as F


def test_editing_data_through_dot_data_after_the_forward_leaves_the_gradient():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    y = (w * x).sum()
    x.data[:] = 100
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])
    assert y.item() == 11.0
    np.testing.assert_array_equal(x.data, [100.0, 100.0])  # the edit did reach x


def test_editing_the_callers_array_after_making_a_tensor_leaves_the_gradient():
    a = np.array([3.0, 4.0])
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = (w * Tensor(a)).sum()
    a[:] = 100
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_editing_a_numpy_operand_after_the_forward_leaves_the_gradient():
    a = np.array([3.0, 4.0])
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = (w * a).sum()
    a[:] = 100
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_editing_a_view_taken_before_the_forward_leaves_the_gradient():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    view = x.data[:]  # a writable view of x's array, taken while no graph held it
    y = (w * x).sum()
    view[:] = 100
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_editing_an_intermediate_leaves_the_gradient():
    w = Tensor([1.0, 2.0], requires_grad=True)
    e = w.exp()  # exp's backward reads its own output
    y = e.sum()
    e.data[:] = 0
    y.backward()
    np.testing.assert_allclose(w.grad, np.exp([1.0, 2.0]))


def test_replacing_data_after_the_forward_leaves_the_gradient():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    y = (w * x).sum()
    x.data = np.array([100.0, 100.0])
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_editing_labels_after_cross_entropy_leaves_the_gradient():
    z = Tensor(np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]]), requires_grad=True)
    labels = np.array([2, 0])
    for loss_fn in (F.cross_entropy, F.softmax_cross_entropy):
        z.grad = None
        loss = loss_fn(z, labels)
        before = labels.copy()
        labels[:] = -1  # would wrap around to the last class if the op still read it
        loss.backward()
        labels[:] = before
        expected = F.softmax(Tensor(z.data)).data - np.eye(3)[labels]
        np.testing.assert_allclose(z.grad, expected / 2, atol=1e-12, err_msg=loss_fn.__name__)


def test_editing_gather_indices_after_the_forward_leaves_the_gradient():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    index = np.array([[0], [2]])
    y = x.gather(1, index).sum()
    index[:] = 1
    y.backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 0], [0, 0, 1]])


def test_the_training_loop_still_updates_weights_while_the_loss_is_alive(rng):
    X = Tensor(rng.standard_normal((6, 4)))
    labels = rng.integers(0, 3, size=6)
    W = Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W")
    losses = []
    for _ in range(5):
        W.grad = None
        loss = F.cross_entropy(X @ W, labels)
        loss.backward()
        W.data -= 0.5 * W.grad  # `loss` and its graph are still alive here
        losses.append(loss.item())
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    assert W.data.flags.writeable


def test_a_second_backward_after_an_update_gives_the_forwards_gradient(rng):
    X = Tensor(rng.standard_normal((6, 4)))
    labels = rng.integers(0, 3, size=6)
    W = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    loss = F.cross_entropy(X @ W, labels)
    loss.backward()
    first = W.grad.copy()
    W.data -= 10 * W.grad  # a large step: a gradient read at the new W would differ a lot
    W.grad = None
    loss.backward()  # the graph still computes the gradient at the W it saw
    np.testing.assert_array_equal(W.grad, first)


def test_data_stays_the_tensors_own_array_when_no_graph_holds_it():
    x = Tensor([1.0, 2.0])
    array = x.data
    array[0] = 5.0
    assert x.data is array and x.item if x.ndim else True
    np.testing.assert_array_equal(x.data, [5.0, 2.0])
    with no_grad():
        w = Tensor([1.0, 1.0], requires_grad=True)
        (w * x).sum()
    assert x.data is array  # nothing was recorded, so nothing was locked


def test_detach_shares_values_but_an_edit_of_the_detached_leaf_stays_its_own():
    x = Tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    d.data[0] = 7.0
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    np.testing.assert_array_equal(d.data, [7.0, 2.0])


# ---------------------------------------------------------------- a property over random programs

UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "exp": lambda t: (t * 0.3).exp(),
    "log": lambda t: (t * t + 1.0).log(),
    "relu": lambda t: t.relu(),
    "square": lambda t: t**2,
    "neg": lambda t: -t,
    "T": lambda t: t.T,
    "softmax": lambda t: F.softmax(t, axis=-1),
    "max": lambda t: t - t.max(axis=0, keepdims=True),
    "mean": lambda t: t / (t.mean(axis=-1, keepdims=True) ** 2 + 1.0),
}
BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "matmul": lambda a, b: a @ b.T,
}
MUTATIONS = ("setitem", "iadd", "assign", "callers_array", "early_view", "numpy")


def _edit(t: Tensor, how: str, source: np.ndarray, early_view: np.ndarray) -> None:
    if how == "setitem":
        t.data[...] = 3.0
    elif how == "iadd":
        t.data += 1.5
    elif how == "assign":
        t.data = t.data * -2.0
    elif how == "callers_array":
        source[...] = -1.0
    elif how == "early_view":
        early_view[...] = 9.0
    else:
        np.copyto(t.numpy(), 0.25)


@st.composite
def programs(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(sorted(UNARY))), draw(st.integers(0, 99)), 0))
        else:
            steps.append(
                (draw(st.sampled_from(sorted(BINARY))), draw(st.integers(0, 99)), draw(st.integers(0, 99)))
            )
    return steps


def _run(steps: list[tuple[str, int, int]], values: list[np.ndarray], mutate: tuple[int, str] | None):
    sources = [v.copy() for v in values]
    tensors = [Tensor(s, requires_grad=i % 2 == 0, name=f"in{i}") for i, s in enumerate(sources)]
    views = [t.data[:] for t in tensors]  # taken before the forward, as a user might
    pool = list(tensors)
    for name, i, j in steps:
        if name in UNARY:
            pool.append(UNARY[name](pool[i % len(pool)]))
        else:
            pool.append(BINARY[name](pool[i % len(pool)], pool[j % len(pool)]))
    loss = (pool[-1] * pool[-1]).sum() + sum(t.sum() for t in tensors if t.requires_grad)
    if mutate is not None:
        which, how = mutate
        _edit(tensors[which], how, sources[which], views[which])
    loss.backward()
    return [None if t.grad is None else t.grad.copy() for t in tensors]


@given(
    steps=programs(),
    seed=st.integers(0, 2**16),
    which=st.integers(0, 2),
    how=st.sampled_from(MUTATIONS),
)
def test_editing_any_input_between_forward_and_backward_never_changes_the_gradient(steps, seed, which, how):
    values = [np.random.default_rng(seed + i).standard_normal((3, 3)) for i in range(3)]
    clean = _run(steps, values, None)
    try:
        edited = _run(steps, values, (which, how))
    except RuntimeError as exc:  # a clear refusal is allowed; a different gradient never is
        assert "modified" in str(exc), exc
        return
    for i, (a, b) in enumerate(zip(clean, edited)):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"input {i} after {how} of input {which}")


@pytest.mark.parametrize("how", MUTATIONS)
def test_each_kind_of_edit_is_harmless_on_a_fixed_program(how):
    values = [np.arange(9.0).reshape(3, 3) / 7 + i for i in range(3)]
    steps = [("mul", 0, 1), ("exp", 3, 0), ("matmul", 4, 2)]
    np.testing.assert_array_equal(_run(steps, values, None)[0], _run(steps, values, (1, how))[0])


def test_editing_the_source_of_an_unrecorded_view_leaves_the_gradient():
    # y = x.T records nothing (x needs no grad) but shares x's memory; the graph of
    # w * y then reads that memory, so x's edit must not reach it.
    x = Tensor([[3.0, 4.0]])
    y = x.T
    w = Tensor([[1.0], [2.0]], requires_grad=True)
    loss = (w * y).sum()
    x.data[:] = 100
    loss.backward()
    np.testing.assert_array_equal(w.grad, [[3.0], [4.0]])
