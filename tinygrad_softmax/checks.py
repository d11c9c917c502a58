"""The checks that only a mistake fails, each named after what it checks.

The engine asks a fast question first (is the axis a plain int in range? are
all labels below C?) and calls these only when that question fails; each then
finds the mistake and raises an error naming the op and the shapes or values.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def checked_axes(name: str, axis: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """An axis argument (None, an int, a tuple of ints) as a sorted tuple of axes counted from 0."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)) or not all(
        isinstance(ax, (int, np.integer)) and not isinstance(ax, bool) for ax in axes
    ):
        raise TypeError(f"{name}: axis must be an integer or a tuple of integers, got {axis!r}")
    out = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{name}: axis {axis!r} is out of range for a tensor of shape {shape}")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def reduced_axes_have_entries(name: str, verb: str, axis: Any, shape: tuple[int, ...]) -> ValueError:
    """The error for a reduction with no identity (max, mean) over an axis of size 0."""
    return ValueError(f"{name}: cannot {verb} over axis {axis!r} of shape {shape}: it has no entries")


def permutation(axes: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``axes`` as a permutation of the axes of ``shape`` counted from 0 (negative ones from the end)."""
    ndim = len(shape)
    if sorted(a % ndim if -ndim <= a < ndim else a for a in axes) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the axes of shape {shape}")
    return tuple(a % ndim for a in axes)


def sums_down_to(given: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Raise: a gradient of shape ``given`` does not sum down to ``shape`` over broadcast axes."""
    raise ValueError(f"unbroadcast: a gradient of shape {given} does not sum down to shape {shape}")


def class_axis(axis: Any, shape: tuple[int, ...], who: str) -> int:
    """The class axis of logits of ``shape``: an integer in range, of a non-empty axis."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{who}: axis must be an integer (the class axis), got {axis!r}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{who}: axis {axis} is out of range for a tensor of shape {shape}")
    if shape[axis] == 0:
        raise ValueError(f"{who}: axis {axis} of shape {shape} has no classes to normalise over")
    return int(axis)


def broadcastable(name: str, a: np.ndarray, b: np.ndarray) -> ValueError:
    """The error for two shapes that do not broadcast together."""
    return ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together")


def aligned_for_matmul(a: np.ndarray, b: np.ndarray) -> ValueError:
    """The error for a matrix product whose shapes do not fit: inner dimensions, or batch dimensions."""
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        return ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned "
            f"(A's last dimension must equal B's {'second-to-' if b.ndim > 1 else ''}"
            "last dimension)"
        )
    return ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast")


def index_in_range(index: np.ndarray, shape: tuple[int, ...], axis: int) -> IndexError:
    """The error for gather indices outside [0, size) along ``axis``."""
    return IndexError(
        f"gather: index values must be in [0, {shape[axis]}) along axis {axis} "
        f"of input shape {shape}; got values from {index.min()} to {index.max()}"
    )


def gather_index(index: np.ndarray, axis: Any, shape: tuple[int, ...]) -> int:
    """Raise unless ``index`` can pick from an input of ``shape`` along ``axis``; return the axis from 0."""
    if index.dtype.kind not in "iu":  # signed or unsigned integers
        raise TypeError(f"gather: index must hold integers, got dtype {index.dtype}")
    if index.ndim != len(shape):
        raise ValueError(
            f"gather: index must have the input's ndim {len(shape)}, "
            f"got index shape {index.shape} for input shape {shape}"
        )
    axis = checked_axes("gather", axis, shape)[0]
    for d, (n_index, n_x) in enumerate(zip(index.shape, shape)):
        if d != axis and n_index > n_x:
            raise ValueError(
                f"gather: index shape {index.shape} is larger than input shape {shape} in dimension {d}"
            )
    # NumPy itself rejects an index ≥ the size, but would wrap a negative one around.
    if index.size and index.min() < 0:
        raise index_in_range(index, shape, axis)
    return axis


UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by the width in bytes


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


def labels_in_range(labels: np.ndarray, shape: tuple[int, ...], axis: Any, who: str) -> np.ndarray:
    """``labels`` unchanged if they are integer classes in [0, C), one per sample of logits of ``shape``."""
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
    # Read as unsigned integers of the same width, a negative label is huge, so the max catches it too.
    if labels.view(UNSIGNED[labels.dtype.itemsize]).max() >= num_classes:
        bad = (labels < 0) | (labels >= num_classes)
        raise IndexError(
            f"{who}: labels must be in [0, {num_classes}) for {num_classes} classes; "
            f"got {labels[bad][:5].tolist()} at positions {np.argwhere(bad)[:5].tolist()}"
        )
    return labels
