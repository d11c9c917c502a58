"""The backward rules a student can be asked to write, and how each one is graded.

For every op of ``ops.py`` with a rule of its own there is one :class:`Exercise`:
what the op computes and its shapes (written into the student's docstring), a
hint, the cases the rule is graded on (float64, small, with broadcasting where
the op broadcasts, repeated indices for ``gather``, a row and a column layout
for ``matmul``), and the typical mistakes (:class:`Mistake`) whose one-line
hints the report gives when a wrong answer matches one. The injected bugs of
``lecture/lessons/bugs.py`` are in this catalogue, each as the mistake it makes.

The adjoints ``expand``, ``sum_to`` and ``scatter_add`` are not exercises: they
are the helpers the student's rules call, as the package's own rules do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ... import ops

Array = np.ndarray
# What a mistake would have given for each input (None: this mistake says nothing about that input).
Candidate = tuple[Array | None, ...]


@dataclass
class Case:
    """One grading case: the op with its settings, its inputs, and the gradient sent into it."""

    title: str
    make: Callable[[Any], ops.Op]  # the op's class (the package's or the student's) -> an op
    inputs: tuple[Array, ...]
    grad: Array = field(default_factory=lambda: np.zeros(0))  # ∂L/∂out, set when the case is built


@dataclass
class Reference:
    """What a mistake is measured against in one case: the package's rule and its exact answer."""

    case: Case
    op: ops.Op  # the package's op, forward already run
    out: Array
    expected: tuple[Array, ...]  # the package's rule, summed to each input's shape

    def rule(self, grad: Array) -> tuple[Array, ...]:
        """The package's rule for another incoming gradient, summed to each input's shape."""
        grads = self.op.backward(grad, *self.case.inputs, self.out)
        return tuple(ops.sum_to(g, x.shape) for g, x in zip(grads, self.case.inputs))


@dataclass(frozen=True)
class Mistake:
    """A typical wrong rule: what it gives in a case (``wrong``), and the hint that fixes it.

    ``bug`` names the injected bug of ``lecture/lessons/bugs.py`` that makes this mistake.
    """

    name: str
    hint: str
    wrong: Callable[[Reference], Candidate | None]
    bug: str | None = None
    reason: str = ""  # what a case's verdict says when an answer matches this mistake (default: the hint)


@dataclass(frozen=True)
class Exercise:
    """One backward rule to write: the op, the words of its docstring, its cases and its mistakes."""

    name: str
    op: type[ops.Op]
    computes: str  # what the forward computes, in the code's names
    shapes: str  # the shapes in and out, and what to return
    hint: str  # written into the student's file
    settings: str  # what `self` holds that the rule may need ("" when nothing)
    cases: Callable[[np.random.Generator], list[Case]]
    mistakes: tuple[Mistake, ...] = ()
    nudge: str = ""  # hint level 1: where to start (set from HINTS below)
    answer: str = ""  # hint level 3: the model answer's body, with the student's helpers only

    @property
    def function(self) -> str:
        """The name of the student's function: ``exp_backward``."""
        return f"{self.name}_backward"


# ---------------------------------------------------------------- helpers for cases and mistakes


def _normal(rng: np.random.Generator, *shape: int) -> Array:
    return rng.normal(size=shape)


def _positive(rng: np.random.Generator, *shape: int) -> Array:
    return rng.uniform(0.5, 2.0, size=shape)


def _apart(rng: np.random.Generator, *shape: int) -> Array:
    """Distinct values 0.37 apart, none near 0 (no ties for max, none at relu's kink)."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - (size - 1) / 2 + 0.25) * 0.37  # none within 0.09 of 0
    return values.reshape(shape)


def _stretched_axes(small: tuple[int, ...], big: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``big`` along which an input of shape ``small`` was broadcast."""
    extra = len(big) - len(small)
    return tuple(i for i in range(len(big)) if i < extra or (small[i - extra] == 1 and big[i] != 1))


