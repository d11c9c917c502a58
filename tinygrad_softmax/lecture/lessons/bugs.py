"""Deliberately wrong backward rules, so students can see what a failing check looks like.

Each bug is a subclass of one op from ``ops.py``: its forward is untouched (the
loss is still right), its ``backward`` (same arguments as the op's own rule:
``grad, x, out`` or ``grad, a, b, out``) makes a mistake people really make when
they derive the softmax gradient by hand. They live only in this demo module;
the engine never uses them. :func:`classifier_loss` spells the classifier's
graph out op by op, exactly as ``functional.cross_entropy`` builds it, so that
one op of it can be swapped for a wrong one::

    Z = W X + b                       matmul, add        ← bias-not-summed, bias-averaged
    s = Z − max(Z)  (max detached)    sub
    log p = s − log Σ exp(s)          exp, sum, log, sub ← exp-rule, missing-one-hot
    L = −mean(log p[y])               gather, mean, neg  ← missing-1-over-N, sign-flip
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import ops
from ...analytic import CLASS_AXIS, Layout
from ...ops import Grads, Value
from ...tensor import Tensor

__all__ = ["Bug", "BUGS", "classifier_loss", "get"]


class MeanWithoutOneOverN(ops.Mean):
    """Backward forgets the 1/n of the mean: ∂mean/∂x taken as 1, so every gradient is N times too big."""

    __slots__ = ()

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (ops.expand(self.with_kept_axes(grad, x), x.shape),)  # Mean.backward without the / count


class NegWithoutSign(ops.Neg):
    """Backward forgets the minus in L = −mean(log p): every gradient points uphill."""

    __slots__ = ()

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad,)


class LogSoftmaxWithoutOneHot(ops.Sub):
    """In log p = s − log Σ exp(s), backward drops the direct path to s.

    What is left is the softmax path alone, so dZ = P/N: the one-hot −Y that the
    gather put on the true class never reaches the logits.
    """

    __slots__ = ()

    def backward(self, grad: Value, a: Value, b: Value, out: Value) -> Grads:
        return 0 * grad, -grad


class ExpWithRuleOne(ops.Exp):
    """Backward takes d/dx exp(x) as 1 instead of exp(x)."""

    __slots__ = ()

    def backward(self, grad: Value, x: Value, out: Value) -> Grads:
        return (grad,)


class BiasAdd(ops.Add):
    """Z = W X + b with the sample axis known, for the two wrong bias rules below."""

    __slots__ = ("sample_axis",)

    def __init__(self, sample_axis: int) -> None:
        super().__init__()
        self.sample_axis = sample_axis


class BiasFromFirstSample(BiasAdd):
    """Backward gives b the first sample's dZ instead of the sum over all N samples."""

    __slots__ = ()

    def backward(self, grad: Any, a: Value, b: Value, out: Value) -> Grads:  # arrays only: np.take
        return grad, np.take(grad, [0], axis=self.sample_axis)


class BiasAveraged(BiasAdd):
    """Backward averages dZ over the samples for b: divides by N a second time (dZ already has the 1/N)."""

    __slots__ = ()

    def backward(self, grad: Any, a: Value, b: Value, out: Value) -> Grads:  # arrays only: .mean
        return grad, grad.mean(axis=self.sample_axis, keepdims=True)


@dataclass(frozen=True)
class Bug:
    """One injectable mistake: where it goes in the graph and what it does wrong."""

    name: str
    role: str  # which op of classifier_loss it replaces: bias_add, exp, log_softmax_sub, mean, neg
    make: Callable[[int], ops.Op]  # sample axis -> the wrong op
    summary: str  # the mistake, as a student would make it
    symptom: str  # what the comparison shows


BUGS: dict[str, Bug] = {
    bug.name: bug
    for bug in (
        Bug(
            "missing-1-over-N",
            "mean",
            lambda _: MeanWithoutOneOverN(),
            "the mean's backward forgets 1/N (dZ = P − Y instead of (P − Y)/N)",
            "every gradient is N times too big; relative error (N−1)/(N+1)",
        ),
        Bug(
            "missing-one-hot",
            "log_softmax_sub",
            lambda _: LogSoftmaxWithoutOneHot(),
            "the −Y never reaches the logits (dZ = P/N instead of (P − Y)/N)",
            "dZ is wrong at every entry and its columns sum to 1/N instead of 0",
        ),
        Bug(
            "bias-not-summed",
            "bias_add",
            BiasFromFirstSample,
            "db is taken from the first sample only instead of summed over the batch",
            "dZ and dW are right, db is not, and db ≠ Σ dZ",
        ),
        Bug(
            "bias-averaged",
            "bias_add",
            BiasAveraged,
            "db = mean of dZ over samples: a second 1/N on top of the one in dZ",
            "db is N times too small, and db ≠ Σ dZ",
        ),
        Bug(
            "sign-flip",
            "neg",
            lambda _: NegWithoutSign(),
            "the minus sign of L = −mean(log p) is dropped in backward",
            "every gradient has the wrong sign; relative error 1",
        ),
        Bug(
            "exp-rule",
            "exp",
            lambda _: ExpWithRuleOne(),
            "d/dx exp(x) is taken as 1 instead of exp(x)",
            "dZ is wrong (P replaced by 1/Σexp), its columns no longer sum to 0",
        ),
    )
}


def get(name: str) -> Bug:
    """The bug called ``name``, or an error listing the names there are."""
    if name not in BUGS:
        raise ValueError(f"inject-bug: unknown bug {name!r}; choose one of {', '.join(BUGS)}")
    return BUGS[name]


def classifier_loss(
    W: Tensor, b: Tensor, X: Tensor, labels: np.ndarray, layout: Layout = "column", bug: str | None = None
) -> tuple[Tensor, Tensor]:
    """Z and the mean cross-entropy L, built op by op as ``functional.cross_entropy`` does.

    With ``bug=None`` the graph is the engine's own (same ops, same order, same
    gradients); with a bug's name, that one op is replaced by its wrong version.
    """
    axis = CLASS_AXIS[layout]
    sample_axis = 1 - axis
    swapped = get(bug) if bug is not None else None

    def op(role: str, correct: Callable[[], ops.Op]) -> ops.Op:
        return swapped.make(sample_axis) if swapped is not None and swapped.role == role else correct()

    product = Tensor._apply(ops.MatMul(), W, X) if layout == "column" else Tensor._apply(ops.MatMul(), X, W)
    Z = Tensor._apply(op("bias_add", ops.Add), product, b)
    Z.name = "Z"
    shift = Z.detach().max(axis=axis, keepdims=True)
    shift.name = "max (detached)"
    shifted = Tensor._apply(ops.Sub(), Z, shift)
    exps = Tensor._apply(op("exp", ops.Exp), shifted)
    log_sum = Tensor._apply(ops.Log(), Tensor._apply(ops.Sum(axis, True), exps))
    log_p = Tensor._apply(op("log_softmax_sub", ops.Sub), shifted, log_sum)
    picked = log_p.gather(axis, np.expand_dims(labels, axis))
    loss = Tensor._apply(op("neg", ops.Neg), Tensor._apply(op("mean", ops.Mean), picked))
    loss.name = "loss"
    return Z, loss
