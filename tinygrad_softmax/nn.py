"""Layers: the linear softmax classifier's ``Z = X W + b``, and a hidden layer on top of it.

A model is a plain Python class whose ``forward`` calls tensor ops, so its graph
is recorded and drawn like any other, and its parameters are ordinary leaf
Tensors with readable names (``W1``, ``b1``, ``W2``, ...)::

    model = MLP([2, 100, 3], rng=0)       # Z1 = X W1 + b1, H1 = relu(Z1), Z2 = H1 W2 + b2
    loss = F.cross_entropy(model(X), y)
    model.zero_grad()
    loss.backward()                       # W1.grad, b1.grad, W2.grad, b2.grad

Both layouts of the derivation work: ``layout="row"`` (X is N×D, W is D×C,
``Z = X W + b``, as in PyTorch and CS231n) and ``layout="column"`` (X is D×N,
W is C×D, b is C×1, ``Z = W X + b``, as in "Demystifying Softmax Loss").
PyTorch's ``nn.Linear`` stores its weight as C×D and computes ``X Wᵀ + b``:
its weight is our column-layout W, and the transpose of our row-layout W.

NumPy only: this module is part of the core and imports nothing from the lecture.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Literal

import numpy as np

from .tensor import Tensor

__all__ = ["Module", "Linear", "ReLU", "Sequential", "MLP"]

Layout = Literal["row", "column"]
Init = Literal["he", "glorot"]
RandomState = np.random.Generator | int | None


def _generator(rng: RandomState) -> np.random.Generator:
    """A NumPy Generator from a Generator, an integer seed, or None (fresh randomness)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an integer seed or None, got {type(rng).__name__}")


class Module:
    """A piece of a model: ``module(x)`` runs ``forward(x)``; its parameters are leaf Tensors."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(x, name="X")
        return self.forward(x)

    def parameters(self) -> list[Tensor]:
        """The tensors an optimiser updates, in a fixed order (W1, b1, W2, b2, ...)."""
        return []

    def named_parameters(self) -> dict[str, Tensor]:
        """``{"W1": W1, "b1": b1, ...}``: the parameters by their names, in order."""
        return {str(p.name): p for p in self.parameters()}

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient (``.grad`` becomes None)."""
        for p in self.parameters():
            p.zero_grad()


