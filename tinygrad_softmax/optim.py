"""Optimisers: what to do with ``W.grad`` once the engine has found it.

The lecture's training loop is plain gradient descent, ``W ← W − lr · dW``.
``SGD`` adds momentum and weight decay, ``Adam`` scales each step by running
averages of the gradient and its square. Both follow PyTorch's ``torch.optim``
update rules exactly, so they give the same numbers for the same settings::

    opt = Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

A step gives each parameter a new array (``p ← p − …``) instead of writing
into the old one, so a graph recorded before the step still holds the values
it was built from.

NumPy only: this module is part of the core and imports nothing from the lecture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


def _positive(who: str, what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{who}: {what} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{who}: {what} must be a positive finite number, got {value}")
    return float(value)


def _in_range(who: str, what: str, value: float, high_open: bool = True) -> float:
    """A number in [0, 1) (or [0, ∞) when ``high_open`` is False)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{who}: {what} must be a number, got {type(value).__name__}")
    ok = 0.0 <= value < 1.0 if high_open else 0.0 <= value < math.inf
    if not ok:
        limits = "in [0, 1)" if high_open else "a finite number >= 0"
        raise ValueError(f"{who}: {what} must be {limits}, got {value}")
    return float(value)


class Optimizer:
    """Holds the parameters to update; ``step()`` updates them, ``zero_grad()`` clears their grads."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        who = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{who}: params must be an iterable of Tensors (e.g. [W, b]), got one Tensor")
        try:
            self.params: list[Tensor] = list(params)
        except TypeError:
            raise TypeError(
                f"{who}: params must be an iterable of Tensors (e.g. model.parameters()), "
                f"got {type(params).__name__}"
            ) from None
        if not self.params:
            raise ValueError(f"{who}: got an empty list of parameters")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(
                    f"{who}: parameter {i} ({p.name or 'unnamed'}, shape {p.shape}) does not require grad; "
                    "create it with requires_grad=True so backward() gives it a gradient"
                )
            if p.op:
                raise ValueError(
                    f"{who}: parameter {i} ({p.name or 'unnamed'}) was made by the op {p.op!r}; "
                    "an optimiser updates leaf tensors only"
                )
            if any(p is q for q in self.params[:i]):
                raise ValueError(f"{who}: parameter {i} ({p.name or 'unnamed'}) appears twice")
        self.lr = _positive(who, "lr", lr)
        self.steps = 0  # how many times step() has run

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None, ready for the next ``backward()``."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """One update of every parameter that has a gradient (those without one are left alone)."""
        for i, p in enumerate(self.params):  # check them all first, so a bad one changes nothing
            if p.grad is not None and p.grad.shape != p.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: {p.name or f'parameter {i}'} has shape {p.shape} "
                    f"but its grad has shape {p.grad.shape}"
                )
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                # `_data`, not `.data`: the step only reads the current array, and `.data` would
                # first copy it if a graph holds it (copy on write). The difference is a new
                # array nobody else holds, so the next forward records it without a copy.
                current = p._data
                stepped = current - self.update(i, current, p.grad)
                p._take_new_data(stepped.astype(current.dtype, copy=False))

    def update(self, i: int, p: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The amount subtracted from parameter ``i`` (value ``p``, gradient ``grad``) in this step."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum and weight decay (as ``torch.optim.SGD``).

    With g the gradient, λ the weight decay, μ the momentum and v the velocity::

        g ← g + λ p                     (weight decay: the gradient of λ/2 ‖p‖²)
        v ← g            on the first step,
        v ← μ v + g      afterwards     (only when μ > 0; otherwise v = g)
        p ← p − lr · v

    With μ = λ = 0 this is the lecture's ``W ← W − lr · dW``.
    """

    def __init__(
        self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _in_range("SGD", "momentum", momentum)
        self.weight_decay = _in_range("SGD", "weight_decay", weight_decay, high_open=False)
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def update(self, i: int, p: np.ndarray, grad: np.ndarray) -> np.ndarray:
        g = grad + self.weight_decay * p if self.weight_decay else grad
        if self.momentum:
            v = self.velocity[i]
            v = g.copy() if v is None else self.momentum * v + g
            self.velocity[i] = g = v
        return self.lr * g


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), with optional L2 weight decay (as ``torch.optim.Adam``).

    With g the gradient, t the step number (1, 2, ...), β1, β2 the decay rates of
    the running averages m (of g) and v (of g², elementwise)::

        g ← g + λ p                      (weight decay, as in SGD)
        m ← β1 m + (1 − β1) g            (m and v start at 0)
        v ← β2 v + (1 − β2) g²
        m̂ = m / (1 − β1ᵗ),   v̂ = v / (1 − β2ᵗ)     (undo the pull towards the zero start)
        p ← p − lr · m̂ / (√v̂ + ε)

    Each parameter's step is about ``lr`` in size whatever the scale of its gradient.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_in_range("Adam", "beta1", betas[0]), _in_range("Adam", "beta2", betas[1]))
        self.eps = _positive("Adam", "eps", eps)
        self.weight_decay = _in_range("Adam", "weight_decay", weight_decay, high_open=False)
        self.m: list[np.ndarray | None] = [None] * len(self.params)
        self.v: list[np.ndarray | None] = [None] * len(self.params)
        self.t: list[int] = [0] * len(self.params)  # per parameter: one without a grad does not count

    def update(self, i: int, p: np.ndarray, grad: np.ndarray) -> np.ndarray:
        beta1, beta2 = self.betas
        g = grad + self.weight_decay * p if self.weight_decay else grad
        m, v = self.m[i], self.v[i]
        if m is None or v is None:  # the first step: both averages start at 0
            m, v = np.zeros_like(p), np.zeros_like(p)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        self.m[i], self.v[i] = m, v
        self.t[i] = t = self.t[i] + 1
        # m̂ / (√v̂ + ε) written the way PyTorch evaluates it, so the rounding matches too.
        denominator = np.sqrt(v) / math.sqrt(1 - beta2**t) + self.eps
        return (self.lr / (1 - beta1**t)) * m / denominator
