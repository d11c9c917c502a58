"""How matmul's forward and backward hand their products to NumPy: which way round, and vectors.

The rule is ``dA = dZ Bᵀ`` and ``dB = Aᵀ dZ``; this module only decides how
each product is computed, never what it is.

Which way round (:func:`orientation.turned <tinygrad_softmax.orientation.turned>`).
NumPy hands ``A B`` and ``(Bᵀ Aᵀ)ᵀ`` to the same BLAS routine (gemm), but
``A B`` fills a row-major m×n result and ``(Bᵀ Aᵀ)ᵀ`` a column-major one, which
the BLAS computes with its blocking turned around. Which is faster depends on
the machine (the BLAS kernel, its threads, the shapes and layouts), so it is
measured there, once, by :mod:`tinygrad_softmax.orientation`; small products
keep ``A B`` (and their bits) without measuring.

Vectors (:func:`as_matrices`): NumPy multiplies a vector as a 1-row (on the
left) or 1-column (on the right) matrix, so the rule runs on those matrices
and its results are reshaped back.
"""

from __future__ import annotations

from typing import Any

from . import orientation
from .contracts import Value
from .orientation import SMALL


def product(a: Value, b: Value) -> Any:
    """``a @ b``, computed the faster way round on this machine for matrices (:func:`orientation.turned`)."""
    if a.ndim == 2 == b.ndim and a.shape[0] * a.shape[1] * b.shape[1] >= SMALL and orientation.turned(a, b):
        return (b.T @ a.T).T
    return a @ b


def transposed(a: Value) -> Any:
    """Aᵀ: the last two axes swapped (each matrix of a batch transposed)."""
    return a.T if a.ndim == 2 else a.transpose((*range(a.ndim - 2), a.ndim - 1, a.ndim - 2))


def as_matrices(grad: Value, a: Value, b: Value) -> tuple[Any, Any, Any]:
    """``grad``, ``a``, ``b`` with a vector ``a`` as a 1-row and a vector ``b`` as a 1-column matrix."""
    if a.ndim > 1 and b.ndim > 1:
        return grad, a, b
    if b.ndim == 1:  # first, so that vector · vector (a 0-d grad) works too
        b, grad = b.reshape((b.shape[0], 1)), grad.reshape((*grad.shape, 1))
    if a.ndim == 1:
        a, grad = a.reshape((1, a.shape[0])), grad.reshape((*grad.shape[:-1], 1, grad.shape[-1]))
    return grad, a, b


def as_vectors(da: Any, db: Any, a: Value, b: Value) -> tuple[Any, Any]:
    """The gradients of :func:`as_matrices`' matrices, back in the shapes of the vectors ``a`` and ``b``."""
    if da is not None and a.ndim == 1:
        da = da.reshape((*da.shape[:-2], da.shape[-1]))
    if db is not None and b.ndim == 1:
        db = db.reshape(db.shape[:-1])
    return da, db
