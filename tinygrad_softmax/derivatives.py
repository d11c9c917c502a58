"""Derivatives of whole functions, built on the backward walk.

- :func:`grad`: the gradient of an output with respect to chosen inputs, as
  new Tensors (like ``torch.autograd.grad``); with ``create_graph=True`` the
  backward pass is itself recorded, so the result can be differentiated again.
- :func:`jacobian`: one reverse-mode walk per output element, or one
  forward-mode product per input element.
- :func:`hessian` and :func:`hvp`: the gradient of the gradient.
- :func:`jvp`: forward mode, obtained from reverse mode by differentiating twice.

What is only read here (a size, a dtype, a starting gradient) is read from a
tensor's ``_data``: ``.data`` would first copy an array a graph holds (copy on
write) and leave the tensor to be copied again by the next op that records it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from . import engine
from .tensor import Tensor, _as_float_array, enable_grad, is_grad_enabled

__all__ = ["grad", "jacobian", "hessian", "hvp", "jvp"]

Function = Callable[[Tensor], Tensor]


def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
) -> tuple[Tensor, ...]:
    """d(output)/d(input) for each input, as new Tensors; no ``.grad`` is touched.

    ``grad_output`` is ∂L/∂output for some L (where the walk starts, like
    ``backward(grad)``); it may be left out when ``output`` is a scalar. The
    result for each input then has the input's shape: ``Jᵀ grad_output``.

    With ``create_graph=False`` the walk is the first-order one of
    ``backward()`` and the results are plain leaves. With ``create_graph=True``
    every backward rule runs on Tensors and its ops are recorded, so the
    results carry a graph back to the inputs (and to ``grad_output``, when it
    requires grad) and can be differentiated again: this is how
    :func:`hessian`, :func:`hvp` and :func:`jvp` work.

    An input that ``output`` does not depend on gets zeros.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"grad: output must be a Tensor, got {type(output).__name__}")
    sources = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not sources:
        raise ValueError("grad: no inputs given")
    for position, source in enumerate(sources):
        if not isinstance(source, Tensor):
            raise TypeError(f"grad: input {position} must be a Tensor, got {type(source).__name__}")
        if not source.requires_grad:
            raise ValueError(
                f"grad: input {position} ({source.name or 'unnamed'}, shape {source.shape}) does not "
                "require grad; create it with requires_grad=True"
            )
    start = _start(output, grad_output)
    results: list[Any] = [None] * len(sources)
    if output.requires_grad:  # otherwise it depends on no input, and every gradient is zero
        if create_graph:
            with enable_grad():
                start_tensor = start if isinstance(start, Tensor) else Tensor._wrap(start)
                results = engine.gradients(output, start_tensor, sources, create_graph=True)
        else:
            results = engine.gradients(output, start._data if isinstance(start, Tensor) else start, sources)
    out = []
    for source, g in zip(sources, results):
        if g is None:
            out.append(Tensor._wrap(np.zeros_like(source._data)))
        elif isinstance(g, Tensor):
            out.append(g)
        else:
            # An array of its own in the input's dtype (a rule may hand back a view or a shared array).
            g = np.array(g, dtype=source.dtype, copy=True)
            out.append(Tensor._wrap(g))
    return tuple(out)


def _start(output: Tensor, grad_output: Any) -> Any:
    """The walk's starting gradient: ones for a scalar, else ``grad_output`` checked against the shape."""
    if grad_output is None:
        if output._data.size != 1:
            raise ValueError(
                f"grad: output has shape {output.shape}, not a scalar; pass grad_output= of that shape"
            )
        return np.ones(output.shape, dtype=output.dtype)
    if isinstance(grad_output, Tensor):
        start: Any = grad_output
    else:
        start = _as_float_array(grad_output, "grad").astype(output.dtype, copy=True)
    if start.shape != output.shape:
        raise ValueError(f"grad: grad_output has shape {start.shape} but the output has shape {output.shape}")
    return start


