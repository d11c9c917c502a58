"""Every op: its backward rule against central differences (float64), its definition, its errors.

Broadcasting in both directions, axis None / int / negative / tuple, keepdims;
gather against the scatter-add written out; unbroadcast as the adjoint of broadcast_to.
"""

import numpy as np
import pytest

from tinygrad_softmax import Tensor, ops
from tinygrad_softmax.derivatives import grad, hessian
from tinygrad_softmax.engine import walk
from tinygrad_softmax.gradcheck import gradcheck, gradgradcheck


def leaf(rng, *shape, name=None, positive=False):
    data = rng.uniform(0.5, 2.0, size=shape) if positive else rng.normal(size=shape)
    return Tensor(data, requires_grad=True, name=name)


# ---------------------------------------------------------------- elementwise, with broadcasting

BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),  # b broadcast over rows
    ((4,), (3, 4)),  # a broadcast over rows
    ((3, 1), (1, 4)),  # both broadcast
    ((2, 3, 4), (3, 1)),  # rank differs and a size-1 axis
    ((), (2, 3)),  # scalar tensor
    ((2, 3), ()),
]


@pytest.mark.parametrize("a_shape,b_shape", BROADCAST_PAIRS)
@pytest.mark.parametrize(
    "fn",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b],
    ids=["add", "sub", "mul", "div"],
)
def test_binary_ops_with_broadcasting(rng, a_shape, b_shape, fn):
    a = leaf(rng, *a_shape, name="a")
    b = leaf(rng, *b_shape, name="b", positive=True)  # keep div away from 0
    assert gradcheck(fn, a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_shapes_that_do_not_broadcast(op):
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    method = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__"}[op]
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4, 5\) cannot be broadcast"):
        getattr(w, method)(Tensor(np.ones((4, 5))))


@pytest.mark.parametrize(
    "fn,positive",
    [
        (lambda x: -x, False),
        (lambda x: x**3, False),
        (lambda x: x**-1.5, True),
        (lambda x: x**0.5, True),
        (lambda x: x.exp(), False),
        (lambda x: x.log(), True),
        (lambda x: x.relu(), False),
        (lambda x: x.T, False),
        (lambda x: x.transpose(1, 0, 2), False),
        (lambda x: x.reshape(6, 4), False),
        (lambda x: x.reshape(-1), False),
        (lambda x: 1 - x, False),
        (lambda x: 2.0 / x, True),
        (lambda x: np.ones(4) * x + 3, False),
    ],
    ids=[
        "neg",
        "pow3",
        "pow-1.5",
        "sqrt",
        "exp",
        "log",
        "relu",
        "T",
        "transpose",
        "reshape",
        "flatten",
        "rsub",
        "rdiv",
        "ndarray-mix",
    ],
)
def test_unary_ops(rng, fn, positive):
    x = leaf(rng, 2, 3, 4, name="x", positive=positive)
    if not positive:  # relu's kink: stay away from 0 so differences are exact
        x.data[np.abs(x.data) < 1e-3] = 0.5
    assert gradcheck(fn, x)


def test_pow_with_a_tensor_exponent():
    with pytest.raises(TypeError, match=r"pow: the exponent must be a number"):
        Tensor(np.ones((2, 3)), requires_grad=True) ** Tensor(2.0)


def test_reshape_to_the_wrong_size():
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3)), requires_grad=True).reshape(4)


def test_a_composite_expression(rng):
    a, b, c = leaf(rng, 3, 4, name="a"), leaf(rng, 4, name="b"), leaf(rng, 4, 2, name="c", positive=True)
    assert gradcheck(lambda p, q, r: (((p * q).exp() + 1).log() @ r**0.5).max(axis=0).sum(), a, b, c)


# ---------------------------------------------------------------- unbroadcast: the adjoint of broadcasting


@pytest.mark.parametrize(
    ("grad_shape", "shape"),
    [((4, 3), (3,)), ((4, 3), (4, 1)), ((4, 3), (1, 3)), ((2, 4, 3), (4, 1)), ((4, 3), ())],
)
def test_unbroadcast_sums_what_broadcasting_copied(rng, grad_shape, shape):
    grad = rng.normal(size=grad_shape)
    # The definition: the adjoint of broadcast_to, <unbroadcast(g), v> = <g, broadcast_to(v)>.
    v = rng.normal(size=shape)
    got = ops.unbroadcast(grad, shape)
    assert got.shape == shape
    np.testing.assert_allclose(np.sum(got * v), np.sum(grad * np.broadcast_to(v, grad_shape)))


def test_unbroadcast_refuses_a_shape_that_was_not_broadcast(rng):
    # (2, 1, 3) does not come from broadcasting (1, 5, 1): an error, not a wrong answer.
    with pytest.raises(ValueError, match=r"unbroadcast: .*\(2, 1, 3\).*\(1, 5, 1\)"):
        ops.unbroadcast(rng.normal(size=(2, 1, 3)), (1, 5, 1))


def test_unbroadcast_reads_missing_axes_as_leading_ones():
    got = ops.unbroadcast(np.arange(3.0), (1, 3))
    np.testing.assert_array_equal(got, [[0.0, 1.0, 2.0]])


# ---------------------------------------------------------------- reductions

AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reductions(rng, op, axis, keepdims):
    x = leaf(rng, 2, 3, 4, name="x")
    assert gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reduction_axis_out_of_range(op):
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=rf"{op}: axis 5 is out of range .*\(2, 3\)"):
        getattr(w, op)(axis=5)


def test_max_ties_share_the_gradient():
    x = Tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5, 0.0])


