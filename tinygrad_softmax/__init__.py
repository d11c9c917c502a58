"""tinygrad_softmax: a tiny reverse-mode autograd engine that derives dz = p − y by itself."""

from . import analytic, functional, gradcheck
from .tensor import Tensor, no_grad

__all__ = ["Tensor", "no_grad", "functional", "analytic", "gradcheck"]
__version__ = "0.1.0"