def _first_sample(grad: Array, shape: tuple[int, ...]) -> Array | None:
    """``grad`` at the first position along the axes an input of ``shape`` was broadcast."""
    axes = _stretched_axes(shape, grad.shape)
    if not axes or len(shape) != grad.ndim:
        return None
    return np.take(grad, [0], axis=axes[0]) if len(axes) == 1 else None


def _averaged(grad: Array, shape: tuple[int, ...]) -> Array | None:
    """``grad`` averaged (instead of summed) over the axes an input of ``shape`` was broadcast."""
    axes = _stretched_axes(shape, grad.shape)
    if not axes:
        return None
    return ops.sum_to(grad.mean(axis=axes, keepdims=True), shape)


def _only(index: int, value: Array | None, n: int = 2) -> Candidate | None:
    """A candidate about input ``index`` alone."""
    if value is None:
        return None
    return tuple(value if i == index else None for i in range(n))


# ---------------------------------------------------------------- the mistakes every rule can make

GENERIC: tuple[Mistake, ...] = (
    Mistake(
        "sign",
        "the sign is flipped: check every minus sign of your rule against the derivative",
        lambda r: tuple(-e for e in r.expected),
    ),
    Mistake(
        "no-chain-rule",
        "you returned the local derivative alone: multiply it by grad (∂L/∂out), that is the chain rule",
        lambda r: r.rule(np.ones_like(r.out)) if not np.allclose(r.case.grad, 1) else None,
    ),
    Mistake(
        "zero",
        "your rule returns zeros: every input that changes out gets a non-zero gradient",
        lambda r: tuple(np.zeros_like(e) for e in r.expected),
    ),
)


# ---------------------------------------------------------------- the exercises

SHAPES_BINARY = (
    "a and b broadcast together to out's shape; grad (∂L/∂out) has out's shape.\n"
    "Return (∂L/∂a, ∂L/∂b). Each may have out's shape: the engine then sums it back to the\n"
    "input's shape (sum_to), the adjoint of broadcasting. Or return it in the input's shape."
)
SHAPES_UNARY_SAME = "x, out and grad (∂L/∂out) all have the same shape. Return (∂L/∂x,) of x's shape."


def _add_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "Z = W X + b, column layout: a 3×5, b 3×1 broadcast along the samples",
            lambda c: c(),
            (_normal(rng, 3, 5), _normal(rng, 3, 1)),
        ),
        Case(
            "Z = X W + b, row layout: a 5×3, b (3,) broadcast along the samples",
            lambda c: c(),
            (_normal(rng, 5, 3), _normal(rng, 3)),
        ),
        Case("same shapes: a 2×3, b 2×3", lambda c: c(), (_normal(rng, 2, 3), _normal(rng, 2, 3))),
        Case("both broadcast: a 3×1, b 1×4", lambda c: c(), (_normal(rng, 3, 1), _normal(rng, 1, 4))),
    ]


def _sub_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "log p = s − log Σ exp(s), column layout: a 3×5, b 1×5",
            lambda c: c(),
            (_normal(rng, 3, 5), _normal(rng, 1, 5)),
        ),
        Case("same shapes: a 2×3, b 2×3", lambda c: c(), (_normal(rng, 2, 3), _normal(rng, 2, 3))),
        Case("row layout: a 5×3, b 5×1", lambda c: c(), (_normal(rng, 5, 3), _normal(rng, 5, 1))),
        Case("both broadcast: a (4,), b 3×1", lambda c: c(), (_normal(rng, 4), _normal(rng, 3, 1))),
    ]


def _mul_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("same shapes: a 3×4, b 3×4", lambda c: c(), (_normal(rng, 3, 4), _normal(rng, 3, 4))),
        Case("b broadcast: a 3×4, b (4,)", lambda c: c(), (_normal(rng, 3, 4), _normal(rng, 4))),
        Case("both broadcast: a 3×1, b 1×4", lambda c: c(), (_normal(rng, 3, 1), _normal(rng, 1, 4))),
    ]


