"""The closed-form results, in plain NumPy: the independent witness.

Nothing here imports the engine. Each function is one formula of the
derivation in ``docs/derivation.md``:

    P  = softmax(Z)               L  = −(1/N) Σ_i log P[y_i, i]
    dZ = (P − Y) / N              dW = dZ Xᵀ   (column)   or  Xᵀ dZ (row)
    db = Σ_i dZ[:, i]             dX = Wᵀ dZ   (column)   or  dZ Wᵀ (row)

Column layout (the derivation's): X is D×N, W is C×D, b is C×1, Z = W X + b is C×N,
classes on axis 0. Row layout: X is N×D, W is D×C, b is (C,), Z = X W + b is
N×C, classes on axis 1.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

Layout = Literal["column", "row"]
CLASS_AXIS = {"column": 0, "row": 1}


def _class_axis(layout: str) -> int:
    if layout not in CLASS_AXIS:
        raise ValueError(f"layout must be 'column' or 'row', got {layout!r}")
    return CLASS_AXIS[layout]


def one_hot(labels: np.ndarray, num_classes: int, axis: int = -1) -> np.ndarray:
    """Y with Y[..., y, ...] = 1 along a new class ``axis``, 0 elsewhere (float64)."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise IndexError(
            f"one_hot: labels must be in [0, {num_classes}); got values from {labels.min()} to {labels.max()}"
        )
    y = (labels[..., None] == np.arange(num_classes)).astype(np.float64)
    return np.moveaxis(y, -1, axis)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """p_i = exp(z_i) / Σ_j exp(z_j), with the max subtracted first for stability."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def cross_entropy(z: np.ndarray, labels: np.ndarray, axis: int = -1) -> float:
    """L = −(1/N) Σ_i log P[y_i, i], N the number of samples."""
    shifted = z - z.max(axis=axis, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    y = one_hot(labels, z.shape[axis], axis)
    return float(-(log_p * y).sum() / np.asarray(labels).size)


def logits_grad(z: np.ndarray, labels: np.ndarray, axis: int = -1) -> np.ndarray:
    """dZ = (P − Y) / N: per sample, the derivation's dz = p − y, averaged over the batch."""
    p = softmax(z, axis)
    y = one_hot(labels, z.shape[axis], axis)
    return (p - y) / np.asarray(labels).size


def weights_grad(dz: np.ndarray, x: np.ndarray, layout: Layout = "column") -> np.ndarray:
    """dW = dZ Xᵀ in the column layout (C×D); Xᵀ dZ in the row layout (D×C)."""
    return dz @ x.T if _class_axis(layout) == 0 else x.T @ dz


def bias_grad(dz: np.ndarray, layout: Layout = "column") -> np.ndarray:
    """db = Σ_i dZ over the samples: C×1 in the column layout, (C,) in the row layout."""
    return dz.sum(axis=1, keepdims=True) if _class_axis(layout) == 0 else dz.sum(axis=0)


def inputs_grad(dz: np.ndarray, w: np.ndarray, layout: Layout = "column") -> np.ndarray:
    """dX = Wᵀ dZ in the column layout (D×N); dZ Wᵀ in the row layout (N×D)."""
    return w.T @ dz if _class_axis(layout) == 0 else dz @ w.T


def logits(w: np.ndarray, b: np.ndarray, x: np.ndarray, layout: Layout = "column") -> np.ndarray:
    """Z = W X + b (column) or Z = X W + b (row)."""
    return w @ x + b if _class_axis(layout) == 0 else x @ w + b


class LinearClassifierGrads(NamedTuple):
    """What the derivation gives for one batch: the loss and the three gradients."""

    loss: float
    dZ: np.ndarray
    dW: np.ndarray
    db: np.ndarray


def linear_classifier(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, labels: np.ndarray, layout: Layout = "column"
) -> LinearClassifierGrads:
    """Loss, dZ, dW and db of the softmax linear classifier, by the closed form."""
    axis = _class_axis(layout)
    z = logits(W, b, X, layout)
    dz = logits_grad(z, labels, axis)
    db = bias_grad(dz, layout).reshape(np.shape(b))
    return LinearClassifierGrads(cross_entropy(z, labels, axis), dz, weights_grad(dz, X, layout), db)


# ---------------------------------------------------------------- second order (docs/second-order.md)


def logits_hessian(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """∂²ℓ/∂z² = diag(p) − p pᵀ for each sample, ℓ = −log p_y its cross-entropy.

    Differentiate ``dz = p − y`` once more: y is a constant and ∂p/∂z is the
    softmax Jacobian, so the Hessian is that Jacobian, the same for every
    label. The classes of ``z`` are on ``axis``; the result has the other axes
    first (one C×C matrix per sample): shape (C, C) for a single vector z,
    (N, C, C) for a batch.
    """
    p = np.moveaxis(softmax(z, axis), axis, -1)
    return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]


def weights_hessian(W: np.ndarray, b: np.ndarray, X: np.ndarray, layout: Layout = "column") -> np.ndarray:
    """The Hessian of the mean cross-entropy with respect to W, as a ``W.shape + W.shape`` array.

    Column layout (W C×D, x_n the n-th column of X):
    ``∂²L/∂W_ij ∂W_kl = (1/N) Σ_n (δ_ik p_in − p_in p_kn) x_jn x_ln``, i.e. for
    vec(W) taken row by row, ``H = (1/N) Σ_n (diag(p_n) − p_n p_nᵀ) ⊗ (x_n x_nᵀ)``.
    Row layout (W D×C, the feature index first): the Kronecker factors swap,
    ``H = (1/N) Σ_n (x_n x_nᵀ) ⊗ (diag(p_n) − p_n p_nᵀ)``. The labels drop out.
    """
    axis = _class_axis(layout)
    z = logits(W, b, X, layout)
    S = logits_hessian(z, axis)  # N×C×C
    n = S.shape[0]
    if axis == 0:
        return np.einsum("nik,jn,ln->ijkl", S, X, X) / n
    return np.einsum("nik,nj,nl->jilk", S, X, X) / n
