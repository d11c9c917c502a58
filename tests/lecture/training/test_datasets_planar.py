"""The generated datasets in the plane: spiral (CS231n) and moons, deterministic per seed."""

import numpy as np
import pytest

from tinygrad_softmax import datasets


def test_spiral_has_the_documented_shapes_and_balanced_classes():
    data = datasets.spiral(points_per_class=100, classes=3, noise=0.2, seed=0)
    assert data.name == "spiral" and data.num_classes == 3
    assert data.X.shape == (300, 2) and data.X.dtype == np.float64
    assert data.labels.shape == (300,) and np.issubdtype(data.labels.dtype, np.integer)
    assert np.bincount(data.labels).tolist() == [100, 100, 100]
    np.testing.assert_array_equal(data.labels[:100], 0)  # in blocks, class by class
    assert datasets.spiral(7, 5, 0.1, 0).X.shape == (35, 2)


def test_spiral_is_the_cs231n_construction():
    """Without noise, point i of arm k sits at radius i/(n−1) and angle 4k + 4i/(n−1)."""
    n, k = 50, 3
    data = datasets.spiral(points_per_class=n, classes=k, noise=0.0, seed=0)
    radius = np.hypot(data.X[:, 0], data.X[:, 1])
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, n), k), atol=1e-12)
    angle = np.arctan2(data.X[:, 0], data.X[:, 1])  # x₁ = r sin t, x₂ = r cos t
    expected = np.concatenate([np.linspace(4 * c, 4 * (c + 1), n) for c in range(k)])
    wrapped = np.angle(np.exp(1j * (angle - expected)))  # difference modulo 2π
    assert np.abs(wrapped[radius > 0]).max() < 1e-9
    noisy = datasets.spiral(n, k, 0.2, seed=0)
    np.testing.assert_allclose(np.hypot(*noisy.X.T), radius, atol=1e-12)  # noise moves the angle only
    assert 0.1 < np.abs(np.angle(np.exp(1j * (np.arctan2(*noisy.X.T) - expected)))).mean() < 0.3


def test_moons_have_the_documented_shapes_classes_and_geometry():
    data = datasets.moons(n=201, noise=0.0, seed=0)
    assert data.X.shape == (201, 2) and data.num_classes == 2
    assert np.bincount(data.labels).tolist() == [100, 101]  # class 0 gets n // 2
    upper, lower = data.X[data.labels == 0], data.X[data.labels == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)  # the unit half circle above
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)  # centre (1, 0.5)
    assert upper[:, 1].min() >= 0 and lower[:, 1].max() <= 0.5
    noisy = datasets.moons(n=200, noise=0.1, seed=0)
    assert 0.05 < np.std(noisy.X - datasets.moons(200, 0.0).X) < 0.15


@pytest.mark.parametrize("make", [lambda s: datasets.spiral(seed=s), lambda s: datasets.moons(seed=s)])
def test_generated_data_is_the_same_for_the_same_seed(make):
    np.testing.assert_array_equal(make(3).X, make(3).X)
    np.testing.assert_array_equal(make(3).labels, make(3).labels)
    assert not np.array_equal(make(3).X, make(4).X)


def test_load_knows_the_generated_sets_with_their_defaults():
    assert datasets.load("spiral").X.shape == (300, 2)
    assert datasets.load("moons").X.shape == (200, 2)
    np.testing.assert_array_equal(datasets.load("spiral").X, datasets.spiral().X)
    assert "spiral" in datasets.NAMES and "moons" in datasets.NAMES


def test_bad_sizes_and_noise_are_refused():
    with pytest.raises(ValueError, match="spiral: classes"):
        datasets.spiral(classes=1)
    with pytest.raises(ValueError, match="spiral: points_per_class"):
        datasets.spiral(points_per_class=1.5)
    with pytest.raises(ValueError, match="moons: noise"):
        datasets.moons(noise=-0.1)
    with pytest.raises(ValueError, match="moons: n"):
        datasets.moons(n=1)
