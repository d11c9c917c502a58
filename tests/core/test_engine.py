"""The backward walk: fan-out, diamonds, depth, order, accumulation, and what a failure leaves behind.

Regression tests for early tinygrad's two historic bugs: overwriting instead of
adding (x·x at x = 3 gave 3) and a visited-set that broke diamond graphs.
"""

import gc
import subprocess
import sys
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax.engine import topological_order, walk
from tinygrad_softmax.lecture import build_classifier

# ---------------------------------------------------------------- graphs that share nodes


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
    assert order.count(a) == 1
    assert order[0] is a and order[-1] is d


def test_stacked_diamonds():
    x = Tensor(0.5, requires_grad=True)
    y = x
    for _ in range(20):  # each level doubles the number of paths: 2**20 of them
        y = y * 0.5 + y * 0.5
    y.backward()
    assert x.grad == pytest.approx(1.0)
    assert len(topological_order(y)) == 1 + 3 * 20


def test_a_chain_of_100k_ops_has_no_recursion_error_walking_or_freeing():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward(np.ones(2))
    np.testing.assert_allclose(x.grad, 1.0)
    np.testing.assert_allclose(y.data, 100_001.0)
    tail = weakref.ref(y.parents[0])
    del y  # freeing 100,000 nested parents must not overflow the C stack
    assert tail() is None


# ---------------------------------------------------------------- the order of the walk


def test_walk_order_is_deterministic_and_parents_come_first_even_for_a_late_leaf(rng):
    def build():
        a = Tensor(rng.normal(size=3), requires_grad=True, name="a")
        h = a.exp()
        late = Tensor(rng.normal(size=3), requires_grad=True, name="late")  # made after h, used after h
        s = (h * late + a).sum()
        s.name = "s"
        return a, late, s

    names = [[t.op or t.name for t in topological_order(build()[2])] for _ in range(3)]
    assert names[0] == names[1] == names[2]
    a, late, out = build()
    order = topological_order(out)
    position = {t: i for i, t in enumerate(order)}
    for t in order:
        for p in t.parents:
            if p.requires_grad:
                assert position[p] < position[t]
    out.backward()
    np.testing.assert_allclose(a.grad, np.exp(a.data) * late.data + 1)
    np.testing.assert_allclose(late.grad, np.exp(a.data))


def test_walk_yields_steps_in_reverse_order_and_writes_nothing():
    a = Tensor([1.0, 2.0], requires_grad=True)
    loss = (a * a).sum()
    steps = list(walk(loss, np.ones(())))
    assert [s.node for s in steps] == list(reversed(topological_order(loss)))
    assert a.grad is None and loss.grad is None
    np.testing.assert_allclose(steps[-1].grad, 2 * a.data)


# ---------------------------------------------------------------- where the gradients land


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


def test_backward_from_an_explicit_starting_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -2.0])


def test_every_grad_is_an_array_of_its_own():
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10  # editing one gradient in place must not change the other
    np.testing.assert_allclose(b.grad, [1.0])
    model = build_classifier("row")
    grads = [t.grad for t in topological_order(model.loss)]
    assert len({id(g) for g in grads}) == len(grads)
    assert not any(np.shares_memory(g, h) for i, g in enumerate(grads) for h in grads[i + 1 :])


# ---------------------------------------------------------------- bad calls, and failures half-way


def test_backward_on_a_non_scalar_without_grad():
    with pytest.raises(ValueError, match=r"backward: .*non-scalar.*\(2, 3\)"):
        (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward()


def test_backward_with_a_grad_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\) .*\(2, 3\)"):
        (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(np.ones(3))


def test_backward_on_a_tensor_without_grad():
    with pytest.raises(RuntimeError, match=r"backward: .*does not require grad"):
        Tensor(1.0).backward()


def test_a_backward_from_a_badly_shaped_starting_gradient_changes_no_grad():
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    y = w * 2
    y.sum().backward()
    before = w.grad.copy()
    with pytest.raises(ValueError):
        y.backward(np.ones((5, 5)))
    np.testing.assert_array_equal(w.grad, before)


def test_a_failed_backward_changes_no_grad(monkeypatch):
    # The classifier after one backward: every tensor holds a gradient. A rule
    # that fails half-way through the second walk must leave all of them as they were.
    model = build_classifier("column")
    before = {t: t.grad.copy() for t in topological_order(model.loss)}
    h = model.W * 2.0  # a fresh intermediate would get a gradient before the failure
    extra = (h.sum() + model.loss) * 1.0

    def broken(self, grad, x, out):
        raise FloatingPointError("gather: backward failed on purpose")

    monkeypatch.setattr(ops.Gather, "backward", broken)
    with pytest.raises(FloatingPointError):
        extra.backward()
    for t, grad in before.items():
        np.testing.assert_array_equal(t.grad, grad)
    assert h.grad is None and extra.grad is None


# ---------------------------------------------------------------- memory


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


class _Cycle:
    """A user's object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _long_chain(n: int, during: Callable[[int], None] = lambda i: None) -> tuple[Tensor, Tensor]:
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 2 == 0 else y + 0.001
        during(i)
    return x, y


def _engine_of_tensor() -> Any:
    """The engine module this file's Tensor records into (another test may have re-imported the package)."""
    return sys.modules[Tensor.__module__].engine


def test_a_long_graph_is_frozen_while_built_and_thawed_by_backward() -> None:
    """In a fresh interpreter, whose collector no earlier test has touched."""
    code = """
import gc
import numpy as np
from tinygrad_softmax import Tensor, engine
engine.FREEZE_EVERY = 500
assert gc.get_freeze_count() == 0
x = y = Tensor(np.ones(3), requires_grad=True)
for i in range(2_000):
    y = y * 1.0001 if i % 2 == 0 else y + 0.001
assert gc.get_freeze_count() > 0, "the graph is out of the full passes' way"
y.backward(np.ones(3))
assert gc.get_freeze_count() == 0, "backward gave it back"
np.testing.assert_allclose(x.grad, 1.0001**1_000)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_the_users_cycles_are_still_collected_around_a_long_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine_of_tensor()
    monkeypatch.setattr(engine, "FREEZE_EVERY", 500)
    dropped: list[weakref.ref[_Cycle]] = []
    _, y = _long_chain(2_000, lambda i: dropped.append(weakref.ref(_Cycle())) if i % 100 == 0 else None)
    y.backward(np.ones(3))
    gc.collect()
    assert [r for r in dropped if r() is not None] == []


def test_a_program_that_freezes_objects_itself_keeps_them_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine_of_tensor()
    monkeypatch.setattr(engine, "FREEZE_EVERY", 500)
    gc.unfreeze()
    # What an earlier test's long graph froze is thawed above; the engine must not take the program's
    # freeze below for its own (a graph built without a backward after it leaves the mark set).
    monkeypatch.setattr(engine, "_froze", [False])
    program_object = [object()]  # a container: the collector tracks it, until it is frozen
    gc.freeze()
    try:
        _, y = _long_chain(1_000)
        y.backward(np.ones(3))
        # Frozen objects are in none of the collector's generations. (The count of frozen objects is
        # no witness: a frozen object that dies, one of pytest's, say, leaves the count.)
        assert not engine._froze[0]
        assert all(o is not program_object for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is program_object for o in gc.get_objects())  # the check above can see it
