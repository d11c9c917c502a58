"""Softmax and cross-entropy, composed only from the primitive ops.

Nothing here knows the answer ``p − y``: the gradient comes from the chain
rule through ``sub``, ``exp``, ``sum``, ``log``, ``gather`` and ``mean``.
The one exception is ``softmax_cross_entropy``, the fused form of the same
loss, whose backward has ``(P − Y)/N`` written in: fast, but it proves nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .analytic import one_hot
from .tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "softmax_cross_entropy", "one_hot", "STEP_NAMES"]

# The derivation's names for the steps of the loss, short enough for a node of a picture:
# shifted logits, their exp, the sum S, log S, the log-probabilities, the picked entries, their mean −L, L.
STEP_NAMES = ("Z − max", "exp", "S = Σ exp", "log S", "log P", "log P[y]", "−L", "L")


def _named(t: Tensor, name: str) -> Tensor:
    """``t`` with one of the derivation's :data:`STEP_NAMES` (the viewers show it instead of ``t<k>``)."""
    t.name = name
    return t


def _shifted(x: Tensor, axis: int) -> Tensor:
    """x − max(x) along ``axis``, the max detached.

    softmax(x − c) = softmax(x) for any constant c, so subtracting the max
    changes no value and no gradient, but keeps exp() from overflowing.
    """
    shift = x.detach().max(axis=axis, keepdims=True)
    shift.name = "max (detached)"
    return _named(x - shift, STEP_NAMES[0])


def _class_axis(x: Any, axis: Any, who: str) -> tuple[Tensor, int]:
    """``x`` as a Tensor (an ndarray is wrapped) and ``axis`` checked, in ``who``'s words."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    shape = x._data.shape
    if type(axis) is int and -len(shape) <= axis < len(shape) and shape[axis]:
        return x, axis  # the usual case, answered without the checks below
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{who}: axis must be an integer (the class axis), got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{who}: axis {axis} is out of range for a tensor of shape {x.shape}")
    if x.shape[axis] == 0:
        raise ValueError(f"{who}: axis {axis} of shape {x.shape} has no classes to normalise over")
    return x, int(axis)


def softmax(x: Tensor | np.ndarray, axis: int = -1) -> Tensor:
    """p_i = exp(x_i) / Σ_j exp(x_j) along ``axis``."""
    x, axis = _class_axis(x, axis, "softmax")
    e = _shifted(x, axis).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Tensor | np.ndarray, axis: int = -1) -> Tensor:
    """log p_i = x_i − log Σ_j exp(x_j) along ``axis``."""
    x, axis = _class_axis(x, axis, "log_softmax")
    z = _shifted(x, axis)
    e = _named(z.exp(), STEP_NAMES[1])
    log_s = _named(_named(e.sum(axis=axis, keepdims=True), STEP_NAMES[2]).log(), STEP_NAMES[3])
    return _named(z - log_s, STEP_NAMES[4])


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by the width in bytes


def _one_hot(labels: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether ``labels`` looks like Y, the derivation's one-hot matrix: the logits' shape, all 0 or 1.

    cross_entropy wants y, the class of each sample.
    """
    return labels.shape == shape and labels.size > 0 and bool(np.all((labels == 0) | (labels == 1)))


def _one_hot_fix(axis: int) -> str:
    return f"these look like one-hot labels Y; pass the class indices instead, labels.argmax(axis={axis})"


def _label_hint(labels: np.ndarray, shape: tuple[int, ...], axis: int) -> str:
    """What a student most likely meant by labels that are not integers, and the fix."""
    if labels.dtype.kind not in "fb" or labels.size == 0:
        return ""
    if _one_hot(labels, shape):
        return f" of shape {labels.shape}, the logits' shape: {_one_hot_fix(axis)}"
    if np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        return f" holding whole numbers ({labels.ravel()[:3].tolist()}, ...): pass labels.astype(int)"
    return ""


def check_labels(labels: Any, shape: tuple[int, ...], axis: int, who: str) -> np.ndarray:
    """``labels`` as an integer array of ``shape`` without ``axis``, values in [0, C).

    A copy: editing the caller's array after the forward must not move the gradient.
    """
    labels = np.array(labels._data if isinstance(labels, Tensor) else labels)
    if len(shape) == 0:
        raise ValueError(f"{who}: logits must have a class axis, got a 0-d tensor")
    if type(axis) is not int and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
        raise TypeError(f"{who}: axis must be an integer (the class axis), got {axis!r}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{who}: axis {axis} is out of range for logits of shape {shape}")
    axis %= len(shape)
    num_classes = shape[axis]
    if labels.dtype.kind not in "iu":  # signed or unsigned integers
        raise TypeError(
            f"{who}: labels must be integer class indices, got dtype {labels.dtype}"
            + _label_hint(labels, shape, axis)
        )
    expected = shape[:axis] + shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"{who}: labels of shape {labels.shape} do not match logits of shape {shape} "
            f"with the classes on axis {axis} (expected labels of shape {expected})"
            + (f": {_one_hot_fix(axis)}" if _one_hot(labels, shape) else "")
        )
    if labels.size == 0:  # the mean over samples would be 0/0
        raise ValueError(f"{who}: no samples to average over (logits of shape {shape})")
    # One reduction answers the usual case (all in range); the positions are found only on error.
    # Read as unsigned integers of the same width, a negative label is huge, so the max catches it too.
    if labels.view(_UNSIGNED[labels.dtype.itemsize]).max() >= num_classes:
        bad = (labels < 0) | (labels >= num_classes)
        raise IndexError(
            f"{who}: labels must be in [0, {num_classes}) for {num_classes} classes; "
            f"got {labels[bad][:5].tolist()} at positions {np.argwhere(bad)[:5].tolist()}"
        )
    return labels


def cross_entropy(logits: Tensor | np.ndarray, labels: Any, axis: int = -1) -> Tensor:
    """L = −(1/N) Σ_i log softmax(z_i)[y_i]: the mean over samples.

    ``axis`` is the class axis: 0 in the derivation's column layout (C×N logits),
    1 or -1 in the row layout (N×C).
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(logits)
    labels = check_labels(labels, logits.shape, axis, "cross_entropy")
    log_p = log_softmax(logits, axis)
    axis %= logits.ndim
    # `labels` is already our own copy, checked, so the gather op takes it as it is
    # (``Tensor.gather`` would copy and check it once more), with the class axis put back as size 1.
    picks = labels.reshape((*labels.shape[:axis], 1, *labels.shape[axis:]))
    picked = _named(Tensor._apply(ops.Gather(axis, picks, checked=True), log_p), STEP_NAMES[5])
    return _named(-_named(picked.mean(), STEP_NAMES[6]), STEP_NAMES[7])


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
