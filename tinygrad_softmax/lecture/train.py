"""Train the seed's softmax classifier on real data, by plain gradient descent through the engine.

Every step is the lecture's forward and backward pass, nothing more:

    Z = W X + b,   L = cross_entropy(Z, y),   L.backward(),   W ← W − lr·dW,   b ← b − lr·db

in the seed's column layout (X is D×N, a sample per column). The features are
standardised with the training set's mean and standard deviation; the weights
start small and random from a fixed seed, so the initial loss is close to ln C
and every run prints the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import functional as F
from ..tensor import Tensor, no_grad
from .classifier import logits
from .datasets import Dataset, load, standardise, train_test_split

__all__ = ["TrainResult", "DEFAULTS", "train", "accuracy", "plot_loss", "plot_weights", "save_pictures"]

# Epochs and learning rate that converge well for each shipped dataset.
DEFAULTS: dict[str, tuple[int, float]] = {"iris": (200, 0.5), "digits": (150, 0.5)}


@dataclass
class TrainResult:
    """What a training run learned and how it got there (one entry per epoch in each list)."""

    dataset: Dataset
    W: np.ndarray  # C×D, learned on standardised features
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

    @property
    def initial_loss(self) -> float:
        return self.train_loss[0]

    def summary(self) -> dict[str, object]:
        """The figures worth printing or saving as JSON."""
        return {
            "dataset": self.dataset.name,
            "classes": self.dataset.num_classes,
            "features": int(self.W.shape[1]),
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


def train(
    dataset: str | Dataset = "digits",
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    weight_scale: float = 0.01,
    log: Callable[[str], None] | None = print,
    log_every: int | None = None,
) -> TrainResult:
    """Full-batch gradient descent on the mean cross-entropy; returns the weights and the history.

    ``log`` receives a progress line (epoch, loss, train and test accuracy)
    every ``log_every`` epochs (default: ten lines per run), and after the first
    and the last epoch. Pass ``log=None`` for a quiet run.
    """
    data = load(dataset) if isinstance(dataset, str) else dataset
    default_epochs, default_lr = DEFAULTS.get(data.name, (200, 0.5))
    epochs = default_epochs if epochs is None else epochs
    lr = default_lr if lr is None else lr
    if epochs < 1:
        raise ValueError(f"train: epochs must be at least 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"train: the learning rate must be positive, got {lr}")
    log_every = log_every or max(1, epochs // 10)

    train_rows, test_rows = train_test_split(data.labels, test_fraction, seed)
    x_train, x_test = standardise(data.X[train_rows], data.X[test_rows])
    X = Tensor(x_train.T, name="X")  # D×N: one sample per column, as in the seed
    X_test = x_test.T
    y, y_test = data.labels[train_rows], data.labels[test_rows]
    C, D = data.num_classes, X.shape[0]

    rng = np.random.default_rng(seed)
    W = Tensor(weight_scale * rng.standard_normal((C, D)), requires_grad=True, name="W")
    b = Tensor(np.zeros((C, 1)), requires_grad=True, name="b")
    result = TrainResult(data, W.data, b.data, epochs, lr, seed, len(y), len(y_test))

    for epoch in range(1, epochs + 1):
        Z = logits(W, b, X, "column")
        loss = F.cross_entropy(Z, y, axis=0)
        with no_grad():
            z_test = logits(W.data, b.data, X_test, "column")
            test_loss = F.cross_entropy(Tensor(z_test), y_test, axis=0).item()
        result.train_loss.append(loss.item())
        result.test_loss.append(test_loss)
        result.train_accuracy.append(accuracy(Z.data, y))
        result.test_accuracy.append(accuracy(z_test, y_test))

        W.zero_grad()
        b.zero_grad()
        loss.backward()
        assert W.grad is not None and b.grad is not None
        W.data -= lr * W.grad  # the gradient descent step, in place on the leaves
        b.data -= lr * b.grad
        if log is not None and (epoch == 1 or epoch % log_every == 0 or epoch == epochs):
            log(
                _progress_line(
                    epoch, epochs, loss.item(), result.train_accuracy[-1], result.test_accuracy[-1]
                )
            )

    # Figures after the last step, so the final accuracy is the model we return.
    z_train, z_test = W.data @ X.data + b.data, W.data @ X_test + b.data
    result.train_loss.append(F.cross_entropy(Tensor(z_train), y, axis=0).item())
    result.test_loss.append(F.cross_entropy(Tensor(z_test), y_test, axis=0).item())
    result.train_accuracy.append(accuracy(z_train, y))
    result.test_accuracy.append(accuracy(z_test, y_test))
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
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, result.train_loss, label="train")
    ax_loss.plot(steps, result.test_loss, label="test", linestyle="--")
    ax_loss.axhline(np.log(result.dataset.num_classes), color="grey", linewidth=0.8, linestyle=":")
    ax_loss.annotate(
        f"ln {result.dataset.num_classes}",
        (steps[-1], np.log(result.dataset.num_classes)),
        ha="right",
        va="bottom",
        color="grey",
    )
    ax_loss.set(xlabel="gradient steps", ylabel="mean cross-entropy", title="loss")
    ax_loss.legend()
    ax_acc.plot(steps, 100 * np.asarray(result.train_accuracy), label="train")
    ax_acc.plot(steps, 100 * np.asarray(result.test_accuracy), label="test", linestyle="--")
    ax_acc.set(xlabel="gradient steps", ylabel="accuracy (%)", title="accuracy", ylim=(0, 100))
    ax_acc.legend(loc="lower right")
    fig.suptitle(
        f"{result.dataset.name}: softmax classifier, gradient descent (lr {result.lr}), "
        f"test accuracy {100 * result.test_accuracy[-1]:.1f}%"
    )
    fig.savefig(path, dpi=110)
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
    fig = Figure(figsize=(8, 1.8 * rows + 0.6), layout="constrained")
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
    fig.savefig(path, dpi=110)
    return path


def save_pictures(result: TrainResult, out: str | Path) -> list[Path]:
    """Write ``<dataset>-loss.png`` (and ``digits-weights.png``) into ``out``; [] without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_loss(result, out / f"{result.dataset.name}-loss.png")]
    if result.dataset.image_shape is not None:
        paths.append(plot_weights(result, out / f"{result.dataset.name}-weights.png"))
    return paths
