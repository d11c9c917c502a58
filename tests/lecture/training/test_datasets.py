"""The datasets shipped in the package: loaders, split, standardisation, and the files in the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_softmax import datasets

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tinygrad_softmax" / "lecture" / "training" / "data"


def test_iris_has_150_flowers_4_features_3_balanced_classes():
    iris = datasets.load_iris()
    assert iris.X.shape == (150, 4) and iris.X.dtype == np.float64
    assert iris.labels.shape == (150,) and np.issubdtype(iris.labels.dtype, np.integer)
    assert iris.class_names == ("setosa", "versicolor", "virginica") and iris.num_classes == 3
    assert np.bincount(iris.labels).tolist() == [50, 50, 50]
    np.testing.assert_array_equal(iris.X[0], [5.1, 3.5, 1.4, 0.2])  # Fisher's first flower
    assert iris.labels[0] == 0 and iris.image_shape is None
    assert len(iris.feature_names) == 4


def test_digits_are_1797_images_of_8x8_pixels_0_to_16():
    digits = datasets.load_digits()
    assert digits.X.shape == (1797, 64) and digits.image_shape == (8, 8)
    assert digits.num_classes == 10 and sorted(set(digits.labels.tolist())) == list(range(10))
    assert digits.X.min() == 0 and digits.X.max() == 16
    np.testing.assert_array_equal(digits.X, np.round(digits.X))  # pixel counts are integers
    assert np.bincount(digits.labels).min() >= 170
    # The first image is a 0: a ring of ink around an empty middle.
    first = digits.X[0].reshape(8, 8)
    assert digits.labels[0] == 0 and first[3:5, 3:5].max() == 0 and first[3:5, 1:3].max() > 8


def test_load_by_name_and_unknown_names():
    assert datasets.load("iris").name == "iris"
    with pytest.raises(ValueError, match=r"mnist.*iris, digits"):
        datasets.load("mnist")


def test_split_is_stratified_disjoint_complete_and_repeatable():
    labels = datasets.load_digits().labels
    train, test = datasets.train_test_split(labels, 0.25, seed=0)
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(labels.size))
    for c in range(10):
        share = np.mean(labels[test] == c) / np.mean(labels == c)
        assert 0.9 < share < 1.1
    again = datasets.train_test_split(labels, 0.25, seed=0)
    np.testing.assert_array_equal(train, again[0])
    other = datasets.train_test_split(labels, 0.25, seed=1)
    assert not np.array_equal(test, other[1])
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.train_test_split(labels, 1.5)


def test_standardise_uses_the_training_statistics_and_survives_constant_features():
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(5, 3, size=200), np.zeros(200)])
    test = np.column_stack([rng.normal(5, 3, size=50), np.ones(50)])
    train_s, test_s = datasets.standardise(train, test)
    np.testing.assert_allclose(train_s[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(train_s[:, 0].std(), 1, atol=1e-12)
    assert np.all(train_s[:, 1] == 0) and np.all(test_s[:, 1] == 1)  # shifted, never divided by 0
    assert abs(test_s[:, 0].mean()) < 0.5 and test_s[:, 0].mean() != 0


def test_the_data_files_and_their_licence_are_in_the_built_wheel(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in ("iris.csv", "digits.csv.gz", "README.md"):
            member = f"tinygrad_softmax/lecture/training/data/{name}"
            assert member in names
            assert archive.read(member) == (DATA / name).read_bytes()
    assert "CC BY 4.0" in (DATA / "README.md").read_text(encoding="utf-8")

    # Loaded from the wheel itself (a zip on sys.path), not from this checkout.
    probe = (
        f"import sys; sys.path.insert(0, {str(wheel)!r}); "
        "import tinygrad_softmax.lecture.training.datasets as d; "
        "print(d.__file__); print(d.load_digits().X.shape, d.load_iris().X.shape)"
    )
    ran = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    where, shapes = ran.stdout.strip().splitlines()
    assert where.startswith(str(wheel)) and shapes == "(1797, 64) (150, 4)"