def _div_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("softmax's e / Σ e: a 3×5, b 1×5", lambda c: c(), (_positive(rng, 3, 5), _positive(rng, 1, 5))),
        Case("same shapes: a 2×3, b 2×3", lambda c: c(), (_normal(rng, 2, 3), _positive(rng, 2, 3))),
        Case("a broadcast: a (4,), b 3×4", lambda c: c(), (_normal(rng, 4), _positive(rng, 3, 4))),
    ]


def _unary(
    draw: Callable[..., Array], *shapes: tuple[int, ...], make: Callable[[Any], ops.Op] | None = None
) -> Callable[[np.random.Generator], list[Case]]:
    def cases(rng: np.random.Generator) -> list[Case]:
        built = make or (lambda c: c())
        return [
            Case(f"x {'×'.join(map(str, s)) if len(s) > 1 else f'({s[0]},)'}", built, (draw(rng, *s),))
            for s in shapes
        ]

    return cases


def _with_exponent(p: float) -> Callable[[Any], ops.Op]:
    return lambda c: c(p)


def _pow_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(f"x 3×4 (positive), p = {p}", _with_exponent(p), (_positive(rng, 3, 4),))
        for p in (2.0, 3.0, 0.5, -1.0)
    ]


def _matmul_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "column layout W X: a = W 3×4, b = X 4×5", lambda c: c(), (_normal(rng, 3, 4), _normal(rng, 4, 5))
        ),
        Case("row layout X W: a = X 5×4, b = W 4×3", lambda c: c(), (_normal(rng, 5, 4), _normal(rng, 4, 3))),
        Case("square: a 3×3, b 3×3", lambda c: c(), (_normal(rng, 3, 3), _normal(rng, 3, 3))),
    ]


def _sum_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "Σ exp(s) over the classes, column layout: x 3×5, axis=0, keepdims=True",
            lambda c: c(0, True),
            (_normal(rng, 3, 5),),
        ),
        Case("x 3×5, axis=1, keepdims=False", lambda c: c(1, False), (_normal(rng, 3, 5),)),
        Case("x 3×4, every axis (axis=None)", lambda c: c(None, False), (_normal(rng, 3, 4),)),
        Case("x 2×3×4, axis=(0, 2), keepdims=False", lambda c: c((0, 2), False), (_normal(rng, 2, 3, 4),)),
    ]


def _mean_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "the mean over the N = 5 picked log p: x 1×5, axis=None",
            lambda c: c(None, False),
            (_normal(rng, 1, 5),),
        ),
        Case("x 3×4, axis=1, keepdims=False", lambda c: c(1, False), (_normal(rng, 3, 4),)),
        Case("x 3×4, axis=0, keepdims=True", lambda c: c(0, True), (_normal(rng, 3, 4),)),
    ]


def _max_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "max over the classes, column layout: x 3×5, axis=0, keepdims=True",
            lambda c: c(0, True),
            (_apart(rng, 3, 5),),
        ),
        Case("x 3×4, axis=1, keepdims=False", lambda c: c(1, False), (_apart(rng, 3, 4),)),
        Case("x 3×4, every axis (axis=None)", lambda c: c(None, False), (_apart(rng, 3, 4),)),
        Case(
            "ties: x 2×3, axis=1, two entries share each row's maximum",
            lambda c: c(1, False),
            (np.array([[0.5, 2.0, 2.0], [-1.0, -1.0, -3.0]]),),
        ),
    ]


def _gather_cases(rng: np.random.Generator) -> list[Case]:
    column = np.array([[2, 0, 1, 1, 0]])
    row = np.array([[1], [0], [2], [2], [1]])
    repeated = np.array([[0, 0, 2, 0], [1, 1, 1, 2], [2, 0, 2, 2]])
    return [
        Case(
            "log p[y], column layout: x 3×5, axis=0, index 1×5", lambda c: c(0, column), (_normal(rng, 3, 5),)
        ),
        Case("log p[y], row layout: x 5×3, axis=1, index 5×1", lambda c: c(1, row), (_normal(rng, 5, 3),)),
        Case(
            "repeated indices: x 3×3, axis=1, index 3×4 (entries picked 2 or 3 times)",
            lambda c: c(1, repeated),
            (_normal(rng, 3, 3),),
        ),
    ]


