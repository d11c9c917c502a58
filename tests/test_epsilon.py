"""The float32 lesson: the central-difference error has a valley, and float64's is far deeper."""

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax.lecture.lab import (
    EPSILONS,
    best_epsilon,
    epsilon_figure,
    epsilon_sweep,
    format_epsilon_sweep,
    plot_epsilon_sweep,
)


@pytest.fixture(scope="module")
def rows():
    return epsilon_sweep()


def errors(rows, dtype):
    return np.array([row.errors[dtype] for row in rows])


def test_sweeps_1e_minus_1_to_1e_minus_10_in_both_dtypes(rows):
    assert [row.eps for row in rows] == pytest.approx([10.0**-k for k in range(1, 11)])
    assert len(EPSILONS) == 10
    assert all(set(row.errors) == {"float32", "float64"} for row in rows)


def test_float64_bottom_of_the_valley_is_deep_and_near_the_cube_root_of_machine_epsilon(rows):
    best = best_epsilon(rows, "float64")
    assert best.errors["float64"] < 1e-9
    assert 1e-7 <= best.eps <= 1e-4  # ∛(2.2e-16) ≈ 6e-6


def test_float32_valley_is_shallow_and_sits_at_a_bigger_step(rows):
    best32, best64 = best_epsilon(rows, "float32"), best_epsilon(rows, "float64")
    assert best32.eps > best64.eps
    assert best32.errors["float32"] > 1000 * best64.errors["float64"]
    assert 1e-7 < best32.errors["float32"] < 1e-3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_both_ends_of_the_sweep_are_worse_than_the_bottom(rows, dtype):
    e = errors(rows, dtype)
    bottom = e.min()
    assert e[0] > 10 * bottom  # eps = 1e-1: truncation
    assert e[-1] > 10 * bottom  # eps = 1e-10: round-off


def test_truncation_error_shrinks_like_eps_squared(rows):
    e = errors(rows, "float64")
    for k in range(2):  # 1e-1 → 1e-2 → 1e-3, all truncation-dominated
        assert 50 < e[k] / e[k + 1] < 200


def test_float32_steps_below_its_resolution_vanish(rows):
    """At eps = 1e-10, x ± eps rounds back to x in float32: the difference is 0, rel_error exactly 1."""
    assert rows[-1].errors["float32"] == pytest.approx(1.0)
    assert rows[-1].errors["float64"] < 1e-3


def test_a_custom_sweep_follows_its_arguments():
    custom = epsilon_sweep(epsilons=[1e-3, 1e-6], dtypes=[np.float64], seed=3)
    assert [row.eps for row in custom] == [1e-3, 1e-6]
    assert list(custom[0].errors) == ["float64"]
    assert custom[1].errors["float64"] < custom[0].errors["float64"]


def test_table_lists_every_step_and_the_best_one_per_dtype(rows):
    text = format_epsilon_sweep(rows)
    for row in rows:
        assert f"{row.eps:.0e}" in text
        assert f"{row.errors['float32']:.2e}" in text
    assert f"float64: best eps {best_epsilon(rows, 'float64').eps:.0e}" in text
    assert f"float32: best eps {best_epsilon(rows, 'float32').eps:.0e}" in text


def test_plot_is_written_as_a_png(rows, tmp_path):
    path = plot_epsilon_sweep(rows, tmp_path / "sub" / "sweep.png")
    assert path == tmp_path / "sub" / "sweep.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 400 and image.height > 300


def test_plot_rejects_an_unknown_extension(rows, tmp_path):
    with pytest.raises(ValueError, match=r"'sweep.gif'.*\.png, \.svg or \.pdf"):
        plot_epsilon_sweep(rows, tmp_path / "sweep.gif")


def test_cli_epsilon_prints_the_table_and_writes_the_plot(capsys, tmp_path):
    from tinygrad_softmax.cli import main

    path = tmp_path / "eps.svg"
    assert main(["epsilon", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "float64" in out and "1e-10" in out
    assert f"log-log plot written to {path}" in out
    assert path.read_text().lstrip().startswith("<?xml")


def test_figure_draws_one_log_log_line_per_dtype_from_the_sweep(rows):
    ax = epsilon_figure(rows).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    for dtype in ("float32", "float64"):
        np.testing.assert_array_equal(lines[dtype].get_xdata(), [row.eps for row in rows])
        np.testing.assert_array_equal(lines[dtype].get_ydata(), errors(rows, dtype))
