"""The Tensor: data and dtype, recording an op (ordered parents, only when a gradient is needed), no_grad."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, is_grad_enabled, no_grad
from tinygrad_softmax.engine import topological_order

# ---------------------------------------------------------------- data, dtype, helpers


def test_dtypes():
    assert Tensor([1, 2]).dtype == np.float64
    assert Tensor(True).dtype == np.float64
    f32 = Tensor(np.ones(3, dtype=np.float32))
    assert f32.dtype == np.float32
    assert (2.0 * f32).dtype == np.float32 and (f32 - 1).dtype == np.float32
    assert (1 / f32).dtype == np.float32 and (f32**2).dtype == np.float32


@pytest.mark.parametrize("data", ["abc", ["a", "b"], {"x": 1}, None, [1, [2, 3]]])
def test_non_numeric_data(data):
    with pytest.raises(TypeError, match=r"Tensor: data must be numeric"):
        Tensor(data)


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


def test_item_of_a_big_tensor():
    with pytest.raises(ValueError, match=r"item: .*\(2, 3\)"):
        Tensor(np.ones((2, 3))).item()


def test_repr_is_readable():
    w = Tensor([[1.0, 2.0]], requires_grad=True, name="W")
    z = w @ w.T
    assert repr(z) == "Tensor([[5.]], op=matmul, requires_grad=True)"
    assert repr(w) == "Tensor([[1., 2.]], name='W', requires_grad=True)"
    assert "dtype=float32" in repr(Tensor(np.zeros(2, dtype=np.float32)))


def test_tensors_are_hashable_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b, a}) == 2 and {a: "a"}[a] == "a"


# ---------------------------------------------------------------- recording the graph


def test_parents_are_ordered():
    a, b = Tensor(1.0, requires_grad=True), Tensor(2.0, requires_grad=True)
    out = a - b
    assert out.parents[0] is a and out.parents[1] is b
    assert out.op == "sub" and a.op == ""


def test_nothing_is_recorded_or_kept_when_no_input_requires_grad(rng):
    y = Tensor([1.0]) * 2
    assert not y.requires_grad and y.parents == ()
    x = Tensor(rng.normal(size=(3, 3)))
    y = (x.exp() * 2).sum()
    assert y.grad_fn is None and y.parents == () and not y.requires_grad


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, x.data)  # only the attached factor


def test_a_failed_op_adds_nothing_to_the_graph():
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    z = w * 2.0
    before = len(topological_order(z))
    for bad in (
        lambda: z @ Tensor(np.ones((4, 5))),
        lambda: z + np.ones((4, 5)),
        lambda: z.gather(1, [[9], [0]]),
    ):
        with pytest.raises((ValueError, IndexError)):
            bad()
    assert len(topological_order(z)) == before
    z.sum().backward()
    np.testing.assert_allclose(w.grad, 2.0)


# ---------------------------------------------------------------- no_grad


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


def test_is_grad_enabled_follows_no_grad():
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
