"""tinygrad_softmax: a tiny reverse-mode autograd engine that derives dz = p − y by itself.

``import tinygrad_softmax`` loads the engine only (NumPy and nothing else). The
lecture tools (``viz``, ``explain``, ``datasets``, ...) live in
``tinygrad_softmax.lecture`` and the benchmark in ``tinygrad_softmax.bench``;
both stay reachable from here under their usual names, imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import analytic, functional, gradcheck, nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .derivatives import grad, hessian, hvp, jacobian, jvp
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "AnomalyError"]
__all__ += ["grad", "jacobian", "hessian", "hvp", "jvp", "compile", "CompileError"]
__all__ += ["functional", "analytic", "gradcheck", "nn", "optim", "explain", "viz"]
__version__ = "0.1.0"

# Names that live outside the core, imported only when first used, so that the
# engine never loads Graphviz or matplotlib on its own.
_LAZY = {
    "viz": ".lecture.views.viz",
    "ledger": ".lecture.views.ledger",
    "compare": ".lecture.lessons.compare",
    "bugs": ".lecture.lessons.bugs",
    "lab": ".lecture.lessons.lab",
    "train": ".lecture.training.train",
    "datasets": ".lecture.training.datasets",
    "demo": ".lecture.demo",
    "lecture": ".lecture",
    "bench": ".bench",
}


if TYPE_CHECKING:
    from .compiler import Compiled, CompileError


def compile(
    fn: Callable[..., Any], *, cache_size: int = 8, check: bool = True, has_aux: bool = False
) -> Compiled:
    """``fn(*tensors) -> scalar loss``, compiled to straight-line NumPy (:func:`.compiler.compile`).

    The compiler is imported here, on first use, so that ``import tinygrad_softmax`` loads the engine only.

    >>> import numpy as np
    >>> from tinygrad_softmax import Tensor, compile
    >>> step = compile(lambda w, x: ((w * x).sum() - 1.0) ** 2)
    >>> loss, (dw, dx) = step(Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0]))
    >>> loss, dw, dx
    (100.0, array([60., 80.]), None)
    """
    from .compiler import compile as compile_now

    return compile_now(fn, cache_size=cache_size, check=check, has_aux=has_aux)


def __getattr__(name: str) -> Any:
    if name == "CompileError":
        return importlib.import_module(".compiler", __name__).CompileError
    if name == "explain":
        return importlib.import_module(".lecture.views.ledger", __name__).explain
    if name in _LAZY:
        return importlib.import_module(_LAZY[name], __name__)
    raise AttributeError(f"module 'tinygrad_softmax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "explain", "CompileError"])
