"""The graph and the walk: fan-out, diamonds, depth, order, accumulation, no_grad."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, no_grad
from tinygrad_softmax.engine import topological_order, walk


def test_fan_out_adds_instead_of_overwriting():
    # The classic bug: x·x at x=3 must give 6, not 3.
    x = Tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert x.grad == 6.0


def test_fan_out_three_ways():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x + x * x + x.exp()).sum().backward()
    np.testing.assert_allclose(x.grad, 1 + 2 * x.data + np.exp(x.data))


def test_diamond_visits_the_shared_node_once_and_sums_both_paths():
    # a → b, a → c, (b, c) → d: a broken visited-set double counts or drops a path.
    a = Tensor(2.0, requires_grad=True, name="a")
    b = a * 3.0
    c = a.exp()
    d = b * c  # d = 3a·exp(a), dd/da = 3 exp(a)(1 + a)
    d.backward()
    np.testing.assert_allclose(a.grad, 3 * np.exp(2.0) * 3)
    order = topological_order(d)
    assert [id(t) for t in order].count(id(a)) == 1
    assert order[0] is a and order[-1] is d


def test_stacked_diamonds():
    x = Tensor(0.5, requires_grad=True)
    y = x
    for _ in range(20):  # each level doubles the number of paths: 2**20 of them
        y = y * 0.5 + y * 0.5
    y.backward()
    assert x.grad == pytest.approx(1.0)
    assert len(topological_order(y)) == 1 + 3 * 20


def test_a_chain_of_100k_ops_has_no_recursion_error():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0
    assert y.item() == 100_001.0


def test_walk_order_is_deterministic_and_parents_come_first():
    def build():
        a = Tensor([1.0, 2.0], requires_grad=True, name="a")
        b = Tensor([3.0, 4.0], requires_grad=True, name="b")
        s = (a * b + a.exp()).sum()
        s.name = "s"
        return s

    names = [[t.op or t.name for t in topological_order(build())] for _ in range(3)]
    assert names[0] == names[1] == names[2]
    order = topological_order(build())
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        for p in t.parents:
            if p.requires_grad:
                assert position[id(p)] < position[id(t)]


def test_walk_yields_steps_in_reverse_order_and_writes_nothing():
    a = Tensor([1.0, 2.0], requires_grad=True)
    loss = (a * a).sum()
    steps = list(walk(loss, np.ones(())))
    assert [s.node for s in steps] == list(reversed(topological_order(loss)))
    assert a.grad is None and loss.grad is None
    np.testing.assert_allclose(steps[-1].grad, 2 * a.data)


def test_parents_are_ordered():
    a, b = Tensor(1.0, requires_grad=True), Tensor(2.0, requires_grad=True)
    out = a - b
    assert out.parents[0] is a and out.parents[1] is b
    assert out.op == "sub" and a.op == ""


def test_gradients_accumulate_and_each_call_adds_only_its_own():
    x = Tensor([1.0, -2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()  # the graph stays usable
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))
    # A third call must not re-add what earlier calls stored on intermediate nodes.
    y.backward()
    np.testing.assert_allclose(x.grad, 3 * (2 * x.data))
    x.zero_grad()
    assert x.grad is None


def test_intermediate_tensors_get_gradients():
    x = Tensor([0.5, 1.5], requires_grad=True)
    h = x.exp()
    h.name = "h"
    (h * 2.0).sum().backward()
    np.testing.assert_allclose(h.grad, [2.0, 2.0])
    np.testing.assert_allclose(x.grad, 2 * np.exp(x.data))


def test_explicit_seed_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -2.0])


def test_grads_are_separate_arrays():
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10  # editing one gradient in place must not change the other
    np.testing.assert_allclose(b.grad, [1.0])


def test_no_grad_records_nothing_and_restores():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.parents == () and y.op == ""
    z = x * 2
    assert z.requires_grad and z.parents == (x, z.parents[1])


def test_no_grad_restores_after_an_error():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError
    assert (x * 2).requires_grad


def test_nothing_is_recorded_when_no_input_requires_grad():
    y = Tensor([1.0]) * 2
    assert not y.requires_grad and y.parents == ()


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, x.data)  # only the attached factor


def test_dtypes():
    assert Tensor([1, 2]).dtype == np.float64
    assert Tensor(True).dtype == np.float64
    f32 = Tensor(np.ones(3, dtype=np.float32))
    assert f32.dtype == np.float32
    assert (2.0 * f32).dtype == np.float32 and (f32 - 1).dtype == np.float32
    assert (1 / f32).dtype == np.float32 and (f32**2).dtype == np.float32


def test_scalars_and_arrays_mix_in_on_either_side():
    t = Tensor([1.0, 2.0, 3.0])
    np.testing.assert_allclose((1 - t).data, [0, -1, -2])
    np.testing.assert_allclose((2 * t).data, [2, 4, 6])
    np.testing.assert_allclose((t + np.ones(3)).data, [2, 3, 4])
    np.testing.assert_allclose((np.ones(3) + t).data, [2, 3, 4])
    assert isinstance(np.ones(3) + t, Tensor)


def test_attributes_and_helpers():
    t = Tensor([[1.0, 2.0]], requires_grad=True, name="w")
    assert t.shape == (1, 2) and t.ndim == 2 and len(t) == 1
    assert t.numpy() is t.data
    assert Tensor([[3.5]]).item() == 3.5
    assert t.T.shape == (2, 1) and t.reshape(2).shape == (2,) and t.reshape(2, 1).shape == (2, 1)
    assert t.matmul(t.T).shape == (1, 1)
    assert t.mean().item() == 1.5 and t.max().item() == 2.0


def test_repr_is_readable():
    w = Tensor([[1.0, 2.0]], requires_grad=True, name="W")
    z = w @ w.T
    assert repr(z) == "Tensor([[5.]], op=matmul, requires_grad=True)"
    assert repr(w) == "Tensor([[1., 2.]], name='W', requires_grad=True)"
    assert "dtype=float32" in repr(Tensor(np.zeros(2, dtype=np.float32)))


def test_max_ties_share_the_gradient():
    x = Tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5, 0.0])


def test_graph_memory_is_freed_by_refcount():
    import gc
    import weakref

    gc.disable()
    try:
        x = Tensor(np.ones(3), requires_grad=True)
        y = (x.exp() * 2).sum()
        y.backward()
        ref = weakref.ref(y.parents[0])
        del y
        assert ref() is None  # no reference cycle keeps the graph alive
    finally:
        gc.enable()


def test_is_grad_enabled_follows_no_grad():
    from tinygrad_softmax import is_grad_enabled

    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
