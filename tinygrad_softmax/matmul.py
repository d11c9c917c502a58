"""How matmul's forward and backward hand their products to NumPy: which way round, and vectors.

The rule is ``dA = dZ Bᵀ`` and ``dB = Aᵀ dZ``; this module only decides how
each product is computed, never what it is.

Which way round (:func:`rows_first_is_slow`). NumPy hands ``A B`` and
``(Bᵀ Aᵀ)ᵀ`` to the same BLAS routine (gemm), but ``A B`` fills a row-major
m×n result and ``(Bᵀ Aᵀ)ᵀ`` a column-major one, which OpenBLAS computes with
its blocking turned around. Measured (OpenBLAS, 1 thread, float64, every mix
of C-ordered operands and ``.T`` views): for a wide, short result (m ≤ 32
rows, m < n) the turned product takes 0.55–0.94 of the time, e.g. the
derivation's ``W X`` at 10×784 by 784×256: 0.12 ms instead of 0.20 ms, and
``dZ Xᵀ`` at 10×256 by 256×784: 0.13 ms instead of 0.24 ms; for a tall,
narrow result (784×10) it takes 1.1–1.8 times as long, and at 100×3072×1024
the two differ by less than the noise (±10%). Below about a million
multiply-adds the call overhead dominates, so small products keep ``A B``
(and their bits).

Vectors (:func:`as_matrices`): NumPy multiplies a vector as a 1-row (on the
left) or 1-column (on the right) matrix, so the rule runs on those matrices
and its results are reshaped back.
"""

from __future__ import annotations

from typing import Any

from .contracts import Value


def rows_first_is_slow(m: int, k: int, n: int) -> bool:
    """Whether ``(Bᵀ Aᵀ)ᵀ`` beats ``A B`` for an m×k by k×n product (see the module's docstring)."""
    return m <= 32 and m < n and m * k * n >= 1 << 20


def product(a: Value, b: Value) -> Any:
    """``a @ b``, computed the faster way round for matrices (:func:`rows_first_is_slow`)."""
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) == 2 == len(b_shape) and rows_first_is_slow(a_shape[0], a_shape[1], b_shape[1]):
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
