"""Backward rules written once: the same first-order results as before, and differentiable twice.

- First order: the results of the engine whose rules ran on arrays only (values saved in
  ``data/first_order_reference.npz`` by ``first_order_programs.py``), to the rounding of the BLAS
  kernel at hand; in the same process, ``grad`` and ``backward`` agree bit for bit.
- Second order: random programs over the whole op set, differentiated twice with
  ``grad(..., create_graph=True)``, against PyTorch's ``torch.autograd.grad`` twice.
"""

from __future__ import annotations

import gc
import pathlib
import weakref

import numpy as np
import pytest
from first_order_programs import PROGRAMS, compute_all

from tinygrad_softmax import Tensor, grad, ops
from tinygrad_softmax import functional as F
from tinygrad_softmax import tensor as tensor_module

REFERENCE = pathlib.Path(__file__).parents[1] / "data" / "first_order_reference.npz"


# ---------------------------------------------------------------- first order: unchanged


# The stored arrays were computed on one CPU. The matrix products go through NumPy's BLAS, whose kernel
# (Haswell, SkylakeX, Apple's, ...) sums in an order of its own, so another CPU may differ in the last
# bits (1.4e-16 on dW was seen): bit-identical is a claim about one kernel. A sum of n terms rounded in
# two orders differs by at most about n ulps of its largest partial sum; the longest reduction in these
# programs is the 37 samples summed into dW and db. Four ulps per term, against the array's largest entry,
# is that bound with room to spare: 3.3e-14 of it in float64 (1.8e-5 in float32), where a wrong rule is
# off by a sizeable fraction of it.
LONGEST_REDUCTION = 37
ULPS_PER_TERM = 4


@pytest.mark.numerics
def test_first_order_results_equal_the_array_only_engine_to_rounding():
    reference = np.load(REFERENCE)
    now = compute_all()
    assert sorted(now) == sorted(reference.files)
    assert len(PROGRAMS) == 9
    for key, value in now.items():
        expected = reference[key]
        value = np.asarray(value)
        assert value.dtype == expected.dtype and value.shape == expected.shape, key
        eps = np.finfo(expected.dtype).eps
        allowed = ULPS_PER_TERM * LONGEST_REDUCTION * eps * max(float(np.abs(expected).max()), eps)
        difference = float(np.abs(value.astype(np.float64) - expected).max())
        assert difference <= allowed, f"{key}: max diff {difference:.3g} > {allowed:.3g}"


def test_grad_equals_backward_and_touches_no_grad(rng):
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="W")
    b = Tensor(rng.normal(size=(3, 1)), requires_grad=True, name="b")
    X = Tensor(rng.normal(size=(4, 6)))
    loss = F.cross_entropy(W @ X + b, rng.integers(0, 3, size=6), axis=0)
    dW, db = grad(loss, [W, b])
    assert W.grad is None and b.grad is None and loss.grad is None
    loss.backward()
    assert np.array_equal(dW.data, W.grad) and np.array_equal(db.data, b.grad)
    assert dW.shape == W.shape and not dW.requires_grad and dW.parents == ()
    dW.data[0, 0] += 1  # an array of its own
    assert dW.data[0, 0] != W.grad[0, 0]


def _serial_now() -> int:
    return next(tensor_module._serials)


def test_grad_without_create_graph_builds_no_graph(rng):
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    X = Tensor(rng.normal(size=(4, 5)))
    hidden = (W @ X).relu()
    loss = F.cross_entropy(hidden, rng.integers(0, 3, size=5), axis=0)
    watched = [weakref.ref(t) for t in (hidden, loss)]
    before = _serial_now()
    (dW,) = grad(loss, W)
    made = _serial_now() - before - 1
    assert made == 1  # the returned tensor, nothing else
    assert dW.parents == () and dW.grad_fn is None and not dW.requires_grad
    del hidden, loss
    gc.collect()
    assert all(ref() is None for ref in watched)  # dW keeps nothing of the forward graph alive


def test_grad_with_create_graph_keeps_the_graph_it_builds(rng):
    # The contrast that shows the weakref check above can fail.
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    hidden = (W * W).exp()
    loss = hidden.sum()
    watched = weakref.ref(hidden)
    (dW,) = grad(loss, W, create_graph=True)
    assert dW.requires_grad and dW.parents
    del hidden, loss
    gc.collect()
    assert watched() is not None


