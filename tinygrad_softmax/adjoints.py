"""The adjoints that are not one-liners, on plain arrays (``ops.py`` records them as ops on Tensors).

- :func:`unbroadcast`, the adjoint of broadcasting: the derivation's ``db = Σ_i dZ[:, i]``;
- :func:`spread`, the adjoint of a sum: a gradient copied back along the summed axes;
- :func:`scatter`, the adjoint of picking entries (gather): a gradient added back where they were picked.
"""

from __future__ import annotations

import numpy as np

from . import checks

Array = np.ndarray


def picked_positions(index: Array, axis: int) -> tuple[Array, ...]:
    """NumPy fancy indices for ``x[..., index, ...]`` along ``axis`` (PyTorch's gather): ``index``
    along ``axis``, the running position 0, 1, 2, ... along every other axis."""
    ndim = index.ndim
    return tuple(
        index if d == axis else np.arange(n).reshape((n,) + (1,) * (ndim - d - 1))
        for d, n in enumerate(index.shape)
    )


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` back down to ``shape``: the adjoint of NumPy broadcasting.

    If ``b`` of shape (C, 1) was broadcast across N columns in ``Z = W X + b``,
    each of its entries fed N outputs, so its gradient is the sum of those N
    gradients. This line is the derivation's ``db = Σ_i dZ[:, i]``.
    """
    given, extra = grad.shape, grad.ndim - len(shape)
    if extra > 0:  # leading axes that broadcasting added
        grad = grad.sum(axis=tuple(range(extra)))
    elif extra < 0:  # fewer axes than the input: NumPy reads them as leading size-1 axes
        grad = grad.reshape((1,) * -extra + grad.shape)
    stretched = tuple([i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1])
    if stretched:  # size-1 axes that broadcasting stretched
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad if grad.shape == shape else checks.sums_down_to(given, shape)


def spread(grad: Array, shape: tuple[int, ...]) -> Array:
    """``grad`` copied along its size-1 (or missing leading) axes out to ``shape``: an array of its own."""
    out = np.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


def scatter(values: Array, positions: tuple[Array, ...], shape: tuple[int, ...], unique: bool) -> Array:
    """Zeros of ``shape`` with ``values`` added at ``positions``: ``np.add.at`` adds where a position
    repeats; ``unique`` positions (one pick per line, as labels) are just assigned, faster."""
    out = np.zeros(shape, dtype=values.dtype)
    if unique:
        out[positions] = values
    else:
        np.add.at(out, positions, values)
    return out
