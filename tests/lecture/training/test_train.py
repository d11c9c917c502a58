"""Training the softmax classifier through the engine on the shipped datasets."""

import json

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax import analytic, datasets
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.training.train import plot_weights, save_pictures, train


@pytest.fixture(scope="module")
def digits_run():
    return train("digits", log=None)


def test_digits_reach_well_above_90_percent_on_the_test_set(digits_run):
    assert digits_run.test_accuracy[-1] > 0.93
    assert digits_run.train_accuracy[-1] > digits_run.test_accuracy[-1] - 0.01
    assert digits_run.test_size == 450 and digits_run.train_size == 1347
    assert digits_run.W.shape == (10, 64) and digits_run.b.shape == (10, 1)


def test_iris_is_learned():
    run = train("iris", log=None)
    assert run.test_accuracy[-1] >= 0.9 and run.train_accuracy[-1] >= 0.95


def test_loss_starts_at_ln_c_and_falls(digits_run):
    losses = np.array(digits_run.train_loss)
    assert losses[0] == pytest.approx(np.log(10), abs=0.05)  # small weights: p ≈ 1/C for every class
    assert losses[-1] < losses[0] / 10
    assert np.all(np.diff(losses) < 0)  # full-batch descent with this step never goes uphill here
    assert len(losses) == digits_run.epochs + 1  # before every step, and after the last


def test_one_step_is_w_minus_lr_times_the_closed_form_gradient():
    """One epoch moves W by exactly −lr · dZ Xᵀ and b by −lr · Σ dZ, the closed form."""
    data = datasets.load_iris()
    before = train(data, epochs=1, lr=1e-12, log=None)  # practically no step: the starting point
    after = train(data, epochs=1, lr=0.3, log=None)
    rows_train, _ = datasets.train_test_split(data.labels, 0.25, 0)
    x_train = datasets.standardise(data.X[rows_train])[0].T
    ref = analytic.linear_classifier(before.W, before.b, x_train, data.labels[rows_train], "column")
    np.testing.assert_allclose(after.W, before.W - 0.3 * ref.dW, atol=1e-10)
    np.testing.assert_allclose(after.b, before.b - 0.3 * ref.db, atol=1e-10)


def test_runs_are_repeatable_and_seeds_matter():
    first = train("iris", epochs=30, log=None)
    second = train("iris", epochs=30, log=None)
    assert first.train_loss == second.train_loss
    np.testing.assert_array_equal(first.W, second.W)
    other = train("iris", epochs=30, seed=1, log=None)
    assert other.train_loss != first.train_loss


def test_progress_lines_show_epoch_loss_and_accuracy():
    lines = []
    train("iris", epochs=20, log=lines.append)
    assert lines[0].startswith("epoch  1/20 [")
    assert any(line.startswith("epoch 20/20 [####################]") for line in lines)
    assert all("loss" in line and "train" in line and "test" in line for line in lines)
    assert "test accuracy" in lines[-1] and "ln 3" in lines[-1]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="epochs"):
        train("iris", epochs=0, log=None)
    with pytest.raises(ValueError, match="learning rate"):
        train("iris", lr=-1.0, log=None)


def test_pictures_open_and_the_weights_are_ten_templates(digits_run, tmp_path):
    paths = save_pictures(digits_run, tmp_path)
    assert [p.name for p in paths] == ["digits-loss.png", "digits-weights.png"]
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 200
    iris = train("iris", epochs=5, log=None)
    assert [p.name for p in save_pictures(iris, tmp_path)] == ["iris-loss.png"]
    with pytest.raises(ValueError, match="iris"):
        plot_weights(iris, tmp_path / "nope.png")


def test_cli_train_prints_progress_and_writes_pictures(tmp_path, capsys):
    assert main(["train", "--dataset", "iris", "--epochs", "40", "--lr", "0.5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 40/40" in out and "test accuracy" in out
    assert (tmp_path / "iris-loss.png").is_file()
    summary = train("iris", epochs=40, lr=0.5, log=None).summary()
    assert f"test accuracy {100 * summary['final_test_accuracy']:.1f}%" in out
    assert json.loads(json.dumps(summary))["epochs"] == 40
