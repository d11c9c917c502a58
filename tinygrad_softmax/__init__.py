"""tinygrad_softmax: a tiny reverse-mode autograd engine that derives dz = p − y by itself."""

from . import analytic, functional, gradcheck, viz
from .anomaly import AnomalyError, detect_anomaly
from .lab import jacobian
from .ledger import explain
from .tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "detect_anomaly", "AnomalyError", "jacobian"]
__all__ += ["explain", "functional", "analytic", "gradcheck", "viz"]
__version__ = "0.1.0"
