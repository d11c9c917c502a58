"""optim: SGD (momentum, weight decay) and Adam give the same numbers as torch.optim, step by step."""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, nn, optim
from tinygrad_softmax import functional as F

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics

STEPS = 20


def _run_both(torch, make_ours, make_torch):
    """20 steps of the same two-layer net and the same data through our optimiser and torch's."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 3))
    labels = rng.integers(0, 4, size=12)
    model = nn.MLP([3, 8, 4], rng=2)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in model.parameters()]
    ours_opt = make_ours(model.parameters())
    torch_opt = make_torch(theirs)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x), labels)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()

        W1, b1, W2, b2 = theirs
        logits = torch.relu(torch.tensor(x) @ W1 + b1) @ W2 + b2
        t_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
        torch_opt.zero_grad()
        t_loss.backward()
        torch_opt.step()
    return model.parameters(), [t.detach().numpy() for t in theirs]


@pytest.mark.parametrize(
    ("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.9, 0.05), (0.5, 1e-3)]
)
def test_sgd_equals_torch_over_20_steps(torch, momentum, weight_decay):
    ours, theirs = _run_both(
        torch,
        lambda ps: optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay),
    )
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t, rtol=1e-10, atol=1e-14, err_msg=p.name)
    start = nn.MLP([3, 8, 4], rng=2).parameters()[0].data
    assert not np.allclose(ours[0].data, start)  # the parameters did move


@pytest.mark.parametrize(
    ("lr", "betas", "eps", "weight_decay"),
    [(1e-3, (0.9, 0.999), 1e-8, 0.0), (0.05, (0.8, 0.99), 1e-6, 0.0), (0.01, (0.9, 0.999), 1e-8, 0.02)],
)
def test_adam_equals_torch_over_20_steps(torch, lr, betas, eps, weight_decay):
    ours, theirs = _run_both(
        torch,
        lambda ps: optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
        lambda ps: torch.optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
    )
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t, rtol=1e-10, atol=1e-14, err_msg=p.name)


def test_plain_sgd_is_the_lectures_step_and_adams_first_step_is_lr_sized():
    W = Tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True, name="W")
    W.grad = np.array([[0.5, 0.25], [-1.0, 1e-6]])
    optim.SGD([W], lr=0.1).step()
    np.testing.assert_array_equal(W.data, [[0.95, -2.025], [3.1, 0.5 - 1e-7]])
    # Adam's first step is lr · g / (|g| + ε): about lr for every entry, however small the gradient.
    V = Tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    V.grad = np.array([[0.5, 0.25], [-1.0, 1e-6]])
    optim.Adam([V], lr=0.01, eps=1e-12).step()
    np.testing.assert_allclose(V.data, [[-0.01, -0.01], [0.01, -0.01]], rtol=1e-5)


def test_parameters_without_a_gradient_are_left_alone_and_dtype_is_kept():
    used = Tensor(np.ones(2, dtype=np.float32), requires_grad=True, name="used")
    unused = Tensor(np.ones(2), requires_grad=True, name="unused")
    opt = optim.Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    opt.step()
    assert used.dtype == np.float32 and np.all(used.data < 1)
    np.testing.assert_array_equal(unused.data, [1.0, 1.0])
    assert opt.t == [1, 0]


def test_a_step_leaves_the_recorded_graph_alone():
    W = Tensor([2.0], requires_grad=True, name="W")
    loss = (W * W).sum()
    loss.backward()
    saved = W.data
    optim.SGD([W], lr=0.25).step()
    assert W.data[0] == 1.0 and saved[0] == 2.0  # a new array; the old one still feeds the graph


def test_zero_grad_clears_every_parameter():
    model = nn.MLP([2, 3, 2], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(np.ones((1, 2))), [1]).backward()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_wrong_shaped_grad_changes_nothing():
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    b = Tensor([1.0, 2.0], requires_grad=True, name="b")
    a.grad = np.ones(2)
    b.grad = np.ones(2)
    b.data = np.ones(3)  # the data changes shape after its grad was stored (assigning one is refused)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"b has shape \(3,\) but its grad has shape \(2,\)"):
        opt.step()
    np.testing.assert_array_equal(a.data, [1.0, 2.0])
    assert opt.velocity == [None, None] and opt.steps == 0


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_bad_parameters_are_refused_with_the_reason(make):
    W = Tensor(np.ones((2, 2)), requires_grad=True, name="W")
    with pytest.raises(TypeError, match="parameter 1 is a ndarray, not a Tensor"):
        make([W, np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match=r"parameter 0 \(X, shape \(3,\)\) does not require grad"):
        make([Tensor(np.ones(3), name="X")], lr=0.1)
    with pytest.raises(TypeError, match="one Tensor"):
        make(W, lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        make(3, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        make([], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        make([W, W], lr=0.1)
    with pytest.raises(ValueError, match="leaf"):
        make([W * 2], lr=0.1)


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_a_learning_rate_that_is_not_positive_is_refused(make, lr):
    with pytest.raises(ValueError, match="lr must be a positive"):
        make([Tensor([1.0], requires_grad=True)], lr=lr)


def test_bad_hyperparameters_are_refused():
    W = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="momentum must be in"):
        optim.SGD([W], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.SGD([W], lr=0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="beta2"):
        optim.Adam([W], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas must be a pair"):
        optim.Adam([W], betas=(0.9,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        optim.Adam([W], eps=0.0)
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.SGD([W], lr="0.1")  # type: ignore[arg-type]


def test_adam_counts_steps_per_parameter_like_torch(torch):
    """A parameter that first gets a gradient at step 3 starts its bias correction at t = 1 there."""
    ours = [Tensor([1.0, -1.0], requires_grad=True), Tensor([0.5, 2.0], requires_grad=True)]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    ours_opt, torch_opt = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    for step in range(6):
        both = step >= 2
        ours_opt.zero_grad()
        torch_opt.zero_grad()
        (ours[0] * ours[0] + (ours[0] * ours[1] if both else 0.0)).sum().backward()
        (theirs[0] * theirs[0] + (theirs[0] * theirs[1] if both else 0.0)).sum().backward()
        ours_opt.step()
        torch_opt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12)
    assert ours_opt.t == [6, 4]


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps)])
def test_a_step_makes_one_new_array_that_the_next_forward_records_as_it_is(make):
    """The step reads each parameter's array without copying it and gives it a new array of its
    own; the next forward records that very array. (Were it handed over as the caller's, with the
    ``data`` setter, the forward would copy it once more, every step.)"""
    W = Tensor(np.ones((3, 2)), requires_grad=True, name="W")
    x = np.arange(6.0).reshape(2, 3)
    opt = make([W])
    (x @ W).sum().backward()  # the graph holds W's array
    before = W._data
    opt.step()
    assert W._data is not before and np.all(before == 1.0)  # the graph's array is untouched
    stepped = W._data
    Z = x @ W
    assert Z.grad_fn is not None and Z.grad_fn.saved[1] is stepped
