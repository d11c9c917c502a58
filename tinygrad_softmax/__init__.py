"""tinygrad_softmax: a tiny reverse-mode autograd engine that derives dz = p − y by itself.

``import tinygrad_softmax`` loads the engine only (NumPy and nothing else). The
lecture tools (``viz``, ``explain``, ``datasets``, ...) live in
``tinygrad_softmax.lecture`` and the benchmark in ``tinygrad_softmax.bench``;
both stay reachable from here under their usual names, imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import analytic, functional, gradcheck, nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .compiler import CompileError, compile
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
    "viz": ".lecture.viz",
    "ledger": ".lecture.ledger",
    "compare": ".lecture.compare",
    "bugs": ".lecture.bugs",
    "lab": ".lecture.lab",
    "train": ".lecture.train",
    "datasets": ".lecture.datasets",
    "demo": ".lecture.demo",
    "lecture": ".lecture",
    "bench": ".bench",
}


def __getattr__(name: str) -> Any:
    if name == "explain":
        return importlib.import_module(".lecture.ledger", __name__).explain
    if name in _LAZY:
        return importlib.import_module(_LAZY[name], __name__)
    raise AttributeError(f"module 'tinygrad_softmax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "explain"])
