"""The lab lessons: the softmax Jacobian demo, the naive softmax caught by detect_anomaly, the float32 lesson.

Each with the command that prints it (``jacobian``, ``anomaly``, ``epsilon``).
"""

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax import AnomalyError, Tensor, detect_anomaly
from tinygrad_softmax import functional as F
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.lessons.lab import (
    EPSILONS,
    anomaly_demo,
    best_epsilon,
    epsilon_figure,
    epsilon_sweep,
    format_anomaly_demo,
    format_epsilon_sweep,
    format_softmax_jacobian,
    naive_cross_entropy,
    numerical_jacobian,
    plot_epsilon_sweep,
    softmax_jacobian_demo,
)

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics

# ---------------------------------------------------------------- the softmax Jacobian


def test_numerical_jacobian_of_softmax_is_the_closed_form_row_by_row(rng):
    x = rng.normal(size=(2, 3))
    saved = x.copy()
    J = numerical_jacobian(F.softmax, x)
    assert J.shape == (2, 3, 2, 3)
    for i in range(2):
        p = np.exp(x[i]) / np.exp(x[i]).sum()
        np.testing.assert_allclose(J[i, :, i, :], np.diag(p) - np.outer(p, p), atol=1e-9)
        np.testing.assert_array_equal(J[i, :, 1 - i, :], 0.0)  # rows do not mix
    np.testing.assert_array_equal(x, saved)  # the input is perturbed on a copy


@pytest.mark.parametrize("classes, seed", [(2, 0), (4, 0), (10, 3)])
def test_softmax_jacobian_demo_lands_on_p_minus_y(classes, seed):
    demo = softmax_jacobian_demo(classes, seed)
    assert demo.engine_jacobian.shape == (classes, classes)
    assert demo.closed_form_error < 1e-15
    assert demo.finite_difference_error < 1e-8
    assert demo.chain_error < 1e-14
    # The chain really is the derivation's dz: p minus the one-hot label.
    expected = demo.p.copy()
    expected[demo.label] -= 1
    np.testing.assert_allclose(demo.chain, expected, atol=1e-14)
    text = format_softmax_jacobian(demo)
    assert "diag(p) − p pᵀ" in text and "p − y" in text


def test_softmax_jacobian_demo_rejects_one_class():
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        softmax_jacobian_demo(1)


def test_cli_jacobian_prints_the_comparison(capsys):
    assert main(["jacobian", "--classes", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    demo = softmax_jacobian_demo(3, 1)
    assert "Closed form diag(p) − p pᵀ" in out
    assert f"true class y = {demo.label}" in out
    assert "-0.0000" not in out  # ∂L/∂p is 0 off the true class, printed as 0
    assert out.count("\n     [") == 2 * (3 - 1)  # two 3×3 matrices


# ---------------------------------------------------------------- the naive softmax, caught


@pytest.fixture
def quiet_numpy():
    """Overflow is what these tests provoke; NumPy's warnings about it are noise here."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield


def test_naive_cross_entropy_equals_the_stable_one_at_moderate_logits(quiet_numpy):
    z = Tensor(np.random.default_rng(1).normal(size=(4, 6)), requires_grad=True)
    labels = np.array([0, 3, 3, 1, 2, 0])
    naive = naive_cross_entropy(z, labels, axis=0)
    naive.backward()
    naive_grad = z.grad.copy()
    z.zero_grad()
    stable = F.cross_entropy(z, labels, axis=0)
    stable.backward()
    assert naive.item() == pytest.approx(stable.item(), rel=1e-12)
    np.testing.assert_allclose(naive_grad, z.grad, rtol=1e-10, atol=1e-15)


def test_naive_cross_entropy_overflows_where_the_stable_one_does_not(quiet_numpy):
    z = Tensor([[1000.0, 0.0], [999.0, 1.0]], requires_grad=True, name="Z")
    labels = np.array([0, 1])
    assert np.isnan(naive_cross_entropy(z, labels, axis=0).item())
    with detect_anomaly():
        assert np.isfinite(F.cross_entropy(z, labels, axis=0).item())
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"exp: forward produced Inf .*'Z' \(2, 2\)"):
        naive_cross_entropy(z, labels, axis=0)


def test_anomaly_demo_catches_exp_and_the_stable_version_passes(quiet_numpy):
    demo = anomaly_demo()
    assert demo.error.op == "exp"
    assert demo.error.inputs[0].name == "Z"
    assert np.isnan(demo.silent_loss)
    assert demo.logits_range[0] > 900
    # softmax(z + c) = softmax(z): the shifted classifier has the unshifted loss.
    assert demo.stable_loss == pytest.approx(demo.unshifted_loss, rel=1e-9)
    assert demo.stable_grad_error < 1e-12
    assert demo.graph_path is None
    text = format_anomaly_demo(demo)
    assert "AnomalyError: exp: forward produced Inf" in text and "loss = nan" in text


def test_anomaly_demo_at_a_small_shift_has_nothing_to_catch(quiet_numpy):
    with pytest.raises(RuntimeError, match="did not overflow at a shift of 10"):
        anomaly_demo(shift=10.0)


def test_anomaly_demo_draws_the_offending_node(quiet_numpy, tmp_path):
    demo = anomaly_demo(out_dir=tmp_path)
    assert demo.graph_path is not None and demo.graph_path.exists()
    assert demo.graph_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert demo.stable_graph_path is not None and demo.stable_graph_path.exists()
    assert str(demo.graph_path) in format_anomaly_demo(demo)
    assert demo.error.node.name == "exp(Z)"  # the red node is labelled by what made it


def test_cli_anomaly_prints_the_error_and_where_the_graph_is(quiet_numpy, capsys, tmp_path):
    assert main(["anomaly", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "AnomalyError: exp: forward produced Inf" in out
    assert str(tmp_path / "anomaly_naive.png") in out
    assert (tmp_path / "anomaly_naive.png").exists()


# ---------------------------------------------------------------- the float32 lesson


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
        assert image.size == (1920, 1080)  # a slide's own size


def test_plot_rejects_an_unknown_extension(rows, tmp_path):
    with pytest.raises(ValueError, match=r"'sweep.gif'.*\.png, \.svg or \.pdf"):
        plot_epsilon_sweep(rows, tmp_path / "sweep.gif")


def test_cli_epsilon_prints_the_table_and_writes_the_plot(capsys, tmp_path):
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