def test_sum_and_mean_backward_give_writable_arrays_of_their_own(rng):
    x = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    s = x.sum(axis=1, keepdims=True)
    m = x.mean()
    (s.sum() + m).backward()
    np.testing.assert_allclose(x.grad, 1.0 + 1 / 12)
    steps = {step.node: step for step in walk(s.sum() + m, np.ones(()))}
    for node in (s, m):
        (contribution,) = steps[node].parent_grads
        assert contribution.flags.writeable and contribution.base is None
        contribution += 100  # a viewer editing it changes nothing else
    assert np.all(x.grad < 2)


# ---------------------------------------------------------------- matmul


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((3, 4), (4, 5)), ((1, 4), (4, 1)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 2))],
)
def test_matmul(rng, a_shape, b_shape):
    a, b = leaf(rng, *a_shape, name="A"), leaf(rng, *b_shape, name="B")
    assert gradcheck(lambda p, q: p @ q, a, b)


def test_matmul_shape_mismatch_and_scalars():
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        w @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(\)"):
        w @ Tensor(2.0)


# ---------------------------------------------------------------- gather and its adjoint, scatter-add


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


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_with_repeats(rng, axis):
    x = leaf(rng, 4, 5, name="x")
    index_shape = list(x.shape)
    index_shape[axis] = 7  # more picks than entries: repeats are certain
    index = rng.integers(0, x.shape[axis], size=index_shape)
    assert gradcheck(lambda t: t.gather(axis, index), x)


def test_gather_rejects_indices_out_of_range_naming_the_range():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"gather: index values must be in \[0, 3\) .* from -1 to 0"):
        x.gather(1, [[-1], [0]])
    with pytest.raises(IndexError, match=r"gather: index values must be in \[0, 3\) .* from 0 to 3"):
        x.gather(1, [[3], [0]])
    with pytest.raises(IndexError, match=r"gather: .*\[0, 3\).*7"):
        x.gather(1, np.array([[0], [7]]))


def test_gather_rejects_a_bad_index_array_or_axis():
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    with pytest.raises(TypeError, match=r"gather: .*integer.*float64"):
        w.gather(1, np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"gather: .*ndim|gather: .*dimensions"):
        w.gather(1, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"gather: axis 2 .*\(2, 3\)"):
        w.gather(2, np.zeros((2, 1), dtype=int))


# ---------------------------------------------------------------- the table itself


def _ops_classes():
    return [c for c in vars(ops).values() if isinstance(c, type) and issubclass(c, ops.Op) and c.name != "op"]


def test_every_rule_string_is_in_the_vjp_notation_the_module_states():
    assert "VJP form: ``∂L/∂in = …``" in ops.__doc__
    classes = [c for c in _ops_classes() if c.rule]
    assert len(classes) >= 20
    for cls in classes:
        clauses = cls.rule.split(", ∂L/∂in₂")
        assert clauses[0].startswith(("∂L/∂in = ", "∂L/∂in₁ = ")), cls.rule
        assert "∂L/∂out" in cls.rule and "∂out/∂" not in cls.rule, cls.rule


def test_ops_py_is_mostly_rules():
    # At least half of ops.py's lines (blank lines aside) are the ops' rules: each op's docstring,
    # its forward and backward (docstrings included) and its rule string.
    import ast
    import pathlib

    source = pathlib.Path(ops.__file__).read_text(encoding="utf-8")
    rule_lines: set[int] = set()
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            is_doc = isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant)
            is_rule = isinstance(item, ast.Assign) and getattr(item.targets[0], "id", "") == "rule"
            is_method = isinstance(item, ast.FunctionDef) and item.name in ("forward", "backward")
            if is_doc or is_rule or is_method:
                rule_lines.update(range(item.lineno, (item.end_lineno or item.lineno) + 1))
    lines = [i for i, line in enumerate(source.splitlines(), 1) if line.strip()]
    share = len(rule_lines & set(lines)) / len(lines)
    assert share >= 0.5, f"{share:.0%} of ops.py is rules"


# ---------------------------------------------------------------- pow at 0, where p·x^(p−1) reads 0·∞


def test_pow_derivatives_at_zero_are_numbers_where_they_exist():
    """d/dx x⁰ = 0, d²/dx² x¹ = 0 and d³/dx³ x² = 0, also at x = 0 (as PyTorch and HIPS autograd give)."""
    x = np.array([0.0, 1.0, 2.0])
    t = Tensor(x, requires_grad=True)
    (d0,) = grad((t**0).sum(), t)
    np.testing.assert_array_equal(d0.data, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(hessian(lambda v: (v**1).sum(), x), np.zeros((3, 3)))
    t = Tensor(x, requires_grad=True)
    (g1,) = grad((t**2).sum(), t, create_graph=True)
    (g2,) = grad(g1.sum(), t, create_graph=True)
    (g3,) = grad(g2.sum(), t)
    np.testing.assert_array_equal([g1.data, g2.data, g3.data], [2 * x, [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
    t.grad = None
    (t**0).sum().backward()  # the first-order path, on arrays
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 0.0])
    assert gradcheck(lambda v: v**0, t) and gradgradcheck(lambda v: v**1, t)


def test_pow_at_zero_matches_pytorch_to_the_third_derivative(torch):
    x = np.array([0.0, 0.5, -1.5, 2.0])
    for p in (0, 1, 2, 3):
        ours = Tensor(x, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        a, b = (ours**p).sum(), (theirs**p).sum()
        for order in range(3):
            (a,) = grad(a, ours, create_graph=True)
            if b.requires_grad:  # else PyTorch's derivative is a constant, and the next one is 0
                (b,) = torch.autograd.grad(b, theirs, create_graph=True)
            else:
                b = torch.zeros_like(theirs)
            np.testing.assert_array_equal(
                a.data, b.detach().numpy(), err_msg=f"x**{p}, derivative {order + 1}"
            )
            a, b = a.sum(), b.sum()
