"""Train the linear softmax classifier on real data, by plain gradient descent through the engine.

Every step is the lecture's forward and backward pass, nothing more:

    Z = W X + b,   L = cross_entropy(Z, y),   L.backward(),   W ← W − lr·dW,   b ← b − lr·db

in the derivation's column layout (X is D×N, a sample per column). The features are
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
from .extras import have
from .outputs import atomic_path

__all__ = ["TrainResult", "DEFAULTS", "train", "accuracy", "plot_loss", "plot_weights", "save_pictures"]

# Epochs and learning rate that converge well for each shipped dataset.
DEFAULTS: dict[str, tuple[int, float]] = {"iris": (200, 0.5), "digits": (150, 0.5)}
# 16:9, and at 10-point text on a 9.6-inch figure the smallest label is 28 px tall on a 1920 px slide.
SLIDE_FIGSIZE = (9.6, 5.4)
SLIDE_DPI = 110


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
    X = Tensor(x_train.T, name="X")  # D×N: one sample per column, as in the derivation
    X_test = x_test.T
    y, y_test = data.labels[train_rows], data.labels[test_rows]
    C, D = data.num_classes, X.shape[0]

    rng = np.random.default_rng(seed)
    W = Tensor(weight_scale * rng.standard_normal((C, D)), requires_grad=True, name="W")
    b = Tensor(np.zeros((C, 1)), requires_grad=True, name="b")
    result = TrainResult(data, W.data, b.data, epochs, lr, seed, len(y), len(y_test))

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

    for _ in range(epochs):
        Z = logits(W, b, X, "column")
        loss = F.cross_entropy(Z, y, axis=0)
        # The forward of this step is the evaluation of the model the previous step left.
        record(loss.item(), Z.data, logits(W.data, b.data, X_test, "column"))
        W.zero_grad()
        b.zero_grad()
        loss.backward()
        assert W.grad is not None and b.grad is not None
        W.data -= lr * W.grad  # the gradient descent step, in place on the leaves
        b.data -= lr * b.grad

    # "Final" is one thing everywhere: the model after the last step, evaluated once here. The last
    # progress line, the summary, the JSON and the report all read this entry.
    with no_grad():
        z_train = logits(W.data, b.data, X.data, "column")
        final_loss = F.cross_entropy(Tensor(z_train), y, axis=0).item()
    record(final_loss, z_train, logits(W.data, b.data, X_test, "column"))
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
        f"{result.dataset.name}: linear softmax classifier, gradient descent (lr {result.lr}), "
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
    """Write ``<dataset>-loss.png`` (and ``digits-weights.png``) into ``out``; [] without matplotlib."""
    if not have("matplotlib"):
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_loss(result, out / f"{result.dataset.name}-loss.png")]
    if result.dataset.image_shape is not None:
        paths.append(plot_weights(result, out / f"{result.dataset.name}-weights.png"))
    return paths