def _leaf(x: Tensor | Any, who: str) -> Tensor:
    """A fresh leaf holding ``x``'s data, so that no tensor the caller holds gains a gradient."""
    if not is_grad_enabled():
        raise RuntimeError(f"{who}: called inside no_grad(), where no graph is recorded to walk back")
    data = x._data if isinstance(x, Tensor) else x  # Tensor() copies it
    return Tensor(data, requires_grad=True, name=x.name if isinstance(x, Tensor) and x.name else "x")


def _call(f: Function, leaf: Tensor, who: str) -> Tensor:
    out = f(leaf)
    if not isinstance(out, Tensor):
        raise TypeError(f"{who}: f must return a Tensor, got {type(out).__name__}")
    return out


def _scalar(f: Function, leaf: Tensor, who: str) -> Tensor:
    out = _call(f, leaf, who)
    if out._data.size != 1:
        raise ValueError(f"{who}: f must return a scalar, got shape {out.shape}")
    return out


def _direction(v: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
    array = _as_float_array(v._data if isinstance(v, Tensor) else v, who)
    if array.shape != shape:
        raise ValueError(f"{who}: v has shape {array.shape} but x has shape {shape}")
    return array


def jacobian(f: Function, x: Tensor | Any, mode: Literal["reverse", "forward"] = "reverse") -> np.ndarray:
    """J[i, j] = ∂f(x)[i] / ∂x[j], one row or one column at a time.

    ``mode="reverse"``: row i is the gradient of ``out[i]`` alone, one
    backward walk (a vector-Jacobian product ``e_iᵀ J``) per output element.
    ``mode="forward"``: column j is the Jacobian-vector product ``J e_j``, one
    per input element (see :func:`jvp`). Same matrix; the cost differs: reverse
    mode pays per output, forward mode per input. A loss has one output and
    many inputs, which is why backpropagation is reverse mode.

    The result has shape ``out.shape + x.shape`` (PyTorch's convention):
    ``J[i..., j...]`` is the derivative of ``out[i...]`` with respect to
    ``x[j...]``; ``J.reshape(out.size, x.size)`` is the usual matrix.
    ``f`` gets a fresh leaf holding ``x``'s data, so neither ``x`` nor any
    tensor ``f`` uses gains a ``.grad``.
    """
    if mode not in ("reverse", "forward"):
        raise ValueError(f"jacobian: mode must be 'reverse' or 'forward', got {mode!r}")
    leaf = _leaf(x, "jacobian")
    out = _call(f, leaf, "jacobian")
    matrix = np.zeros((out._data.size, leaf._data.size), dtype=np.result_type(out.dtype, leaf.dtype))
    if out.requires_grad:  # otherwise out does not depend on x at all, and J = 0
        if mode == "reverse":
            for i in range(out._data.size):
                one_hot = np.zeros(out._data.size, dtype=out.dtype)
                one_hot[i] = 1
                (row,) = grad(out, leaf, one_hot.reshape(out.shape))
                matrix[i] = row._data.reshape(-1)
        else:
            transposed = _TransposedProduct(out, leaf)
            for j in range(leaf._data.size):
                tangent = np.zeros(leaf._data.size, dtype=leaf.dtype)
                tangent[j] = 1
                matrix[:, j] = transposed.apply(tangent.reshape(leaf.shape)).reshape(-1)
    return matrix.reshape(out.shape + leaf.shape)


class _TransposedProduct:
    """``u ↦ Jᵀu`` recorded once as a graph, for the double-VJP trick.

    ``Jᵀu`` is linear in ``u``, so its own vector-Jacobian product with ``v``,
    ``d⟨Jᵀu, v⟩/du``, is ``J v``: a Jacobian-vector product (forward mode)
    made of two reverse-mode walks. The first walk, recorded, is done once
    here; :meth:`apply` does the second, once per ``v``.
    """

    def __init__(self, out: Tensor, leaf: Tensor) -> None:
        # u's value does not matter (Jᵀu is linear in it); zeros make that plain.
        self.u = Tensor(np.zeros(out.shape, dtype=out.dtype), requires_grad=True, name="u")
        (self.vjp,) = grad(out, leaf, grad_output=self.u, create_graph=True)

    def apply(self, v: np.ndarray) -> np.ndarray:
        if not self.vjp.requires_grad:  # Jᵀu does not depend on u: J = 0
            return np.zeros(self.u.shape, dtype=self.u.dtype)
        (jv,) = grad(self.vjp, self.u, grad_output=v)
        return jv.data


def jvp(f: Function, x: Tensor | Any, v: Any) -> np.ndarray:
    """J v, the Jacobian of ``f`` at ``x`` times the direction ``v``: forward mode, from reverse mode.

    The double-VJP trick. Reverse mode gives ``u ↦ Jᵀu`` for any ``u``. That
    map is linear in ``u``, so differentiating ``⟨Jᵀu, v⟩`` with respect to
    ``u`` gives ``J v``. The engine records the first walk (``grad(...,
    grad_output=u, create_graph=True)``) and walks back through it once more.
    The result has ``f(x)``'s shape; ``v`` has ``x``'s.
    """
    leaf = _leaf(x, "jvp")
    direction = _direction(v, leaf.shape, "jvp")
    out = _call(f, leaf, "jvp")
    if not out.requires_grad:
        return np.zeros(out.shape, dtype=out.dtype)
    return _TransposedProduct(out, leaf).apply(direction.astype(leaf.dtype))


def hessian(f: Function, x: Tensor | Any) -> np.ndarray:
    """H[i, j] = ∂²f / ∂x[i] ∂x[j] for a scalar ``f``: the Jacobian of the gradient.

    The gradient is computed once with ``create_graph=True``; row i of H is
    then the gradient of its i-th entry, one more backward walk per entry.
    The result has shape ``x.shape + x.shape``: for a matrix ``W``,
    ``H[i, j, k, l] = ∂²f / ∂W[i, j] ∂W[k, l]``, and
    ``H.reshape(W.size, W.size)`` is the matrix for ``vec(W)`` taken row by
    row (NumPy's order).
    """
    leaf = _leaf(x, "hessian")
    out = _scalar(f, leaf, "hessian")
    size = leaf._data.size
    matrix = np.zeros((size, size), dtype=leaf.dtype)
    if out.requires_grad:
        (gradient,) = grad(out, leaf, create_graph=True)
        if gradient.requires_grad:  # otherwise the gradient is constant and H = 0
            for i in range(size):
                one_hot = np.zeros(size, dtype=leaf.dtype)
                one_hot[i] = 1
                (row,) = grad(gradient, leaf, one_hot.reshape(leaf.shape))
                matrix[i] = row._data.reshape(-1)
    return matrix.reshape(leaf.shape + leaf.shape)


def hvp(f: Function, x: Tensor | Any, v: Any) -> np.ndarray:
    """H v for a scalar ``f``, without forming H: two backward walks, whatever the size of x.

    ``g = ∇f`` is recorded (``create_graph=True``); the gradient of ``⟨g, v⟩``
    is ``Hᵀ v = H v`` (H is symmetric). Shape: ``x``'s.
    """
    leaf = _leaf(x, "hvp")
    direction = _direction(v, leaf.shape, "hvp")
    out = _scalar(f, leaf, "hvp")
    if not out.requires_grad:
        return np.zeros(leaf.shape, dtype=leaf.dtype)
    (gradient,) = grad(out, leaf, create_graph=True)
    if not gradient.requires_grad:
        return np.zeros(leaf.shape, dtype=leaf.dtype)
    (product,) = grad(gradient, leaf, grad_output=direction.astype(leaf.dtype))
    return product.data
