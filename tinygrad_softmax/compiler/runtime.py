"""What the generated program calls besides NumPy: three small adjoint helpers and the fused loss.

The program's namespace is :data:`RUNTIME` plus the program's own constants;
everything else a line does is a NumPy call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops

_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def picks(index: np.ndarray, axis: int, size: int, grid: tuple[Any, ...]) -> tuple[Any, ...]:
    """The positions ``gather`` reads, with this call's labels as ``index`` along ``axis``.

    ``grid`` holds the running positions 0, 1, 2, ... along the other axes
    (they depend on the shapes only, so the program keeps them). The labels are
    checked: NumPy would wrap a negative one around.
    """
    if index.size <= 16:  # Python's min and max are quicker than NumPy's on a few labels
        values = index.ravel().tolist()
        outside = bool(values) and (min(values) < 0 or max(values) >= size)
    else:  # one pass for both ends: read as unsigned, a negative label is ≥ 2⁶³, past any size
        unsigned = index.view(_UNSIGNED[index.dtype]) if index.dtype in _UNSIGNED else index
        outside = bool(unsigned.max() >= size)
    if outside:
        _outside(index, axis, size)
    return (*grid[:axis], index, *grid[axis + 1 :])


def _outside(index: np.ndarray, axis: int, size: int) -> None:
    raise IndexError(
        f"gather: index values must be in [0, {size}) along axis {axis}; "
        f"got values from {index.min()} to {index.max()}"
    )


def onehot_labels(index: np.ndarray, axis: int, size: int, classes: np.ndarray) -> np.ndarray:
    """onehot(labels): True at each label's class, by comparing the labels with ``classes``.

    ``classes`` holds 0, 1, ..., size − 1 along ``axis`` (1 elsewhere). The comparison also
    checks the labels: each line has exactly one True if and only if its label is in [0, size).
    """
    hot = np.equal(classes, index)
    if np.count_nonzero(hot) != index.size:
        _outside(index, axis, size)
    return hot


def picks_onehot(
    index: np.ndarray, axis: int, size: int, grid: tuple[Any, ...], classes: np.ndarray
) -> tuple[tuple[Any, ...], np.ndarray]:
    """:func:`picks` and :func:`onehot_labels` in one: the positions, and the one-hot that checks them."""
    return (*grid[:axis], index, *grid[axis + 1 :]), onehot_labels(index, axis, size, classes)


def scatter_add(
    values: np.ndarray, positions: tuple[np.ndarray, ...], shape: tuple[int, ...], unique: bool
) -> Any:
    """Zeros of ``shape`` with ``values`` added at ``positions``: gather's adjoint, as ``Gather.scatter``."""
    out = np.zeros(shape, dtype=values.dtype)
    if unique:  # one pick per line: no position repeats, so assigning is adding
        out[positions] = values
    else:
        np.add.at(out, positions, values)
    return out


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray, axis: int) -> Any:
    """The fused loss's forward, run by the op itself."""
    return ops.SoftmaxCrossEntropy(axis, labels).forward(z)


def onehot(positions: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """onehot(y): 1 at each line's label (``positions``, as ``picks`` gives them), 0 elsewhere."""
    out = np.zeros(shape)
    out[positions] = 1.0
    return out


def softmax(a: np.ndarray, axis: int) -> Any:
    """softmax(a) along ``axis``, shifted by the maximum."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


RUNTIME: dict[str, Any] = {
    "np": np,
    "spread": ops.spread,
    "picks": picks,
    "picks_onehot": picks_onehot,
    "onehot_labels": onehot_labels,
    "scatter_add": scatter_add,
    "softmax_cross_entropy": softmax_cross_entropy,
    "onehot": onehot,
    "softmax": softmax,
}
