"""nn: Linear, ReLU, Sequential and MLP, checked against PyTorch modules holding the same weights."""

import re

import numpy as np
import pytest

from tinygrad_softmax import Tensor, nn
from tinygrad_softmax import functional as F

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics


def _torch_linear(torch, layer):
    """A torch.nn.Linear with our layer's weights (torch stores W as out×in and computes X Wᵀ + b)."""
    module = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.b is not None).double()
    weight = layer.W.data if layer.layout == "column" else layer.W.data.T
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight))
        if layer.b is not None:
            module.bias.copy_(torch.tensor(layer.b.data.reshape(-1)))
    return module


def _as_row(array, layout):
    """Our layout's array as PyTorch's row layout (samples in rows)."""
    return array if layout == "row" else array.T


@pytest.mark.parametrize("layout", ["row", "column"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_equal_torch(torch, layout, bias, rng):
    layer = nn.Linear(4, 3, bias=bias, layout=layout, rng=1)
    x = rng.normal(size=(6, 4))  # six samples in rows
    X = Tensor(_as_row(x, layout), requires_grad=True, name="X")
    upstream = rng.normal(size=(6, 3))
    Z = layer(X)
    Z.backward(_as_row(upstream, layout))

    module = _torch_linear(torch, layer)
    tx = torch.tensor(x, requires_grad=True)
    tz = module(tx)
    tz.backward(torch.tensor(upstream))

    np.testing.assert_allclose(_as_row(Z.data, layout), tz.detach().numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(_as_row(X.grad, layout), tx.grad.numpy(), rtol=1e-13, atol=1e-14)
    weight_grad = module.weight.grad.numpy()
    np.testing.assert_allclose(layer.W.grad, weight_grad if layout == "column" else weight_grad.T, rtol=1e-13)
    if bias:
        assert layer.b.grad.shape == layer.b.shape == ((3,) if layout == "row" else (3, 1))
        np.testing.assert_allclose(layer.b.grad.reshape(-1), module.bias.grad.numpy(), rtol=1e-13)
    else:
        assert layer.b is None and layer.parameters() == [layer.W]


@pytest.mark.parametrize("layout", ["row", "column"])
def test_mlp_loss_and_every_gradient_equal_torch(torch, layout, rng):
    model = nn.MLP([5, 7, 6, 4], layout=layout, rng=3)
    x = rng.normal(size=(9, 5))
    labels = np.array([0, 1, 2, 3, 3, 2, 1, 0, 3])
    axis = -1 if layout == "row" else 0
    loss = F.cross_entropy(model(_as_row(x, layout)), labels, axis=axis)
    model.zero_grad()
    loss.backward()

    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    torch_layers = []
    for layer in linears:
        torch_layers += [_torch_linear(torch, layer), torch.nn.ReLU()]
    reference = torch.nn.Sequential(*torch_layers[:-1])
    t_loss = torch.nn.functional.cross_entropy(reference(torch.tensor(x)), torch.tensor(labels))
    t_loss.backward()

    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-13)
    for layer, module in zip(linears, torch_layers[::2]):
        grad = module.weight.grad.numpy()
        np.testing.assert_allclose(
            layer.W.grad, grad if layout == "column" else grad.T, rtol=1e-10, atol=1e-15
        )
        np.testing.assert_allclose(layer.b.grad.reshape(-1), module.bias.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_mlp_names_its_parameters_and_intermediates_for_the_graph():
    model = nn.MLP([2, 100, 3], rng=0)
    assert list(model.named_parameters()) == ["W1", "b1", "W2", "b2"]
    assert [p.shape for p in model.parameters()] == [(2, 100), (100,), (100, 3), (3,)]
    Z2 = model(np.zeros((5, 2)))
    H1 = Z2.parents[0].parents[0]  # Z2 = (H1 @ W2) + b2
    Z1 = H1.parents[0]
    assert (Z2.name, H1.name, Z1.name) == ("Z2", "H1", "Z1")
    assert (Z2.op, H1.op, Z1.op) == ("add", "relu", "add")
    assert Z1.parents[0].parents[0].name == "X"  # an ndarray input becomes a tensor named X
    column = nn.MLP([2, 4, 3], layout="column", rng=0)
    assert [p.shape for p in column.parameters()] == [(4, 2), (4, 1), (3, 4), (3, 1)]
    assert column(np.zeros((2, 5))).shape == (3, 5)


def test_initialisation_is_he_for_hidden_layers_glorot_for_the_logits_and_repeatable():
    model = nn.MLP([400, 300, 200], rng=7)
    W1, b1, W2, b2 = model.parameters()
    assert W1.data.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He: Var = 2 / fan_in
    assert W2.data.std() == pytest.approx(np.sqrt(2 / (300 + 200)), rel=0.02)  # Glorot
    assert abs(W1.data.mean()) < 0.002
    assert not b1.data.any() and not b2.data.any()
    assert all(p.requires_grad and p.dtype == np.float64 for p in model.parameters())
    again = nn.MLP([400, 300, 200], rng=7)
    np.testing.assert_array_equal(again.parameters()[0].data, W1.data)
    other = nn.MLP([400, 300, 200], rng=8)
    assert not np.array_equal(other.parameters()[0].data, W1.data)
    # The same random numbers in both layouts: the column W is the row W transposed.
    np.testing.assert_array_equal(
        nn.Linear(3, 2, layout="column", rng=5).W.data, nn.Linear(3, 2, layout="row", rng=5).W.data.T
    )
    glorot = nn.Linear(300, 100, init="glorot", rng=np.random.default_rng(1))
    assert glorot.W.data.std() == pytest.approx(np.sqrt(2 / 400), rel=0.03)


def test_zero_grad_and_parameters_reach_every_layer():
    model = nn.MLP([3, 4, 2], rng=0)
    F.cross_entropy(model(np.ones((2, 3))), [0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_sequential_numbers_unnumbered_layers_and_refuses_clashing_names():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    assert list(model.named_parameters()) == ["W1", "b1", "W2", "b2"]
    assert model(np.ones((1, 2))).name == "Z2" and len(model) == 3
    single = nn.Linear(2, 3, rng=0)
    assert [p.name for p in single.parameters()] == ["W", "b"]
    assert single(np.ones((1, 2))).name == "Z"
    with pytest.raises(ValueError, match="W1, b1"):
        nn.Sequential(nn.Linear(2, 2, rng=0, index=1), nn.Linear(2, 2, rng=0, index=1))
    with pytest.raises(TypeError, match="Module"):
        nn.Sequential(nn.Linear(2, 2, rng=0), "relu")


@pytest.mark.parametrize(
    ("layout", "shape", "expected"),
    [("row", (4, 3), r"\(N, 2\)"), ("column", (3, 4), r"\(2, N\)"), ("column", (2,), r"\(2, N\)")],
)
def test_a_wrong_input_width_names_the_layer_and_both_shapes(layout, shape, expected):
    model = nn.MLP([2, 5, 3], layout=layout, rng=0)
    W1 = model.parameters()[0]
    with pytest.raises(ValueError, match=r"Linear layer 1 \(2 → 5") as error:
        model(np.zeros(shape))
    message = str(error.value)
    assert str(shape) in message and f"W1 has shape {W1.shape}" in message
    assert re.search(expected, message)
    assert W1.grad is None  # nothing ran


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="layout"):
        nn.Linear(2, 3, layout="rows")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="activation 'sigmoid'"):
        nn.MLP([2, 3, 2], activation="sigmoid")
    with pytest.raises(ValueError, match="sizes"):
        nn.MLP([2])
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 3, rng="zero")  # type: ignore[arg-type]