def _transpose_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("x 3×4, axes reversed", lambda c: c(None), (_normal(rng, 3, 4),)),
        Case("x 2×3×4, axes=(1, 2, 0)", lambda c: c((1, 2, 0)), (_normal(rng, 2, 3, 4),)),
        Case("x 2×2×2, axes=(1, 2, 0)", lambda c: c((1, 2, 0)), (_normal(rng, 2, 2, 2),)),
    ]


def _reshape_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("x 3×4 reshaped to 2×6", lambda c: c((2, 6)), (_normal(rng, 3, 4),)),
        Case("x 2×3×4 reshaped to 6×4", lambda c: c((6, 4)), (_normal(rng, 2, 3, 4),)),
    ]


def _mean_times_count(r: Reference) -> Candidate | None:
    count = getattr(r.op, "count", 1)
    return tuple(e * count for e in r.expected) if count != 1 else None


def _overwritten_scatter(r: Reference) -> Candidate | None:
    picks = r.op
    assert isinstance(picks, ops.Gather)
    if picks.one_pick_per_line:
        return None  # no position can repeat, so overwriting gives the right answer
    out = np.zeros(r.case.inputs[0].shape)
    out[picks.positions] = r.case.grad
    return (out,)


def _matmul_transposed(r: Reference) -> Candidate | None:
    a, b = r.case.inputs
    grad = r.case.grad
    tries_a = [grad @ b, b @ grad] if a.shape == b.shape == grad.shape else []
    tries_b = [a @ grad, grad @ a] if a.shape == b.shape == grad.shape else []
    for da in tries_a:
        if not np.allclose(da, r.expected[0]):
            return (da, None)
    for db in tries_b:
        if not np.allclose(db, r.expected[1]):
            return (None, db)
    return None


