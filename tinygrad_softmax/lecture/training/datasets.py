"""Two small real datasets shipped inside the package (Iris, the 8×8 handwritten digits)
and two generated ones in the plane that no linear classifier can separate (spiral, moons).

No download at run time: the files live in ``tinygrad_softmax/lecture/training/data/`` (source
and licence in ``data/README.md``); the spiral and the moons are drawn from a
seeded random generator. Samples come one per *row* (N×D), the way the files
store them; the trainer transposes them into the derivation's column layout.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = [
    "Dataset",
    "load",
    "load_iris",
    "load_digits",
    "spiral",
    "moons",
    "train_test_split",
    "feature_statistics",
    "standardise",
    "NAMES",
]

NAMES = ("iris", "digits", "spiral", "moons")


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
    raw = (resources.files(__package__) / "data" / filename).read_bytes()
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


def _check_count(who: str, what: str, value: int, smallest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
        raise ValueError(f"{who}: {what} must be an integer >= {smallest}, got {value!r}")
    return int(value)


def _check_noise(who: str, noise: float) -> float:
    if not (isinstance(noise, (int, float, np.floating)) and 0 <= noise < np.inf):
        raise ValueError(f"{who}: noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def spiral(points_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Interleaved spiral arms in the plane, one arm per class (the CS231n construction).

    Point i of arm k (i = 0 … n−1, n = ``points_per_class``) sits at radius
    ``r = i/(n−1)`` and angle ``t = 4k + 4·i/(n−1) + noise·ε`` (radians, ε
    standard normal), at ``(r sin t, r cos t)``. Each arm turns by 4 radians
    from the centre to the unit circle, and the arms start 4 radians apart, so
    the classes wrap around each other: no straight line separates them.

    ``X`` is (classes · points_per_class)×2, ``labels`` run 0, 0, …, 1, 1, …
    (each class ``points_per_class`` times, in blocks). The same ``seed`` gives
    the same points.
    """
    n = _check_count("spiral", "points_per_class", points_per_class, 2)
    k = _check_count("spiral", "classes", classes, 2)
    noise = _check_noise("spiral", noise)
    rng = np.random.default_rng(seed)
    X = np.zeros((n * k, 2))
    labels = np.repeat(np.arange(k), n)
    radius = np.linspace(0.0, 1.0, n)
    for c in range(k):
        angle = np.linspace(4.0 * c, 4.0 * (c + 1), n) + noise * rng.standard_normal(n)
        X[c * n : (c + 1) * n] = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    return Dataset(
        name="spiral",
        X=X,
        labels=labels,
        class_names=tuple(f"arm {c}" for c in range(k)),
        feature_names=("x₁", "x₂"),
    )


def moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles (the construction of scikit-learn's ``make_moons``).

    Class 0, the upper moon: ``(cos θ, sin θ)`` for θ evenly spaced in [0, π];
    class 1, the lower moon: ``(1 − cos θ, 0.5 − sin θ)``, shifted so that its
    tip reaches into the upper moon's hollow. Gaussian noise of standard
    deviation ``noise`` is added to every coordinate.

    ``X`` is n×2; class 0 has ``n // 2`` points (first), class 1 the other
    ``n − n // 2``. The same ``seed`` gives the same points.
    """
    n = _check_count("moons", "n", n, 2)
    noise = _check_noise("moons", noise)
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    upper = np.linspace(0.0, np.pi, n_upper)
    lower = np.linspace(0.0, np.pi, n_lower)
    X = np.concatenate(
        [
            np.column_stack([np.cos(upper), np.sin(upper)]),
            np.column_stack([1.0 - np.cos(lower), 0.5 - np.sin(lower)]),
        ]
    )
    X += noise * rng.standard_normal(X.shape)
    return Dataset(
        name="moons",
        X=X,
        labels=np.repeat([0, 1], [n_upper, n_lower]),
        class_names=("upper moon", "lower moon"),
        feature_names=("x₁", "x₂"),
    )


def load(name: str) -> Dataset:
    """``load("iris")``, ``load("digits")``, or ``spiral()`` / ``moons()`` with their defaults."""
    if name == "iris":
        return load_iris()
    if name == "digits":
        return load_digits()
    if name == "spiral":
        return spiral()
    if name == "moons":
        return moons()
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


def feature_statistics(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's (column's) mean and standard deviation over the training rows.

    A feature that is constant in the training set (a digit pixel that is always
    blank) gets standard deviation 1, so standardising only shifts it.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale every feature (column) to mean 0 and standard deviation 1, using the training rows' statistics.

    A feature that is constant in the training set is only shifted, not divided by zero.
    """
    mean, std = feature_statistics(train)
    return tuple((x - mean) / std for x in (train, *others))