class Linear(Module):
    """An affine layer: ``Z = X W + b`` (row layout) or ``Z = W X + b`` (column layout).

    ==========  ======================  =========================
    layout      row                     column (the derivation's)
    ==========  ======================  =========================
    X           N × in_features         in_features × N
    W           in_features × out       out × in_features
    b           (out,)                  out × 1
    Z           N × out                 out × N
    ==========  ======================  =========================

    Initialisation (the biases start at 0):

    - ``init="he"`` (default): ``W ~ Normal(0, 2 / in_features)``, He et al. (2015).
      A ReLU zeroes about half of its inputs; twice the variance keeps the size
      of the activations the same from layer to layer.
    - ``init="glorot"``: ``W ~ Normal(0, 2 / (in_features + out_features))``,
      Glorot and Bengio (2010): keeps both the forward values and the backward
      gradients at the same size; used for the last layer, whose logits meet no ReLU.

    ``index`` numbers the layer inside a model: with ``index=1`` the parameters
    are named ``W1`` and ``b1`` and the output ``Z1``; without it ``W``, ``b``, ``Z``.
    ``rng`` is a NumPy Generator or an integer seed (None: fresh randomness).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        layout: Layout = "row",
        rng: RandomState = None,
        init: Init = "he",
        index: int | None = None,
    ) -> None:
        for what, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear: {what} must be a positive integer, got {value!r}")
        if layout not in ("row", "column"):
            raise ValueError(f"Linear: layout must be 'row' or 'column', got {layout!r}")
        if init not in ("he", "glorot"):
            raise ValueError(f"Linear: init must be 'he' or 'glorot', got {init!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.layout: Layout = layout
        self.init: Init = init
        variance = 2.0 / (in_features if init == "he" else in_features + out_features)
        weights = math.sqrt(variance) * _generator(rng).standard_normal((in_features, out_features))
        self.W = Tensor(weights if layout == "row" else weights.T.copy(), requires_grad=True)
        self.b: Tensor | None = None
        if bias:
            shape = (out_features,) if layout == "row" else (out_features, 1)
            self.b = Tensor(np.zeros(shape), requires_grad=True)
        self.index: int | None = None
        self.number(index)

    def number(self, index: int | None) -> None:
        """Name the tensors ``W{index}``, ``b{index}``, ``Z{index}`` (``W``, ``b``, ``Z`` if None)."""
        self.index = index
        suffix = "" if index is None else str(index)
        self.W.name = f"W{suffix}"
        if self.b is not None:
            self.b.name = f"b{suffix}"

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features} → {self.out_features}, layout={self.layout!r}, "
            f"bias={self.b is not None}, W={self.W.name})"
        )

    def forward(self, x: Tensor) -> Tensor:
        axis = -1 if self.layout == "row" else 0
        fits = x.ndim == 2 or (self.layout == "row" and x.ndim >= 1)
        if not fits or x.shape[axis] != self.in_features:
            suffix = "" if self.index is None else str(self.index)
            layer = "Linear layer" + ("" if self.index is None else f" {self.index}")
            needs = f"(N, {self.in_features})" if self.layout == "row" else f"({self.in_features}, N)"
            got = f"{x.shape[axis]} features along its {'last' if self.layout == 'row' else 'first'} axis"
            raise ValueError(
                f"{layer} ({self.in_features} → {self.out_features}, {self.layout} layout): input of shape "
                f"{x.shape} has {got if x.ndim else 'no axes'}, but W{suffix} has shape {self.W.shape} "
                f"and needs {self.in_features}: pass an input of shape {needs}"
            )
        z = x @ self.W if self.layout == "row" else self.W @ x
        if self.b is not None:
            z = z + self.b
        z.name = f"Z{'' if self.index is None else self.index}"
        return z

    def parameters(self) -> list[Tensor]:
        return [self.W] if self.b is None else [self.W, self.b]


class ReLU(Module):
    """``H = relu(Z) = max(Z, 0)``, elementwise; its output is named ``H{index}``."""

    def __init__(self, index: int | None = None) -> None:
        self.index = index

    def number(self, index: int | None) -> None:
        self.index = index

    def __repr__(self) -> str:
        return "ReLU()"

    def forward(self, x: Tensor) -> Tensor:
        h = x.relu()
        h.name = f"H{'' if self.index is None else self.index}"
        return h


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(a, b, c)(x) = c(b(a(x)))``.

    Layers built without an ``index`` are numbered here: the k-th ``Linear``
    gets ``W{k}``, ``b{k}``, ``Z{k}``, and an activation after it ``H{k}``.
    """

    def __init__(self, *layers: Module) -> None:
        for layer in layers:
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: every layer must be a Module, got {type(layer).__name__}")
        self.layers = list(layers)
        linear = 0
        for layer in self.layers:
            if isinstance(layer, Linear):
                linear += 1
                if layer.index is None:
                    layer.number(linear)
            elif isinstance(layer, ReLU) and layer.index is None and linear:
                layer.number(linear)
        names = [p.name for p in self.parameters()]
        clashes = sorted({str(n) for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(f"Sequential: two parameters share the name(s) {', '.join(clashes)}")

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"{type(self).__name__}(\n{inner}\n)"

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]


_ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU}


class MLP(Sequential):
    """A multilayer perceptron: ``Linear → ReLU → Linear → … → Linear``, logits out.

    ``MLP([2, 100, 3])`` is the two-layer net of the lecture, in the row layout::

        Z1 = X W1 + b1      (N×100)
        H1 = relu(Z1)
        Z2 = H1 W2 + b2     (N×3: the logits that cross_entropy reads)

    ``sizes`` lists the widths from the input features to the classes. The
    hidden layers use He initialisation (they feed a ReLU), the last layer
    Glorot. ``rng`` (a Generator or an integer seed) draws all the weights in order.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        layout: Layout = "row",
        rng: RandomState = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output width, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; choose one of {', '.join(_ACTIVATIONS)}"
            )
        generator = _generator(rng)
        layers: list[Module] = []
        last = len(sizes) - 1
        for k, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
            init: Init = "glorot" if k == last else "he"
            layers.append(Linear(fan_in, fan_out, layout=layout, rng=generator, init=init, index=k))
            if k < last:
                layers.append(_ACTIVATIONS[activation](index=k))  # type: ignore[call-arg]
        super().__init__(*layers)
        self.sizes = sizes
        self.activation = activation
        self.layout: Layout = layout

    def __repr__(self) -> str:
        widths = " → ".join(str(s) for s in self.sizes)
        return f"MLP({widths}, activation={self.activation!r}, layout={self.layout!r})"