EXERCISES: dict[str, Exercise] = {
    exercise.name: exercise
    for exercise in (
        Exercise(
            "matmul",
            ops.MatMul,
            "out = a @ b, the matrix product; in the derivation's Z = W X it gives dW = dZ Xᵀ",
            "a is m×n, b is n×k (matrices in this exercise), out and grad (∂L/∂out) are m×k.\n"
            "Return (∂L/∂a, ∂L/∂b): m×n and n×k.",
            "each entry out[i, j] = Σ_k a[i, k] b[k, j]; write ∂L/∂a[i, k] as a sum over j and "
            "recognise a matrix product. Check it with the shapes: (m×k)(k×n) is m×n.",
            "",
            _matmul_cases,
            (
                Mistake(
                    "transposed-factor",
                    "a transposed factor: ∂L/∂a = grad @ bᵀ and ∂L/∂b = aᵀ @ grad (match the shapes: "
                    "(m×k)(k×n) = m×n)",
                    _matmul_transposed,
                ),
            ),
        ),
        Exercise(
            "add",
            ops.Add,
            "out = a + b, elementwise under NumPy broadcasting (the bias in Z = W X + b)",
            SHAPES_BINARY,
            "∂out/∂a = ∂out/∂b = 1. An entry of b broadcast across N samples fed N outputs: its "
            "gradient is the sum of their N gradients (the derivation's db = Σ dZ).",
            "",
            _add_cases,
            (
                Mistake(
                    "bias-not-summed",
                    "b was broadcast along the samples, so each entry of b fed every sample: its "
                    "gradient is the sum of grad over the broadcast axes (sum_to), not one sample's",
                    lambda r: _only(1, _first_sample(r.case.grad, r.case.inputs[1].shape)),
                    bug="bias-not-summed",
                    reason="b's gradient is one sample's, not the sum over the samples (the missing "
                    "Σ of db = Σ dZ)",
                ),
                Mistake(
                    "bias-averaged",
                    "b's gradient is the sum of grad over the broadcast axes, not the mean: the 1/N "
                    "of the loss is already inside grad",
                    lambda r: _only(1, _averaged(r.case.grad, r.case.inputs[1].shape)),
                    bug="bias-averaged",
                    reason="the mean is used where the sum belongs: b's gradient is grad summed over the "
                    "broadcast axes",
                ),
            ),
        ),
        Exercise(
            "sub",
            ops.Sub,
            "out = a − b, elementwise under NumPy broadcasting (log p = s − log Σ exp(s))",
            SHAPES_BINARY,
            "∂out/∂a = 1 and ∂out/∂b = −1; both inputs get a gradient.",
            "",
            _sub_cases,
            (
                Mistake(
                    "missing-one-hot",
                    "a gets a gradient too: ∂(a − b)/∂a = 1. In log p = s − log Σ exp(s) this is "
                    "the direct path that brings the −Y of p − y to the logits",
                    lambda r: _only(0, np.zeros_like(r.expected[0])),
                    bug="missing-one-hot",
                ),
                Mistake(
                    "sign-of-b",
                    "∂(a − b)/∂b = −1: b's gradient is −grad",
                    lambda r: _only(1, -r.expected[1]),
                ),
            ),
        ),
        Exercise(
            "mul",
            ops.Mul,
            "out = a · b, elementwise under NumPy broadcasting",
            SHAPES_BINARY,
            "∂(a·b)/∂a = b and ∂(a·b)/∂b = a: each input's gradient uses the other input.",
            "",
            _mul_cases,
            (
                Mistake(
                    "own-factor",
                    "each input's gradient uses the OTHER input: ∂L/∂a = grad · b, ∂L/∂b = grad · a",
                    lambda r: tuple(ops.sum_to(r.case.grad * x, x.shape) for x in r.case.inputs),
                ),
            ),
        ),
        Exercise(
            "div",
            ops.Div,
            "out = a / b, elementwise under NumPy broadcasting",
            SHAPES_BINARY,
            "∂(a/b)/∂a = 1/b and ∂(a/b)/∂b = −a/b².",
            "",
            _div_cases,
            (
                Mistake(
                    "quotient-b",
                    "∂(a/b)/∂b = −a/b² (the derivative of 1/b is −1/b²)",
                    lambda r: _only(1, -r.expected[1]),
                ),
            ),
        ),
        Exercise(
            "neg",
            ops.Neg,
            "out = −x (the minus of L = −mean(log p[y]))",
            SHAPES_UNARY_SAME,
            "∂(−x)/∂x = −1.",
            "",
            _unary(_normal, (3, 4), (5,)),
            (
                Mistake(
                    "sign-flip",
                    "d(−x)/dx = −1: the minus sign stays in the backward (without it every gradient "
                    "points uphill)",
                    lambda r: (r.case.grad,),
                    bug="sign-flip",
                ),
            ),
        ),
        Exercise(
            "pow",
            ops.Pow,
            "out = x ** p for a constant exponent p",
            SHAPES_UNARY_SAME,
            "d/dx x^p = p·x^(p−1).",
            "self.exponent is p.",
            _pow_cases,
            (
                Mistake(
                    "exponent-not-lowered",
                    "d/dx x^p = p·x^(p−1): the exponent goes down by one",
                    lambda r: (r.case.grad * r.op.exponent * r.case.inputs[0] ** r.op.exponent,),  # type: ignore[attr-defined]
                ),
            ),
        ),
        Exercise(
            "exp",
            ops.Exp,
            "out = exp(x), elementwise",
            SHAPES_UNARY_SAME,
            "exp is its own derivative, and the forward already computed it: it is out.",
            "",
            _unary(_normal, (3, 5), (2, 3, 4)),
            (
                Mistake(
                    "exp-rule",
                    "d/dx exp(x) = exp(x), not 1: multiply grad by out",
                    lambda r: (r.case.grad,),
                    bug="exp-rule",
                ),
                Mistake(
                    "exp-times-x",
                    "d/dx exp(x) = exp(x) (which is out), not x",
                    lambda r: (r.case.grad * r.case.inputs[0],),
                ),
            ),
        ),
        Exercise(
            "log",
            ops.Log,
            "out = log(x), the natural logarithm, elementwise (x > 0)",
            SHAPES_UNARY_SAME,
            "d/dx log x = 1/x.",
            "",
            _unary(_positive, (3, 5), (4,)),
            (
                Mistake(
                    "log-times-x",
                    "d/dx log x = 1/x: divide grad by x, don't multiply",
                    lambda r: (r.case.grad * r.case.inputs[0],),
                ),
                Mistake(
                    "log-over-out",
                    "d/dx log x = 1/x: divide by the input x, not by the output log x",
                    lambda r: (r.case.grad / r.out,),
                ),
            ),
        ),
        Exercise(
            "relu",
            ops.ReLU,
            "out = max(x, 0), elementwise",
            SHAPES_UNARY_SAME,
            "the slope is 1 where x > 0 and 0 elsewhere; read the mask through constant(x).",
            "",
            _unary(_apart, (3, 4), (7,)),
            (
                Mistake(
                    "relu-times-out",
                    "relu's slope is 1 where x > 0, else 0: multiply grad by the mask, not by out",
                    lambda r: (r.case.grad * r.out,),
                ),
            ),
        ),
        Exercise(
            "sum",
            ops.Sum,
            "out = x.sum(axis, keepdims) (Σ exp(s) over the classes)",
            "x has any shape; out and grad (∂L/∂out) have x's shape without the summed axes\n"
            "(or with them as size 1 when keepdims). Return (∂L/∂x,) of x's shape.",
            "every entry of x fed its sum with weight 1: copy grad back along the summed axes. "
            "The adjoint of sum is expand; with keepdims=False put the summed axes back first.",
            "self.axes: the summed axes (a sorted tuple); self.keepdims; self.with_kept_axes(grad, x)\n"
            "puts the summed axes back into grad as size-1 axes.",
            _sum_cases,
            (
                Mistake(
                    "sum-divided",
                    "the adjoint of sum copies grad (weight 1 per entry); it does not divide it by "
                    "the number of summed entries (that is mean's rule)",
                    lambda r: tuple(e / (e.size // max(1, r.out.size)) for e in r.expected),
                    reason="the mean's rule is used for the sum: the adjoint of sum copies grad, it does "
                    "not divide it",
                ),
            ),
        ),
        Exercise(
            "mean",
            ops.Mean,
            "out = x.mean(axis, keepdims) (L = −mean over the samples)",
            "x has any shape; out and grad (∂L/∂out) have x's shape without the averaged axes\n"
            "(or with them as size 1 when keepdims). Return (∂L/∂x,) of x's shape.",
            "each of the n averaged entries fed its mean with weight 1/n: copy grad / n back "
            "along the averaged axes.",
            "self.axes: the averaged axes; self.keepdims; self.count: n, the number of entries\n"
            "averaged into each output; self.with_kept_axes(grad, x) as for sum.",
            _mean_cases,
            (
                Mistake(
                    "missing-1-over-N",
                    "the mean's derivative is 1/n per entry: divide by self.count (without it every "
                    "gradient is n times too big)",
                    _mean_times_count,
                    bug="missing-1-over-N",
                ),
            ),
        ),
        Exercise(
            "max",
            ops.Max,
            "out = x.max(axis, keepdims) (the shift that keeps exp from overflowing)",
            "x has any shape; out and grad (∂L/∂out) have x's shape without the reduced axes\n"
            "(or with them as size 1 when keepdims). Return (∂L/∂x,) of x's shape.",
            "only the entries that are the maximum get the gradient (shared equally when k tie); "
            "the others get 0. Read which entries win through constant(x) and constant(out).",
            "self.axes: the reduced axes; self.keepdims; self.with_kept_axes(value, x) puts the\n"
            "reduced axes back as size-1 axes (for grad and for out).",
            _max_cases,
            (
                Mistake(
                    "max-to-all",
                    "only the maximum entries get the gradient; every other entry of x gets 0",
                    lambda r: tuple(
                        ops.expand(r.op.with_kept_axes(r.case.grad, x), x.shape)  # type: ignore[attr-defined]
                        for x in r.case.inputs
                    ),
                ),
            ),
        ),
        Exercise(
            "gather",
            ops.Gather,
            "out[i][j] = x[i][index[i][j]] along self.axis (PyTorch's gather; log p[y])",
            "x has any shape; index, out and grad (∂L/∂out) have index's shape.\n"
            "Return (∂L/∂x,) of x's shape: zeros except where entries were picked.",
            "an entry picked twice fed two outputs, so it gets both gradients, added: "
            "scatter_add(grad, self, x.shape) adds grad into zeros at the picked positions.",
            "self.axis; self.index; self.positions: NumPy fancy indices of the picked entries\n"
            "(x[self.positions] is out); scatter_add(grad, self, shape) is the adjoint helper.",
            _gather_cases,
            (
                Mistake(
                    "overwritten-scatter",
                    "an entry picked more than once gets the SUM of its gradients: add (scatter_add, "
                    "np.add.at) instead of assigning, which keeps only the last one",
                    _overwritten_scatter,
                    reason="an entry picked more than once (repeated labels) keeps only one of its "
                    "gradients: add them (scatter_add) instead of assigning",
                ),
            ),
        ),
        Exercise(
            "transpose",
            ops.Transpose,
            "out = x.transpose(self.order), the axes permuted",
            "x has any shape; out and grad (∂L/∂out) have the permuted shape.\nReturn (∂L/∂x,) of x's shape.",
            "permute grad back with the inverse permutation, np.argsort(self.order).",
            "self.order: the permutation the forward applied (a tuple of axes).",
            _transpose_cases,
            (
                Mistake(
                    "same-permutation",
                    "permute grad back with the INVERSE permutation np.argsort(self.order), not self.order",
                    lambda r: (
                        (r.case.grad.transpose(r.op.order),)  # type: ignore[attr-defined]
                        if r.case.grad.transpose(r.op.order).shape == r.case.inputs[0].shape  # type: ignore[attr-defined]
                        else None
                    ),
                ),
            ),
        ),
        Exercise(
            "reshape",
            ops.Reshape,
            "out = x.reshape(self.shape), the same entries in the same order",
            "x has any shape; out and grad (∂L/∂out) have self.shape. Return (∂L/∂x,) of x's shape.",
            "the entries do not move: reshape grad back to x's shape.",
            "self.shape: the new shape.",
            _reshape_cases,
        ),
    )
}

# The three hint levels of each rule: a nudge (where to start), the concept (``Exercise.hint``,
# also written into the student's file) and the answer, a model rule that uses only what the
# student's file imports (numpy and backward_helpers). The model answers are graded like any
# submission (tests, ``exercise audit``), and ``exercise solution`` writes them.
HINTS: dict[str, tuple[str, str]] = {
    "matmul": (
        "start from the shapes: ∂L/∂a is m×n, and you have grad (m×k), a (m×n) and b (n×k). Which "
        "product of two of them has the shape m×n?",
        "return grad @ b.T, a.T @ grad",
    ),
    "add": (
        "how much does out change when one entry of a changes a little? And an entry of b that "
        "broadcasting copied into several outputs?",
        "return sum_to(grad, a.shape), sum_to(grad, b.shape)",
    ),
    "sub": (
        "like add, but look at the sign in front of b.",
        "return sum_to(grad, a.shape), sum_to(-grad, b.shape)",
    ),
    "mul": (
        "if b were a fixed number, what would d(a·b)/da be? And the other way round?",
        "return sum_to(grad * b, a.shape), sum_to(grad * a, b.shape)",
    ),
    "div": (
        "write a / b as a · b⁻¹ and use the power rule for b.",
        "return sum_to(grad / b, a.shape), sum_to(-grad * a / (b * b), b.shape)",
    ),
    "neg": ("what is the derivative of −x with respect to x?", "return (-grad,)"),
    "pow": (
        "the power rule from school, with p = self.exponent; then the chain rule (times grad).",
        "p = self.exponent\nreturn (grad * p * x ** (p - 1),)",
    ),
    "exp": (
        "which function is its own derivative? The forward already computed it for you.",
        "return (grad * out,)",
    ),
    "log": ("what is d/dx log x? Then the chain rule: multiply by grad.", "return (grad / x,)"),
    "relu": (
        "on which side of 0 does relu change with x, and on which side is it flat?",
        "return (grad * (constant(x) > 0),)",
    ),
    "sum": (
        "every entry of x went into its sum with weight 1. What does each entry get back?",
        "return (expand(self.with_kept_axes(grad, x), x.shape),)",
    ),
    "mean": (
        "a mean is a sum divided by n: start from the sum's rule.",
        "return (expand(self.with_kept_axes(grad, x), x.shape) / self.count,)",
    ),
    "max": (
        "move one entry of x a little: does the max change? Only if that entry is the maximum.",
        "winners = constant(x) == self.with_kept_axes(constant(out), x)\n"
        "share = winners / winners.sum(axis=self.axes, keepdims=True)\n"
        "return (share * self.with_kept_axes(grad, x),)",
    ),
    "gather": (
        "which entries of x reach out at all? The others get 0. And an entry picked twice?",
        "return (scatter_add(grad, self, x.shape),)",
    ),
    "transpose": (
        "the entries only move: move grad's entries back to where they came from.",
        "return (grad.transpose(np.argsort(self.order)),)",
    ),
    "reshape": ("the entries keep their order; only the shape changes.", "return (grad.reshape(x.shape),)"),
}
EXERCISES = {
    name: replace(exercise, nudge=HINTS[name][0], answer=HINTS[name][1])
    for name, exercise in EXERCISES.items()
}

# The ops of the linear softmax classifier's graph, in the order its forward runs them; they
# come first in the catalogue, so a report lists the rules in the order of the derivation.
CLASSIFIER_OPS = ("matmul", "add", "sub", "exp", "sum", "log", "gather", "mean", "neg")
EXERCISES = {
    name: EXERCISES[name]
    for name in sorted(
        EXERCISES,
        key=lambda n: (n not in CLASSIFIER_OPS, CLASSIFIER_OPS.index(n) if n in CLASSIFIER_OPS else 0),
    )
}


def parse_ops(text: str | None) -> tuple[str, ...]:
    """``--ops`` as a tuple of exercise names in catalogue order: a comma list, ``classifier`` or ``all``."""
    if text is None or text.strip() == "classifier":
        return CLASSIFIER_OPS
    if text.strip() == "all":
        return tuple(EXERCISES)
    asked = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in asked if name not in EXERCISES]
    if unknown or not asked:
        raise ValueError(
            f"--ops: unknown op {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
            f"{', '.join(EXERCISES)} (or 'classifier', 'all')"
        )
    return tuple(name for name in EXERCISES if name in asked)


def argument_names(exercise: Exercise) -> tuple[str, ...]:
    """The inputs of the op's rule, as ops.py names them: ``("x",)`` or ``("a", "b")``."""
    import inspect

    names = list(inspect.signature(exercise.op.backward).parameters)
    return tuple(names[2:-1])  # without self, grad and out


def build_cases(exercise: Exercise, seed: int = 0) -> list[Case]:
    """The exercise's cases with their inputs drawn and the incoming gradient set (fixed seeds)."""
    rng = np.random.default_rng(seed)
    cases = exercise.cases(rng)
    for case in cases:
        out = case.make(exercise.op).forward(*case.inputs)
        case.grad = rng.normal(size=np.shape(out))
    return cases


def mistakes_of(exercise: Exercise) -> tuple[Mistake, ...]:
    """The exercise's own mistakes first, then the ones every rule can make."""
    return (*exercise.mistakes, *GENERIC)
