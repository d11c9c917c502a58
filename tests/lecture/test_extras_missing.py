"""Every picture-making command, run where matplotlib, Pillow, SymPy or Graphviz's ``dot`` is missing.

Each command runs in a child process whose ``sitecustomize.py`` refuses to import
``matplotlib``, ``PIL`` and ``sympy`` (a meta-path finder, the way a machine without them
fails), and, for the ``dot`` case, with a PATH that holds no ``dot``. The one
policy of :mod:`tinygrad_softmax.lecture.extras`: the command does everything
else, then ends with one line per missing part naming what was skipped and the
exact install command, exit status 1, and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_softmax.lecture import extras

BLOCKER = '''
import sys


class _Missing:
    """Refuses matplotlib, PIL and SymPy, as on a machine where they were never installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("matplotlib", "PIL", "sympy"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Missing())
'''

MATPLOTLIB = extras.skipped("{what}", "matplotlib").split("{what}")[1]
SYMPY = extras.skipped("{what}", "SymPy").split("{what}")[1]
PILLOW = extras.skipped("{what}", "Pillow").split("{what}")[1]
DOT = extras.skipped("{what}", "dot").split("{what}")[1]


def run(tmp_path: Path, *argv: str, dot: bool) -> subprocess.CompletedProcess[str]:
    """``tinygrad-softmax argv`` without matplotlib and Pillow, and with or without ``dot``, in tmp_path."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    env["PYTHONPATH"] = str(site)
    # Without dot: a PATH with nothing on it. With dot: only the folder dot lives in.
    env["PATH"] = str(Path(extras.shutil.which("dot") or "/usr/bin/dot").parent) if dot else str(empty)
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_softmax", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_lines(result: subprocess.CompletedProcess[str], count: int) -> list[str]:
    """The last ``count`` lines the command printed (stdout, then its stderr)."""
    return (result.stdout + result.stderr).strip().splitlines()[-count:]


def assert_policy(result: subprocess.CompletedProcess[str], endings: list[tuple[str, str]]) -> None:
    """No traceback, status 1, and the output ends with one line per (what, install hint)."""
    printed = result.stdout + result.stderr
    lesson = printed.replace("error", "").replace("AnomalyError:", "")  # the anomaly lesson prints one
    assert "Traceback" not in printed and "Error" not in lesson, printed
    assert result.returncode == 1, printed
    lines = last_lines(result, len(endings))
    for line, (what, hint) in zip(lines, endings):
        assert "skipped" in line and what in line and line.endswith(hint), (line, what, hint)


@pytest.mark.parametrize("dot", [False, True], ids=["without-dot", "with-dot"])
def test_epsilon_prints_its_table_then_skips_the_plot(tmp_path, dot):
    result = run(tmp_path, "epsilon", "--plot", "eps.png", dot=dot)
    assert_policy(result, [("eps.png", MATPLOTLIB)])
    assert "float32" in result.stdout and "float64" in result.stdout  # the table came first
    assert not (tmp_path / "eps.png").exists()


def test_train_trains_then_skips_the_pictures(tmp_path):
    result = run(tmp_path, "train", "--dataset", "iris", "--epochs", "1", "--out", "pics", dot=False)
    assert_policy(result, [("pics", MATPLOTLIB)])
    assert "test accuracy" in result.stdout


def test_boundaries_trains_both_models_then_skips_the_picture(tmp_path):
    result = run(tmp_path, "boundaries", "--dataset", "moons", "--out", "pics", dot=False)
    assert_policy(result, [("decision-boundary picture", MATPLOTLIB)])
    assert "two-layer net" in result.stdout


@pytest.mark.parametrize(
    ("argv", "checked", "picture"),
    [
        (
            ["hessian", "--samples", "3", "--features", "2", "--classes", "2"],
            "check: passed",
            "hessian-column.png",
        ),
        (["newton", "--max-steps", "20", "--gd-steps", "10"], "Newton", "newton-iris.png"),
        (["modes", "--features", "2", "--classes", "2"], "reverse mode", "modes.png"),
    ],
    ids=["hessian", "newton", "modes"],
)
def test_the_second_order_commands_print_their_numbers_then_skip_the_picture(
    tmp_path, argv, checked, picture
):
    result = run(tmp_path, *argv, "--out", "pics", dot=False)
    assert_policy(result, [(str(Path("pics") / picture), MATPLOTLIB)])
    assert checked in result.stdout
    assert not (tmp_path / "pics" / picture).exists()


@pytest.mark.parametrize(
    ("argv", "pictures", "printed"),
    [
        (["graph", "--out", "g.png"], ["g.png"], ""),
        (["explore", "--out", "e.html"], ["e.html"], ""),
        (["anomaly", "--out", "pics"], ["pics/anomaly_naive.png", "pics/anomaly_stable.png"], "max |Z.grad"),
    ],
    ids=["graph", "explore", "anomaly"],
)
def test_the_graph_commands_keep_the_dot_text_and_skip_the_picture(tmp_path, argv, pictures, printed):
    result = run(tmp_path, *argv, dot=False)
    assert_policy(result, [(picture, DOT) for picture in pictures])
    assert printed in result.stdout  # the numbers came first
    for picture in map(Path, pictures):
        assert (tmp_path / picture.with_suffix(".dot")).is_file() and not (tmp_path / picture).exists()
        remake = f"dot -T{picture.suffix[1:]} {picture.with_suffix('.dot')} -o {picture}"
        # A command that remakes the file from its DOT text, where Graphviz alone makes that file:
        # a picture, not the explorer page.
        assert (remake in result.stderr) == (picture.suffix == ".png"), result.stderr


def test_animate_without_pillow_writes_the_frames_and_skips_only_the_gif(tmp_path):
    if not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed here")
    result = run(tmp_path, "animate", "--gif", "--out", "frames", dot=True)
    assert_policy(result, [("frames.gif", PILLOW)])
    assert sorted(p.name for p in (tmp_path / "frames").glob("frame_*.png"))[:1] == ["frame_001.png"]
    assert not (tmp_path / "frames" / "frames.gif").exists()


def test_animate_without_dot_says_the_frames_were_skipped(tmp_path):
    result = run(tmp_path, "animate", "--gif", "--out", "frames", dot=False)
    assert_policy(result, [("backward frames", DOT)])
    assert "graph.png" not in result.stdout + result.stderr  # no advice about a picture it never makes


@pytest.mark.parametrize("dot", [False, True], ids=["without-dot", "with-dot"])
def test_the_demo_does_everything_else_then_one_line_per_missing_part(tmp_path, dot):
    if dot and not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed here")
    result = run(tmp_path, "demo", "--out", "demo", dot=dot)
    plots = ("the plots", MATPLOTLIB)
    gif = ("frames.gif", PILLOW)
    if dot:
        assert_policy(result, [gif, plots])
        assert (tmp_path / "demo" / "frames" / "frame_001.png").exists()
        assert (tmp_path / "demo" / "graph.png").exists()
    else:
        # the GIF, the two graph pictures (their DOT text kept), the frames, then the plots
        assert_policy(
            result, [gif, ("graph.png", DOT), ("graph-grads.png", DOT), ("backward frames", DOT), plots]
        )
        assert (tmp_path / "demo" / "graph.dot").exists()
    report = tmp_path / "demo" / "report.md"
    assert report.exists() and "Iris" in report.read_text(encoding="utf-8")
    assert (
        not list((tmp_path / "demo").glob("*-boundaries.png"))
        and not (tmp_path / "demo" / "modes.png").exists()
    )


def test_exercise_check_grades_then_skips_the_picture(tmp_path):
    assert run(tmp_path, "exercise", "solution", "kit", dot=False).returncode == 0
    result = run(tmp_path, "exercise", "check", "kit", "--picture", "wrong.png", dot=False)
    assert_policy(result, [("wrong.png", DOT)])  # every rule passed: status 1 for the picture alone
    assert "score: 11 / 11" in result.stdout


def test_derive_prints_the_formulas_then_skips_the_element_view_and_the_slide(tmp_path):
    result = run(tmp_path, "derive", "--elements", "3,1", "--out", "formula.png", dot=False)
    assert_policy(result, [("the element view", SYMPY), ("formula.png", MATPLOTLIB)])
    assert "∂L/∂Z = (softmax(Z) − onehot(y))/N" in result.stdout  # the formulas came first
    assert not (tmp_path / "formula.png").exists()