def test_grad_checks_its_arguments(rng):
    x = Tensor(rng.normal(size=3), requires_grad=True, name="x")
    y = x * 2.0
    with pytest.raises(ValueError, match=r"grad: output has shape \(3,\), not a scalar"):
        grad(y, x)
    with pytest.raises(ValueError, match=r"grad_output has shape \(2,\) but the output has shape \(3,\)"):
        grad(y, x, grad_output=np.ones(2))
    with pytest.raises(ValueError, match=r"input 1 \(c, shape \(2,\)\) does not require grad"):
        grad(y.sum(), [x, Tensor([1.0, 2.0], name="c")])
    with pytest.raises(TypeError, match="grad: output must be a Tensor"):
        grad(np.ones(3), x)  # type: ignore[arg-type]
    unused = Tensor(np.ones(2), requires_grad=True)
    dx, du = grad(y.sum(), [x, unused])
    assert np.array_equal(dx.data, np.full(3, 2.0)) and np.array_equal(du.data, np.zeros(2))


def test_a_recorded_rule_refuses_data_replaced_after_the_forward():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = (x * x).sum()
    x.data = np.array([5.0, 6.0])
    with pytest.raises(RuntimeError, match=r"mul: the data of 'x' \(2,\) was replaced after the forward"):
        grad(y, x, create_graph=True)


def test_backward_reads_the_arrays_the_forward_saw():
    # Rebinding .data after the forward cannot change a first-order gradient:
    # the rule reads the arrays saved when the op ran.
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, 4.0], requires_grad=True)
    y = (w * x).sum()
    x.data = np.array([100.0, 100.0])
    y.backward()
    assert np.array_equal(w.grad, [1.0, 2.0])


# ---------------------------------------------------------------- second order, against PyTorch

SHAPES = {"a": (3, 4), "b": (4,), "c": (3, 1), "w": (4, 2)}
STEPS = [
    "exp",
    "log1p_sq",
    "relu",
    "mul_b",
    "div_c",
    "rsub_b",
    "pow",
    "neg",
    "sum_axis0",
    "mean_axis1",
    "mean_all",
    "max_ties",
    "max_all",
    "gather_repeated",
    "matmul_left",
    "matmul_right",
    "matvec",
    "vecmat",
    "reshape",
    "transpose_axes",
    "softmax",
]
LOSSES = ["square_sum", "cross_entropy", "softmax_cross_entropy", "weighted_mean"]
INDEX = np.array([[0, 0, 3, 1], [2, 2, 2, 0], [1, 3, 3, 1]])  # repeated picks on every row
TIES = np.array([[0, 0, 1, 2], [3, 3, 3, 1], [2, 0, 2, 0]])  # repeated columns: max has exact ties
LABELS = np.array([2, 0, 3])


class Engine:
    """Each step on the engine's tensors; ``Torch`` below says the same in PyTorch."""

    def step(self, name, h, p):
        if name == "exp":
            return (h * 0.3).exp()
        if name == "log1p_sq":
            return (h * h + 1.0).log()
        if name == "relu":
            return h.relu() + h * 0.1
        if name == "mul_b":
            return h * p["b"]
        if name == "div_c":
            return h / (p["c"] * p["c"] + 1.0)
        if name == "rsub_b":
            return p["b"] - h
        if name == "pow":
            return (h * h + 1.0) ** 1.5
        if name == "neg":
            return -h
        if name == "sum_axis0":
            return h * 0.5 + h.sum(axis=0, keepdims=True) * 0.2
        if name == "mean_axis1":
            return h * h.mean(axis=1, keepdims=True)
        if name == "mean_all":
            return h - h.mean()
        if name == "max_ties":
            return h + self.gather(h, TIES).max(axis=1, keepdims=True)
        if name == "max_all":
            return h * h.max()
        if name == "gather_repeated":
            return self.gather(h, INDEX) * h
        if name == "matmul_left":
            return (p["w"] @ p["w"].T @ h.T).T * 0.3  # (4,4) @ (4,3): the input on the right
        if name == "matmul_right":
            return h @ (h.T @ h) * 0.05  # the input on both sides
        if name == "matvec":
            return h + (h @ p["b"]).reshape(3, 1)
        if name == "vecmat":
            return h + (p["b"] @ h.T).reshape(3, 1) * 0.5
        if name == "reshape":
            return h.reshape(2, 6).T.reshape(3, 4) * 0.7 + h
        if name == "transpose_axes":
            return h.reshape(3, 2, 2).transpose(-1, 0, 1).reshape(3, 4) * 0.5 + h
        if name == "softmax":
            return self.softmax(h) * 3.0
        raise AssertionError(name)

    def gather(self, h, index):
        return h.gather(1, index)

    def softmax(self, h):
        return F.softmax(h, axis=1)

    def loss(self, name, h):
        if name == "square_sum":
            return (h * h).sum()
        if name == "cross_entropy":
            return F.cross_entropy(h, LABELS)
        if name == "softmax_cross_entropy":
            return F.softmax_cross_entropy(h, LABELS)
        if name == "weighted_mean":
            return (h * np.linspace(-1, 1, 12).reshape(3, 4)).mean()
        raise AssertionError(name)


