"""The second-order lessons (lecture/lessons/second_order.py) and their commands: hessian, newton, modes."""

from __future__ import annotations

import re
import sys
from importlib import resources

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.lessons import second_order as so

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics


def aspect(path):
    with Image.open(path) as image:
        width, height = image.size
    return width / height


@pytest.mark.parametrize("layout", ["column", "row"])
def test_hessian_command_prints_the_check_and_draws_the_blocks(tmp_path, capsys, layout):
    assert main(["hessian", "--layout", layout, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "check: passed" in out and "so the loss is convex" in out
    difference = float(out.split("max |difference| ")[1].split(",")[0])
    assert difference < 1e-14
    assert "4 zero" in out  # D = 4 flat directions
    picture = tmp_path / f"hessian-{layout}.png"
    assert picture.exists() and abs(aspect(picture) - 16 / 9) < 0.05


def test_the_hessian_picture_gives_the_rounding_error_by_its_order_of_magnitude():
    # Its digits are the BLAS kernel's, so the picture says "< 1e-16" and is the same on any CPU.
    check = so.hessian_check("column")
    title = so.hessian_figure(check)._suptitle.get_text()
    assert f"max |difference| < 1e-{-int(np.floor(np.log10(check.max_difference))) - 1})" in title
    assert [so.order_of_rounding(x) for x in (2.8e-17, 1.4e-17, 1e-16, 9.9e-17, 0.0)] == [
        "< 1e-16",
        "< 1e-16",
        "< 1e-15",
        "< 1e-16",
        "0",
    ]


def test_hessian_check_sees_the_d_flat_directions_for_other_shapes():
    check = so.hessian_check("row", samples=1, features=3, classes=2)  # N = 1: rank 1, so more zeros
    assert check.rel_error < 1e-12 and check.zero_eigenvalues >= 3 and check.passed
    check = so.hessian_check("column", samples=50, features=5, classes=4, seed=3)
    assert check.zero_eigenvalues == 5 and check.passed


def test_newton_on_iris_converges_in_at_most_15_steps_and_beats_gradient_descent(tmp_path, capsys):
    assert main(["newton", "--dataset", "iris", "--gd-steps", "3000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "‖∇L‖ < 1e-08 after" in out
    steps = int(out.split("‖∇L‖ < 1e-08 after ")[1].split(" ")[0])
    assert steps <= 15
    assert "did not reach Newton's loss in its budget of 3000 steps" in out
    picture = tmp_path / "newton-iris.png"
    assert picture.exists() and abs(aspect(picture) - 16 / 9) < 0.05


def test_newton_run_records_every_step():
    run = so.newton_vs_gd("iris", gd_budget=20000)
    assert run.converged and run.newton_steps <= 15 and run.newton_grad_norm[-1] < 1e-8
    assert np.all(np.diff(run.newton_loss) <= 0)  # the line search only accepts descent
    reached = run.gd_steps_to_newton_loss
    assert reached is not None and reached > 100 * run.newton_steps  # the lesson, in numbers
    assert abs(run.gd_loss[reached] - run.newton_loss[-1]) <= 1e-10
    # The picture marks that step on gradient descent's loss curve, where the title's count is.
    ax_loss = so.newton_figure(run).axes[0]
    marks = [t for t in ax_loss.texts if "Newton's loss" in t.get_text()]
    assert len(marks) == 1 and f"step {reached}" in marks[0].get_text()
    assert marks[0].xy[0] == reached + 1


def test_newton_refuses_a_non_positive_l2(capsys):
    assert main(["newton", "--l2", "0"]) == 2
    assert "L2 strength must be positive" in capsys.readouterr().err


def test_modes_command_counts_the_passes(tmp_path, capsys):
    assert main(["modes", "--features", "2", "5", "--classes", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [(int(r[0]), int(r[2]), int(r[3])) for r in rows] == [(2, 6, 1), (5, 15, 1)]
    assert all(float(r[-1]) < 1e-12 for r in rows)
    assert (tmp_path / "modes.png").exists()


def test_modes_results_agree_and_forward_mode_needs_c_times_d_passes():
    rows = so.modes((3, 6), classes=4, samples=5)
    assert [(r.forward_passes, r.reverse_passes) for r in rows] == [(12, 1), (24, 1)]
    assert all(r.max_difference < 1e-12 for r in rows)


def test_without_matplotlib_one_line_says_what_was_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["hessian", "--out", str(tmp_path)]) == 1  # a missing part: status 1, as every command
    captured = capsys.readouterr()
    assert "check: passed" in captured.out
    assert "skipped " in captured.err and "hessian-column.png: matplotlib is not installed" in captured.err
    assert not list(tmp_path.iterdir())


def test_bad_sizes_are_refused(capsys):
    assert main(["hessian", "--classes", "1"]) == 2
    assert "argument --classes: must be at least 2, got 1" in capsys.readouterr().err
    assert main(["modes", "--features", "0"]) == 2  # refused by the parser: one line, status 2
    assert "--features: must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["hessian", "--features", "100000", "--classes", "100000"],
            "hessian: N = 40 samples, D = 100000 features and C = 100000 classes need about 2.98e+12 GiB, "
            "more than 1 GiB; take smaller sizes",
        ),
        (["hessian", "--samples", "10000000000"], "hessian: N = 10000000000 samples, D = 4 features"),
        (["hessian", "--features", "2000"], "C = 3 classes need about 1.07 GiB, more than 1 GiB"),
        (
            ["modes", "--features", "2", "100000000000"],
            "modes: D = 100000000000 features, C = 3 classes and N = 16 samples need about 3.87e+04 GiB",
        ),
        (["modes", "--features", "2", "--classes", "10000000000"], "C = 10000000000 classes and N = 16"),
    ],
)
def test_sizes_too_large_for_memory_are_refused_before_any_work(argv, words, capsys, monkeypatch):
    """As jacobian does: from an estimate of the memory needed, one line, instead of a MemoryError."""
    monkeypatch.setattr(np.random, "default_rng", lambda *a: pytest.fail("work started"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err == f"tinygrad-softmax {argv[0]}: error: {err.split(': error: ', 1)[1]}" and err.count("\n") == 1
    )
    assert words in err


def test_the_memory_estimates_cover_what_the_check_uses():
    for samples, features, classes in ((40, 4, 3), (30, 60, 5)):
        check = so.hessian_check("column", samples, features, classes)
        assert (
            so.hessian_check_bytes(samples, features, classes)
            >= 2 * check.engine.nbytes + 8 * features * samples
        )
    assert so.modes_bytes(64, 3, 16) >= 8 * (64 * 16 + 3 * 64)


def test_a_nan_difference_between_the_modes_is_a_failure(capsys, monkeypatch):
    good = so.modes((2,), classes=3, samples=4)[0]
    broken = so.ModesRow(3, 3, 9, 1, 1.0, 1.0, float("nan"))
    monkeypatch.setattr(so, "modes", lambda *a, **k: [good, broken])  # NaN after a good row: max() hides it
    assert main(["modes"]) == 1
    capsys.readouterr()


def test_the_demo_section_writes_its_pictures_and_text_without_times(tmp_path):
    lines = []
    section = so.demo_section(tmp_path, log=lines.append)
    assert section.passed
    names = sorted(p.name for p in section.files)
    assert names == ["hessian-column.png", "modes.png", "newton-iris.png", "second-order.txt"]
    values = section.values(tmp_path)
    template = resources.files("tinygrad_softmax.lecture").joinpath("report.md").read_text("utf-8")
    section_text = template.split("## 8. Second order")[1].split("\n## ")[0]
    assert set(re.findall(r"\$\{(\w+)\}", section_text)) == set(values)  # every placeholder filled
    assert "![" in values["newton_picture"] and " ms" not in values["modes_text"]
    assert " s)" not in values["newton_text"]  # no seconds: a second run writes the same report
    again = so.demo_section(tmp_path / "again", log=lines.append)
    text = (tmp_path / "second-order.txt").read_text(encoding="utf-8")
    assert text == (tmp_path / "again" / "second-order.txt").read_text(encoding="utf-8")
    assert again.newton.newton_steps == section.newton.newton_steps <= 15
    assert lines[0].startswith("second order: engine Hessian = closed form")


def test_newton_gradient_descent_takes_the_best_guaranteed_fixed_step():
    lines: list[str] = []
    run = so.newton_vs_gd("iris", gd_budget=200, log=lines.append)
    _, X, _ = so._newton_problem("iris", run.l2)
    smooth = 0.5 * np.linalg.eigvalsh(X @ X.T / X.shape[1]).max() + run.l2
    assert run.gd_lr == pytest.approx(2 / (smooth + run.l2)) and run.gd_lr < 2 / smooth
    assert np.all(np.diff(run.gd_loss) < 0)  # below 2/L: every step descends
    # Each Newton step was logged as it was taken, the same rows the report prints, then gradient descent's
    # progress every tenth of its budget.
    rows = [line for line in lines if line.startswith("  ") and line.split()[0].isdigit()]
    assert rows == so.format_newton(run).splitlines()[6 : 6 + run.newton_steps + 1]
    assert sum(line.startswith("  step ") and line.split()[1].isdigit() for line in lines) == 10
    text = so.format_newton(run)
    assert (
        "largest" not in text and f"2/(L + λ) = {run.gd_lr:.4g}" in text and f"2/L = {2 / smooth:.4g}" in text
    )
