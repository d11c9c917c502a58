"""The lecture's models and losses to derive: the linear softmax classifier and the two-layer net, in both
layouts, with the cross-entropy written several ways and three losses whose gradient is not p − y."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...tensor import Tensor
from .derivation import Derivation, derive, origins
from .render import Sizes

LossFn = Callable[[Tensor, np.ndarray, int], Tensor]


def _picked_log_p(log_p: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    picks = np.expand_dims(labels, axis)
    return log_p.gather(axis, picks)


def _log_softmax_lse(Z: Tensor, axis: int) -> Tensor:
    """log p = Z − logsumexp(Z), logsumexp(Z) = m + log Σ exp(Z − m)."""
    m = Z.detach().max(axis=axis, keepdims=True)
    m.name = "max (detached)"
    return Z - (m + (Z - m).exp().sum(axis=axis, keepdims=True).log())


def _log_softmax_unshifted(Z: Tensor, axis: int) -> Tensor:
    return Z - Z.exp().sum(axis=axis, keepdims=True).log()


def _one_hot(Z: Tensor, labels: np.ndarray, axis: int) -> np.ndarray:
    from ...analytic import one_hot

    C = Z.shape[axis]
    return one_hot(labels, C, axis=axis)


def _cross_entropy(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    return F.cross_entropy(Z, labels, axis=axis)


def _logsumexp(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    return -_picked_log_p(_log_softmax_lse(Z, axis), labels, axis).mean()


def _no_shift(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    return -_picked_log_p(_log_softmax_unshifted(Z, axis), labels, axis).mean()


def _sum_over_n(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    return -_picked_log_p(F.log_softmax(Z, axis), labels, axis).sum() / labels.size


def _one_hot_product(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    Y = Tensor(_one_hot(Z, labels, axis), name="Y")
    return -(Y * F.log_softmax(Z, axis)).sum() / labels.size


LABEL_SMOOTHING = 0.1


def _label_smoothing(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    C = Z.shape[axis]
    q = Tensor((1 - LABEL_SMOOTHING) * _one_hot(Z, labels, axis) + LABEL_SMOOTHING / C, name="q")
    return -(q * F.log_softmax(Z, axis)).sum() / labels.size


def class_weights(C: int) -> np.ndarray:
    """The weight of each class in the class-weighted loss: 1, 2, 3, ... (fixed: a reproducible formula)."""
    return np.arange(1.0, C + 1.0)


def _class_weighted(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    picked = _picked_log_p(F.log_softmax(Z, axis), labels, axis)
    weights = np.expand_dims(class_weights(Z.shape[axis])[labels], axis)
    w = Tensor(weights, name="w")
    total = Tensor(weights.sum(), name="K")
    return -(w * picked).sum() / total


def _squared_error(Z: Tensor, labels: np.ndarray, axis: int) -> Tensor:
    from ... import functional as F

    Y = Tensor(_one_hot(Z, labels, axis), name="Y")
    return ((F.softmax(Z, axis) - Y) ** 2).sum() / labels.size


@dataclass(frozen=True)
class LossVariant:
    name: str
    summary: str
    fn: LossFn
    legend: tuple[str, ...] = ()


LOSSES: dict[str, LossVariant] = {
    v.name: v
    for v in (
        LossVariant(
            "cross-entropy", "F.cross_entropy: log-softmax (max-shifted), gather, mean", _cross_entropy
        ),
        LossVariant("logsumexp", "log p = Z − logsumexp(Z), logsumexp = m + log Σ exp(Z − m)", _logsumexp),
        LossVariant("no-shift", "log p = Z − log Σ exp(Z), no max shift", _no_shift),
        LossVariant("sum-over-n", "−(Σ log p_y)/N instead of the mean", _sum_over_n),
        LossVariant("one-hot-product", "−Σ(Y ⊙ log p)/N instead of gather", _one_hot_product),
        LossVariant(
            "label-smoothing",
            f"−Σ(q ⊙ log p)/N, q = (1 − ε)·onehot(y) + ε/C, ε = {LABEL_SMOOTHING}",
            _label_smoothing,
            (f"q = (1 − ε)·onehot(y) + ε/C, ε = {LABEL_SMOOTHING}",),
        ),
        LossVariant(
            "class-weighted",
            "−Σₙ w_yₙ log p_yₙ / Σₙ w_yₙ, class weights 1, 2, ..., C",
            _class_weighted,
            ("w = the weight of each sample's class (1, 2, ..., C)", "K = Σₙ w"),
        ),
        LossVariant(
            "squared-error", "Σ(softmax(Z) − Y)²/N, squared error on the softmax output", _squared_error
        ),
    )
}


@dataclass(frozen=True)
class Problem:
    """The sizes and the random seed of one derivation."""

    layout: str = "column"
    model: str = "linear"
    samples: int = 5
    classes: int = 3
    features: int = 4
    hidden: int = 6
    seed: int = 0

    def sizes(self) -> Sizes:
        named = {"N": self.samples, "C": self.classes, "D": self.features}
        if self.model == "mlp":
            named["H"] = self.hidden
        values = list(named.values())
        if len(set(values)) != len(values):
            given = ", ".join(f"{k} = {v}" for k, v in named.items())
            raise ValueError(
                "derive: the sizes must differ from each other, so that each is named in the formula; "
                f"got {given}"
            )
        return Sizes({v: k for k, v in named.items()})


def _tensor(rng: np.random.Generator, shape: tuple[int, ...], name: str, requires_grad: bool) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=requires_grad, name=name)


def derive_model(problem: Problem, loss: str = "cross-entropy") -> Derivation:
    """Build the model on random float64 inputs, record the loss, and derive its formulas."""
    sizes = problem.sizes()
    if loss not in LOSSES:
        raise ValueError(f"derive: unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    if problem.layout not in ("column", "row"):
        raise ValueError(f"derive: layout must be 'column' or 'row', got {problem.layout!r}")
    if problem.model not in ("linear", "mlp"):
        raise ValueError(f"derive: model must be 'linear' or 'mlp', got {problem.model!r}")
    rng = np.random.default_rng(problem.seed)
    N, C, D, H = problem.samples, problem.classes, problem.features, problem.hidden
    labels = rng.integers(0, C, size=N)
    column = problem.layout == "column"
    axis = 0 if column else 1

    # (rows, columns) of each weight, in the layout's orientation
    def weight(name: str, fan_in: int, fan_out: int) -> Tensor:
        return _tensor(rng, (fan_out, fan_in) if column else (fan_in, fan_out), name, True)

    def bias(name: str, size: int) -> Tensor:
        return _tensor(rng, (size, 1) if column else (size,), name, True)

    def affine(W: Tensor, inputs: Tensor, b: Tensor, name: str) -> Tensor:
        out = (W @ inputs if column else inputs @ W) + b
        out.name = name
        return out

    X = Tensor(rng.normal(size=(D, N) if column else (N, D)), name="X")
    letters: dict[str, tuple[str, ...]]
    if problem.model == "linear":
        W, b = weight("W", D, C), bias("b", C)
        Z = affine(W, X, b, "Z")
        wrt = [Z, W, b]
        letters = (
            {"Z": ("c", "n"), "W": ("c", "d"), "b": ("c",)}
            if column
            else {"Z": ("n", "c"), "W": ("d", "c"), "b": ("c",)}
        )
    else:
        W1, b1 = weight("W1", D, H), bias("b1", H)
        W2, b2 = weight("W2", H, C), bias("b2", C)
        Z1 = affine(W1, X, b1, "Z1")
        Hid = Z1.relu()
        Hid.name = "H"
        Z = affine(W2, Hid, b2, "Z2")
        wrt = [Z, W2, b2, Hid, Z1, W1, b1]
        if column:
            letters = {
                "Z2": ("c", "n"),
                "W2": ("c", "h"),
                "b2": ("c",),
                "H": ("h", "n"),
                "Z1": ("h", "n"),
                "W1": ("h", "d"),
                "b1": ("h",),
            }
        else:
            letters = {
                "Z2": ("n", "c"),
                "W2": ("h", "c"),
                "b2": ("c",),
                "H": ("n", "h"),
                "Z1": ("n", "h"),
                "W1": ("d", "h"),
                "b1": ("h",),
            }
    variant = LOSSES[loss]
    L = variant.fn(Z, labels, axis)
    model = "the linear softmax classifier" if problem.model == "linear" else "the two-layer net"
    title = f"{model}, {problem.layout} layout, {variant.name}"
    derivation = derive(L, wrt, axis, sizes, title, letters)
    derivation.notes.extend(variant.legend)
    derivation.origins.extend(origins(L, [t for t in wrt if t.grad_fn is None], sizes))
    return derivation