class Torch(Engine):
    def __init__(self, torch):
        self.torch = torch

    def gather(self, h, index):
        return self.torch.gather(h, 1, self.torch.tensor(index))

    def softmax(self, h):
        return self.torch.softmax(h, dim=1)

    def step(self, name, h, p):
        t = self.torch
        if name == "exp":
            return t.exp(h * 0.3)
        if name == "log1p_sq":
            return t.log(h * h + 1.0)
        if name == "relu":
            return t.relu(h) + h * 0.1
        if name == "max_ties":
            return h + t.amax(self.gather(h, TIES), dim=1, keepdim=True)  # amax shares ties, as we do
        if name == "max_all":
            return h * t.amax(h)
        if name == "transpose_axes":
            return h.reshape(3, 2, 2).permute(2, 0, 1).reshape(3, 4) * 0.5 + h
        if name == "sum_axis0":
            return h * 0.5 + h.sum(dim=0, keepdim=True) * 0.2
        if name == "mean_axis1":
            return h * h.mean(dim=1, keepdim=True)
        return super().step(name, h, p)

    def loss(self, name, h):
        nnf = self.torch.nn.functional
        if name in ("cross_entropy", "softmax_cross_entropy"):
            return nnf.cross_entropy(h, self.torch.tensor(LABELS))
        if name == "weighted_mean":
            return (h * self.torch.tensor(np.linspace(-1, 1, 12).reshape(3, 4))).mean()
        return super().loss(name, h)


def random_program(seed: int) -> tuple[list[str], str]:
    rng = np.random.default_rng(seed)
    steps = list(rng.choice(STEPS, size=4, replace=False))
    return steps, str(LOSSES[seed % len(LOSSES)])


def run(backend, program, params):
    steps, loss = program
    h = params["a"]
    for name in steps:
        h = backend.step(name, h, params)
    return backend.loss(loss, h)


def values(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def second_order_engine(program, data, directions):
    params = {k: Tensor(v, requires_grad=True, name=k) for k, v in data.items()}
    loss = run(Engine(), program, params)
    firsts = grad(loss, list(params.values()), create_graph=True)
    inner = sum(((g * directions[k]).sum() for k, g in zip(params, firsts)), start=Tensor(0.0))
    seconds = grad(inner, list(params.values()))
    return [g.data for g in firsts], [g.data for g in seconds]


def second_order_torch(torch, program, data, directions):
    params = {k: torch.tensor(v, requires_grad=True) for k, v in data.items()}
    loss = run(Torch(torch), program, params)
    firsts = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    firsts = [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), firsts)]
    inner = sum((g * torch.tensor(directions[k])).sum() for k, g in zip(params, firsts))
    if not inner.requires_grad:
        return [g.detach().numpy() for g in firsts], [np.zeros(s) for s in SHAPES.values()]
    seconds = torch.autograd.grad(inner, list(params.values()), allow_unused=True)
    seconds = [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), seconds)]
    return [g.detach().numpy() for g in firsts], [g.numpy() for g in seconds]


def assert_close(ours, theirs, what):
    for name, mine, other in zip(SHAPES, ours, theirs):
        np.testing.assert_allclose(mine, other, rtol=1e-9, atol=1e-12, err_msg=f"{what} of {name}")


