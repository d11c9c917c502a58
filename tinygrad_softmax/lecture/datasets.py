"""Two small real datasets shipped inside the package: Iris and the 8×8 handwritten digits.

No download at run time: the files live in ``tinygrad_softmax/lecture/data/`` (source
and licence in ``data/README.md``). Samples come one per *row* (N×D), the way
the files store them; the trainer transposes them into the seed's column
layout.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = ["Dataset", "load", "load_iris", "load_digits", "train_test_split", "standardise", "NAMES"]

NAMES = ("iris", "digits")


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (N×D, float64), integer ``labels`` (N,), and what they mean."""

    name: str
    X: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    image_shape: tuple[int, int] | None = None  # (8, 8) for the digits: each row of X is an image

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _read_text(filename: str) -> str:
    raw = (resources.files("tinygrad_softmax.lecture") / "data" / filename).read_bytes()
    if filename.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("ascii")


def load_iris() -> Dataset:
    """Fisher's Iris: 150 flowers, 4 measurements in cm, 3 species (50 each).

    The file's first line is ``150,4,setosa,versicolor,virginica``: the counts,
    then the class names; each further line is four features and a class index.
    """
    rows = list(csv.reader(io.StringIO(_read_text("iris.csv"))))
    header, body = rows[0], rows[1:]
    table = np.array(body, dtype=np.float64)
    return Dataset(
        name="iris",
        X=table[:, :4],
        labels=table[:, 4].astype(np.int64),
        class_names=tuple(header[2:]),
        feature_names=("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"),
    )


def load_digits() -> Dataset:
    """The UCI optical digits test set: 1,797 images of 8×8 pixels with values 0..16, digits 0..9.

    Each line is 64 pixel values, row by row, then the digit.
    """
    table = np.loadtxt(io.StringIO(_read_text("digits.csv.gz")), delimiter=",", dtype=np.float64)
    return Dataset(
        name="digits",
        X=table[:, :64],
        labels=table[:, 64].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        feature_names=tuple(f"pixel ({r}, {c})" for r in range(8) for c in range(8)),
        image_shape=(8, 8),
    )


def load(name: str) -> Dataset:
    """``load("iris")`` or ``load("digits")``."""
    if name == "iris":
        return load_iris()
    if name == "digits":
        return load_digits()
    raise ValueError(f"load: unknown dataset {name!r}; choose one of {', '.join(NAMES)}")


def train_test_split(
    labels: np.ndarray, test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a train and a test set, the same fraction of every class in each.

    Shuffled with ``seed``, so the split is the same on every run.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"train_test_split: test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(test_fraction * members.size)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale every feature (column) to mean 0 and standard deviation 1, using the training rows' statistics.

    A feature that is constant in the training set (a digit pixel that is always
    blank) is only shifted, not divided by zero.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return tuple((x - mean) / std for x in (train, *others))
