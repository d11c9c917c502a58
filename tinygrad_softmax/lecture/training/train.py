"""Train the linear softmax classifier (or a two-layer net) by gradient descent through the engine.

Every step is the lecture's forward and backward pass, nothing more:

    Z = W X + b,   L = cross_entropy(Z, y),   L.backward(),   W ← W − lr·dW,   b ← b − lr·db

in the derivation's column layout (X is D×N, a sample per column). The features are
standardised with the training set's mean and standard deviation; the weights
start small and random from a fixed seed, so the initial loss is close to ln C
and every run prints the same numbers.

One hidden layer further, ``model="mlp"`` trains ``Z2 = W2 relu(W1 X + b1) + b2``
(``nn.MLP``, He/Glorot initialisation) with the same loop, and
``optimizer="adam"`` (or ``momentum=0.9``) swaps the plain step for ``optim.Adam``
(or SGD with momentum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import functional as F
from ... import nn, optim
from ...compiler import Compiled, compile
from ...tensor import Tensor, no_grad
from ..extras import have
from ..outputs import SLIDE_DPI, SLIDE_FIGSIZE, atomic_path
from .boundaries import plot_decision_boundaries
from .datasets import Dataset, feature_statistics, load, train_test_split

__all__ = [
    "TrainResult",
    "DEFAULTS",
    "settings",
    "train",
    "accuracy",
    "plot_loss",
    "plot_weights",
    "save_pictures",
]

# Epochs and (plain gradient descent's) learning rate that converge well for each dataset.
DEFAULTS: dict[str, tuple[int, float]] = {
    "iris": (200, 0.5),
    "digits": (150, 0.5),
    "spiral": (1000, 0.3),
    "moons": (500, 0.3),
}
ADAM_LR = 0.01  # Adam's default step: its steps are about lr in size whatever the gradient's scale
MODELS = ("linear", "mlp")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class TrainResult:
    """What a training run learned and how it got there (one entry per epoch in each list)."""

    dataset: Dataset
    W: np.ndarray  # C×D, learned on standardised features (the MLP: W2, the layer that makes the logits)
    b: np.ndarray  # C×1
    epochs: int
    lr: float
    seed: int
    train_size: int
    test_size: int
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    model: str = "linear"  # "linear" or "mlp"
    optimizer: str = "sgd"  # "sgd" or "adam"
    hidden: int | None = None  # the MLP's hidden width
    momentum: float = 0.0
    network: nn.Module | None = None  # the trained model (column layout)
    feature_mean: np.ndarray | None = None  # the training set's statistics, to standardise new points
    feature_std: np.ndarray | None = None
    train_rows: np.ndarray | None = None  # which rows of the dataset were trained on, which held out
    test_rows: np.ndarray | None = None

    @property
    def initial_loss(self) -> float:
        return self.train_loss[0]

    @property
    def model_name(self) -> str:
        """``linear softmax classifier`` or ``two-layer net, 100 hidden ReLUs``."""
        if self.model == "linear":
            return "linear softmax classifier"
        return f"two-layer net, {self.hidden} hidden ReLUs"

    @property
    def optimizer_name(self) -> str:
        """E.g. ``gradient descent (lr 0.5)``, ``Adam (lr 0.01)``."""
        step = "Adam" if self.optimizer == "adam" else "gradient descent"
        if self.optimizer == "sgd" and self.momentum:
            step += f" with momentum {self.momentum}"
        return f"{step} (lr {self.lr})"

    @property
    def description(self) -> str:
        return f"{self.model_name}, {self.optimizer_name}"

    def predict(self, points: np.ndarray) -> np.ndarray:
        """The predicted class of each row of ``points`` (N×D, in the data's own units)."""
        if self.network is None or self.feature_mean is None or self.feature_std is None:
            raise ValueError("predict: this result holds no trained network")
        x = (np.asarray(points, dtype=np.float64) - self.feature_mean) / self.feature_std
        with no_grad():
            z = self.network(Tensor(x.T)).data
        return z.argmax(axis=0)

    def summary(self) -> dict[str, object]:
        """The figures worth printing or saving as JSON."""
        return {
            "dataset": self.dataset.name,
            "classes": self.dataset.num_classes,
            "features": int(self.dataset.X.shape[1]),
            "model": self.model,
            "hidden": self.hidden,
            "optimizer": self.optimizer,
            "momentum": self.momentum,
            "train_size": self.train_size,
            "test_size": self.test_size,
            "epochs": self.epochs,
            "lr": self.lr,
            "seed": self.seed,
            "initial_loss": self.initial_loss,
            "ln_C": float(np.log(self.dataset.num_classes)),
            "final_train_loss": self.train_loss[-1],
            "final_test_loss": self.test_loss[-1],
            "final_train_accuracy": self.train_accuracy[-1],
            "final_test_accuracy": self.test_accuracy[-1],
        }


def accuracy(z: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples (columns of the C×N logits) whose largest logit is the true class."""
    return float(np.mean(z.argmax(axis=0) == labels))


def _progress_line(epoch: int, epochs: int, loss: float, train_acc: float, test_acc: float) -> str:
    width = 20
    filled = round(width * epoch / epochs)
    bar = "#" * filled + "." * (width - filled)
    return (
        f"epoch {epoch:>{len(str(epochs))}}/{epochs} [{bar}] loss {loss:.4f}  "
        f"train {100 * train_acc:5.1f}%  test {100 * test_acc:5.1f}%"
    )


def _build_model(model: str, D: int, C: int, hidden: int, weight_scale: float, seed: int) -> nn.Module:
    """The linear softmax classifier (``Z = W X + b``) or the two-layer net, in the column layout."""
    rng = np.random.default_rng(seed)
    if model == "linear":
        layer = nn.Linear(D, C, layout="column")
        # Small weights instead of He's: every class starts at p ≈ 1/C, so the first loss is ln C.
        layer.W.data = weight_scale * rng.standard_normal((C, D))
        return layer
    return nn.MLP([D, hidden, C], layout="column", rng=rng)


def _compiled_step(network: nn.Module) -> Compiled:
    """The loss of ``network`` as a function of its parameters, X and y, compiled.

    The parameters are arguments, so the program reads their current values
    each step and returns their gradients; inside, each layer holds the
    traced parameters only while the trace runs.
    """
    layers = [network] if isinstance(network, nn.Linear) else []
    if isinstance(network, nn.Sequential):
        layers = [m for m in network if isinstance(m, nn.Linear)]

    def loss(*args: Any) -> tuple[Tensor, Tensor]:
        *params, X, y = args
        own = [(layer.W, layer.b) for layer in layers]
        try:
            for layer, W, b in zip(layers, params[0::2], params[1::2]):
                layer.W, layer.b = W, b
            Z = network(X)
            return F.cross_entropy(Z, y, axis=0), Z  # Z back too: the history's train accuracy reads it
        finally:
            for layer, (W, b) in zip(layers, own):
                layer.W, layer.b = W, b

    return compile(loss, has_aux=True)


def _build_optimizer(optimizer: str, params: list[Tensor], lr: float, momentum: float) -> optim.Optimizer:
    if optimizer == "adam":
        return optim.Adam(params, lr=lr)
    return optim.SGD(params, lr=lr, momentum=momentum)


def settings(
    dataset: str, optimizer: str = "sgd", epochs: int | None = None, lr: float | None = None
) -> tuple[int, float]:
    """The epochs and learning rate a run uses: the given ones, or the dataset's defaults."""
    default_epochs, default_lr = DEFAULTS.get(dataset, (200, 0.5))
    epochs = default_epochs if epochs is None else epochs
    lr = (ADAM_LR if optimizer == "adam" else default_lr) if lr is None else lr
    return epochs, lr


def train(
    dataset: str | Dataset = "digits",
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    weight_scale: float = 0.01,
    log: Callable[[str], None] | None = print,
    log_every: int | None = None,
    model: str = "linear",
    hidden: int = 100,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    compiled: bool = False,
) -> TrainResult:
    """Full-batch gradient descent on the mean cross-entropy; returns the weights and the history.

    ``model`` is ``"linear"`` (the linear softmax classifier) or ``"mlp"`` (one
    hidden layer of ``hidden`` ReLUs); ``optimizer`` is ``"sgd"`` (plain gradient
    descent, or with ``momentum``) or ``"adam"``. ``epochs`` and ``lr`` default
    to values that converge for the dataset (Adam: lr 0.01).

    With ``compiled``, each step runs the NumPy program ``compile`` writes for
    it (traced on the first step) instead of the eager engine: the same
    numbers, bit for bit, without building a graph every step.

    ``log`` receives a progress line (epoch, loss, train and test accuracy)
    every ``log_every`` epochs (default: ten lines per run), and after the first
    and the last epoch. Pass ``log=None`` for a quiet run.
    """
    if model not in MODELS:
        raise ValueError(f"train: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train: unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if optimizer == "adam" and momentum:
        raise ValueError("train: momentum belongs to sgd; Adam keeps its own running averages (betas)")
    if model == "mlp" and (isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1):
        raise ValueError(f"train: the hidden width must be a positive integer, got {hidden!r}")
    data = load(dataset) if isinstance(dataset, str) else dataset
    epochs, lr = settings(data.name, optimizer, epochs, lr)
    if epochs < 1:
        raise ValueError(f"train: epochs must be at least 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"train: the learning rate must be positive, got {lr}")
    log_every = log_every or max(1, epochs // 10)

    train_rows, test_rows = train_test_split(data.labels, test_fraction, seed)
    mean, std = feature_statistics(data.X[train_rows])
    X = Tensor(((data.X[train_rows] - mean) / std).T, name="X")  # D×N: one sample per column
    X_test = Tensor(((data.X[test_rows] - mean) / std).T, name="X_test")
    y, y_test = data.labels[train_rows], data.labels[test_rows]
    C, D = data.num_classes, X.shape[0]

    network = _build_model(model, D, C, hidden, weight_scale, seed)
    params = network.parameters()
    optimiser = _build_optimizer(optimizer, params, lr, momentum)
    result = TrainResult(
        data, params[-2].data, params[-1].data, epochs, lr, seed, len(y), len(y_test),
        model=model, optimizer=optimizer, hidden=hidden if model == "mlp" else None,
        momentum=momentum, network=network, feature_mean=mean, feature_std=std,
        train_rows=train_rows, test_rows=test_rows,
    )  # fmt: skip

    def should_log(steps: int) -> bool:
        return steps == 1 or steps % log_every == 0 or steps == epochs

    def record(train_loss: float, z_train: np.ndarray, z_test: np.ndarray) -> None:
        """Entry k of the history: the model after k gradient steps, evaluated once."""
        with no_grad():
            result.test_loss.append(F.cross_entropy(Tensor(z_test), y_test, axis=0).item())
        result.train_loss.append(train_loss)
        result.train_accuracy.append(accuracy(z_train, y))
        result.test_accuracy.append(accuracy(z_test, y_test))
        steps = len(result.train_loss) - 1
        if log is not None and steps > 0 and should_log(steps):
            log(
                _progress_line(steps, epochs, train_loss, result.train_accuracy[-1], result.test_accuracy[-1])
            )

    step = _compiled_step(network) if compiled else None
    for _ in range(epochs):
        if step is not None:
            loss_value, grads, z_train = step(*params, X, y)
            with no_grad():
                z_test = network(X_test).data
            record(loss_value, z_train, z_test)
            for param, grad in zip(params, grads):
                param.grad = grad
            optimiser.step()
            continue
        Z = network(X)
        loss = F.cross_entropy(Z, y, axis=0)
        # The forward of this step is the evaluation of the model the previous step left.
        with no_grad():
            z_test = network(X_test).data
        record(loss.item(), Z.data, z_test)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()  # plain SGD: W ← W − lr·dW, b ← b − lr·db for every layer

    # "Final" is one thing everywhere: the model after the last step, evaluated once here. The last
    # progress line, the summary, the JSON and the report all read this entry.
    result.W, result.b = params[-2].data, params[-1].data  # each step made new arrays
    with no_grad():
        z_train, z_test = network(X).data, network(X_test).data
        final_loss = F.cross_entropy(Tensor(z_train), y, axis=0).item()
    record(final_loss, z_train, z_test)
    if log is not None:
        log(
            f"{data.name}: train accuracy {100 * result.train_accuracy[-1]:.1f}% "
            f"({result.train_size} samples), test accuracy {100 * result.test_accuracy[-1]:.1f}% "
            f"({result.test_size} samples); loss {result.initial_loss:.4f} → {result.train_loss[-1]:.4f} "
            f"(ln {C} = {np.log(C):.4f})"
        )
    return result


# ---------------------------------------------------------------- pictures (matplotlib)


def plot_loss(result: TrainResult, path: str | Path) -> Path:
    """The loss and accuracy curves, train and test, against the epoch."""
    from matplotlib.figure import Figure

    path = Path(path)
    steps = np.arange(len(result.train_loss))  # entry k: after k gradient steps
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, result.train_loss, label="train")
    ax_loss.plot(steps, result.test_loss, label="test", linestyle="--")
    ln_c = float(np.log(result.dataset.num_classes))
    ax_loss.axhline(ln_c, color="grey", linewidth=0.8, linestyle=":")
    # Under the line at the right, where the curves have long since fallen: clear of the frame.
    ax_loss.annotate(
        f"ln {result.dataset.num_classes} = {ln_c:.3f}",
        (steps[-1], ln_c),
        xytext=(0, -4),
        textcoords="offset points",
        ha="right",
        va="top",
        color="dimgrey",
    )
    top = max(ln_c, max(result.train_loss), max(result.test_loss))
    ax_loss.set(xlabel="gradient steps", ylabel="mean cross-entropy", title="loss", ylim=(0, 1.08 * top))
    ax_loss.legend()
    ax_acc.plot(steps, 100 * np.asarray(result.train_accuracy), label="train")
    ax_acc.plot(steps, 100 * np.asarray(result.test_accuracy), label="test", linestyle="--")
    ax_acc.set(xlabel="gradient steps", ylabel="accuracy (%)", title="accuracy", ylim=(0, 100))
    ax_acc.legend(loc="lower right")
    fig.suptitle(
        f"{result.dataset.name}: {result.description}, "
        f"final test accuracy {100 * result.test_accuracy[-1]:.1f}%"
    )
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=SLIDE_DPI, format="png")
    return path


def plot_weights(result: TrainResult, path: str | Path) -> Path:
    """Each row of W drawn as an image (digits only): the template each class's logit matches."""
    from matplotlib.figure import Figure

    shape = result.dataset.image_shape
    if shape is None:
        raise ValueError(f"plot_weights: the {result.dataset.name} features are not an image")
    path = Path(path)
    limit = float(np.abs(result.W).max())
    columns = 5
    rows = -(-result.W.shape[0] // columns)
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[result.W.shape[0] :]:
        ax.set_visible(False)
    for row, ax, name in zip(result.W, axes, result.dataset.class_names):
        image = ax.imshow(row.reshape(shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"W[{name}]")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(
        "rows of W as 8×8 images (weights on standardised pixels)\n"
        "red pixels raise the class's logit, blue pixels lower it"
    )
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=SLIDE_DPI, format="png")
    return path


def save_pictures(result: TrainResult, out: str | Path) -> list[Path]:
    """Write the pictures of a run into ``out``; [] without matplotlib.

    ``<dataset>-loss.png`` for the linear softmax classifier (``<dataset>-mlp-loss.png``
    for the two-layer net); ``digits-weights.png`` for the linear model on the
    digits; ``<dataset>[-mlp]-boundary.png``, the plane coloured by the
    predicted class, for data with two features (spiral, moons).
    """
    if not have("matplotlib"):
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = result.dataset.name + ("" if result.model == "linear" else f"-{result.model}")
    paths = [plot_loss(result, out / f"{stem}-loss.png")]
    if result.dataset.image_shape is not None and result.model == "linear":
        paths.append(plot_weights(result, out / f"{stem}-weights.png"))
    if result.dataset.X.shape[1] == 2:
        paths.append(plot_decision_boundaries([result], out / f"{stem}-boundary.png"))
    return paths