@pytest.mark.parametrize("seed", range(40))
def test_double_backward_of_random_programs_matches_pytorch(torch, seed):
    program = random_program(seed)
    data = values(seed)
    rng = np.random.default_rng(seed)
    directions = {name: rng.normal(size=shape) for name, shape in SHAPES.items()}
    ours = second_order_engine(program, data, directions)
    theirs = second_order_torch(torch, program, data, directions)
    assert_close(ours[0], theirs[0], f"first derivative, program {program}")
    assert_close(ours[1], theirs[1], f"second derivative, program {program}")


def test_the_random_programs_use_every_step_and_every_op():
    used = {step for seed in range(40) for step in random_program(seed)[0]}
    assert used == set(STEPS)
    losses = {random_program(seed)[1] for seed in range(40)}
    assert losses == set(LOSSES)


@pytest.mark.parametrize("step", STEPS)
def test_each_step_alone_twice_differentiated_matches_pytorch(torch, step):
    # Every step once on its own, so a wrong second-order rule is pinned on the op that has it.
    program = ([step], "square_sum")
    data = values(7)
    directions = {name: np.cos(np.arange(np.prod(shape))).reshape(shape) for name, shape in SHAPES.items()}
    ours = second_order_engine(program, data, directions)
    theirs = second_order_torch(torch, program, data, directions)
    assert_close(ours[1], theirs[1], f"second derivative through {step}")


def test_third_derivative_of_exp_is_exp():
    x = Tensor([0.5, -1.0], requires_grad=True)
    (g1,) = grad(x.exp().sum(), x, create_graph=True)
    (g2,) = grad(g1.sum(), x, create_graph=True)
    (g3,) = grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, np.exp([0.5, -1.0]), rtol=1e-15)


def test_a_grad_output_that_requires_grad_is_differentiated_too(torch, rng):
    a = rng.normal(size=(3, 4))
    u = rng.normal(size=(3, 2))
    v = rng.normal(size=(3, 4))
    x = Tensor(a, requires_grad=True)
    w = Tensor(np.arange(8.0).reshape(4, 2) / 8, requires_grad=True)
    upstream = Tensor(u, requires_grad=True)
    (gx,) = grad((x.exp() @ w), x, grad_output=upstream, create_graph=True)
    dupstream, dw = grad((gx * v).sum(), [upstream, w])

    tx = torch.tensor(a, requires_grad=True)
    tw = torch.tensor(np.arange(8.0).reshape(4, 2) / 8, requires_grad=True)
    tupstream = torch.tensor(u, requires_grad=True)
    (tgx,) = torch.autograd.grad(torch.exp(tx) @ tw, tx, grad_outputs=tupstream, create_graph=True)
    tdupstream, tdw = torch.autograd.grad((tgx * torch.tensor(v)).sum(), [tupstream, tw])
    np.testing.assert_allclose(dupstream.data, tdupstream.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dw.data, tdw.numpy(), rtol=1e-12)


def test_the_adjoint_ops_are_adjoint_to_each_other(rng):
    # <expand(g), v> = <g, sum_to(v)> and <scatter_add(g), v> = <g, gather(v)>: each rule is the other op.
    g, v = rng.normal(size=(3, 1)), rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(
        (ops.expand(g, v.shape) * v).sum(), (g * ops.sum_to(v, g.shape)).sum(), rtol=1e-12
    )
    picks = ops.Gather(1, INDEX)
    x = rng.normal(size=(3, 4))
    picked = picks.forward(x)
    w = rng.normal(size=picked.shape)
    np.testing.assert_allclose((ops.scatter_add(w, picks, x.shape) * x).sum(), (w * picked).sum(), rtol=1e-12)
    for op, arg in ((ops.Expand((2, 3, 4)), g), (ops.SumTo((3, 1)), v), (ops.ScatterAdd(picks, (3, 4)), w)):
        t = Tensor(arg, requires_grad=True)
        out = Tensor._apply(op, t)
        direction = rng.normal(size=out.shape)
        (back,) = grad(out, t, grad_output=direction)
        # The rule is the adjoint: <op(t), d> = <t, rule(d)> for a linear op.
        np.testing.assert_allclose((out.data * direction).sum(), (arg * back.data).sum(), rtol=1e-12)
