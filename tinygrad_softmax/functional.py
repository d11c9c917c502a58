"""Softmax and cross-entropy, composed only from the primitive ops.

Nothing here knows the answer ``p − y``: the gradient comes from the chain
rule through ``sub``, ``exp``, ``sum``, ``log``, ``gather`` and ``mean``.
The one exception is ``softmax_cross_entropy``, the fused form of the same
loss, whose backward has ``(P − Y)/N`` written in: fast, but it proves nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import checks, ops
from .analytic import one_hot
from .tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "softmax_cross_entropy", "one_hot"]


def _shifted(x: Tensor, axis: int) -> Tensor:
    """x − max(x) along ``axis``, the max detached: softmax(x − c) = softmax(x) for any constant c,
    so it changes no value and no gradient, but keeps exp() from overflowing."""
    shift = x.detach().max(axis=axis, keepdims=True)
    shift.name = "max (detached)"
    return x - shift


def _class_axis(x: Any, axis: Any, who: str) -> tuple[Tensor, int]:
    """``x`` as a Tensor (an ndarray is wrapped) and ``axis``, an int in range of a non-empty axis."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    shape = x._data.shape
    if type(axis) is int and -len(shape) <= axis < len(shape) and shape[axis]:
        return x, axis
    return x, checks.class_axis(axis, shape, who)


def softmax(x: Tensor | np.ndarray, axis: int = -1) -> Tensor:
    """p_i = exp(x_i) / Σ_j exp(x_j) along ``axis``."""
    x, axis = _class_axis(x, axis, "softmax")
    e = _shifted(x, axis).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Tensor | np.ndarray, axis: int = -1) -> Tensor:
    """log p_i = x_i − log Σ_j exp(x_j) along ``axis``."""
    x, axis = _class_axis(x, axis, "log_softmax")
    z = _shifted(x, axis)
    return z - z.exp().sum(axis=axis, keepdims=True).log()


def check_labels(labels: Any, shape: tuple[int, ...], axis: int, who: str) -> np.ndarray:
    """``labels`` as our own integer array (a copy), one class in [0, C) per sample of logits of ``shape``."""
    labels = np.array(labels._data if isinstance(labels, Tensor) else labels)
    n = len(shape)
    if type(axis) is int and -n <= axis < n and labels.dtype.kind in "iu" and labels.size:
        axis %= n
        # Read as unsigned integers of the same width, a negative label is huge: one max checks both ends.
        in_range = labels.view(checks.UNSIGNED[labels.dtype.itemsize]).max() < shape[axis]
        if labels.shape == shape[:axis] + shape[axis + 1 :] and in_range:
            return labels
    return checks.labels_in_range(labels, shape, axis, who)  # it names the mistake


def cross_entropy(logits: Tensor | np.ndarray, labels: Any, axis: int = -1) -> Tensor:
    """L = −(1/N) Σ_i log softmax(z_i)[y_i], the mean over samples; ``axis`` is the class axis:
    0 in the derivation's column layout (C×N logits), 1 or -1 in the row layout (N×C)."""
    logits = logits if isinstance(logits, Tensor) else Tensor(logits)
    labels = check_labels(labels, logits.shape, axis, "cross_entropy")
    log_p = log_softmax(logits, axis)
    axis %= logits.ndim
    # Our own checked copy of the labels, with the class axis put back as size 1, is y's positions.
    picks = labels.reshape((*labels.shape[:axis], 1, *labels.shape[axis:]))
    picked = Tensor._apply(ops.Gather(axis, picks), log_p)
    return -picked.mean()


def softmax_cross_entropy(logits: Tensor, labels: Any, axis: int = -1) -> Tensor:
    """The same loss as :func:`cross_entropy`, as one fused op with dL/dz = (P − Y)/N written in.

    Same value and same gradient, a fraction of the ops; the graph shows one
    ``softmax_cross_entropy`` node instead of the chain rule at work, so the
    lecture keeps :func:`cross_entropy`.
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(logits)
    labels = check_labels(labels, logits.shape, axis, "softmax_cross_entropy")
    return Tensor._apply(ops.SoftmaxCrossEntropy(axis % logits.ndim, labels), logits)
