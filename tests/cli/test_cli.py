"""The command line as a whole: help on every subcommand, bad values as one-line errors."""

from pathlib import Path

import pytest

from tinygrad_softmax.cli import build_parser, main

COMMANDS = [
    "demo",
    "compare",
    "train",
    "jacobian",
    "anomaly",
    "epsilon",
    "graph",
    "animate",
    "explain",
    "derive",
    "bench",
]


def test_every_subcommand_is_there():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: tinygrad-softmax {command}" in capsys.readouterr().out


def test_a_bad_value_is_a_one_line_error_not_a_traceback(capsys):
    assert main(["train", "--epochs", "-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-softmax train: error: ") and "epochs" in err and "-3" in err
    assert "Traceback" not in err


def test_an_unknown_option_names_the_subcommand_and_its_help(capsys):
    """`epsilon --out x.png` (it takes --plot): the error points at epsilon's --help, not the top's."""
    assert main(["epsilon", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tinygrad-softmax epsilon: error: unrecognized arguments: --out x.png "
        "(see tinygrad-softmax epsilon --help)\n"
    )
    assert not Path("x.png").exists()


def test_python_dash_m_works():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_softmax", "--help"], capture_output=True, text=True, check=True
    )
    assert "tinygrad-softmax" in result.stdout and "demo" in result.stdout


def _lecture_modules_loaded_by(code: str) -> list[str]:
    import subprocess
    import sys

    loaded = "sorted(m for m in sys.modules if m.startswith('tinygrad_softmax.lecture'))"
    probe = f"{code}\nimport sys\nprint({loaded})"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(result.stdout.strip().splitlines()[-1])


def test_building_the_command_line_imports_no_room():
    # Each subcommand imports its room when it runs; its arguments are added when it is parsed.
    code = "from tinygrad_softmax.cli import build_parser\nbuild_parser().format_help()"
    assert _lecture_modules_loaded_by(code) == []


def test_a_subcommand_imports_only_its_own_room():
    parse = "from tinygrad_softmax.cli import build_parser\nbuild_parser().parse_args"
    assert "tinygrad_softmax.lecture.lessons.bugs" not in _lecture_modules_loaded_by(f"{parse}(['train'])")
    code = f"{parse}(['compare'])"
    assert "tinygrad_softmax.lecture.lessons.bugs" in _lecture_modules_loaded_by(code)


def test_the_bug_names_are_listed_in_compare_help(capsys):
    from tinygrad_softmax.lecture.lessons.bugs import BUGS

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in BUGS)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--epochs", "-3"], ["epochs", "-3"]),
        (["train", "--lr", "0"], ["--lr", "0"]),
        (["jacobian", "--classes", "1"], ["--classes", "must be at least 2, got 1"]),
        (["animate", "--delay-ms", "0"], ["--delay-ms", "0"]),
        (["graph", "--out", "g.gif"], ["'.gif'"]),
        (["epsilon", "--plot", "sweep.gif"], ["sweep.gif"]),
    ],
)
def test_every_bad_value_is_status_2_and_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-softmax {argv[0]}: error: ")
    assert err.count("\n") == 1 and all(word in err for word in words)


# ---------------------------------------------------------------- derive


@pytest.mark.parametrize("layout", ["column", "row"])
def test_derive_prints_the_three_formulas(layout, capsys):
    assert main(["derive", "--layout", layout]) == 0
    out = capsys.readouterr().out
    assert "∂L/∂Z = (softmax(Z) − onehot(y))/N" in out
    assert ("∂L/∂W = ∂L/∂Z · Xᵀ" if layout == "column" else "∂L/∂W = Xᵀ · ∂L/∂Z") in out
    assert "∂L/∂b = Σₙ ∂L/∂Z" in out
    assert "Checked: every formula above" in out


def test_derive_latex_elements_and_slide(tmp_path, capsys):
    pytest.importorskip("sympy")
    pytest.importorskip("matplotlib")
    path = tmp_path / "formula.png"
    assert main(["derive", "--latex", "--elements", "3,1", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\\begin{align*}" in out and "\\frac{\\partial L}{\\partial z_{1}}" in out
    assert path.exists() and f"Slide written to {path}" in out


def test_derive_refuses_bad_sizes_in_one_line(capsys):
    assert main(["derive", "--samples", "3", "--classes", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-softmax derive: error: ") and "sizes must differ" in err
    assert main(["derive", "--elements", "5,3"]) == 2
    assert "C·N ≤ 12" in capsys.readouterr().err


def test_graph_refuses_an_unknown_extension_in_one_line_naming_the_command(tmp_path, capsys):
    assert main(["graph", "--out", str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinygrad-softmax graph: error: cannot write 'x.jpg'")
    assert ".png, .svg, .pdf" in err and "render" not in err and not list(tmp_path.iterdir())


# ---------------------------------------------------------------- the size options of every lecture command


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            ["compare", "--samples", "2", "--classes", "2", "--features", "3", "--labels", "1,0"],
            "D=3, N=2, C=2",
        ),
        (["jacobian", "--classes", "3", "--random-seed", "2"], "Logits z (3 classes)"),
        (["anomaly", "--samples", "2", "--classes", "4", "--features", "3"], "of shape (4, 2)"),
        (
            ["hessian", "--samples", "6", "--features", "2", "--classes", "2", "--random-seed", "3"],
            "W 2×2, N = 6",
        ),
    ],
)
def test_the_size_options_take_effect(command, shown, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anomaly draws its two graphs into the current folder
    main(command)
    assert shown in capsys.readouterr().out


def test_the_random_seed_changes_what_a_command_draws(capsys):
    outs = []
    for seed in ("0", "1"):
        assert main(["jacobian", "--random-seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] != outs[1]


def test_modes_takes_samples_and_the_random_seed(monkeypatch, capsys):
    from tinygrad_softmax.lecture.lessons import second_order as so

    seen = {}
    real = so.modes

    def spy(features, **kwargs):
        seen.update(kwargs)
        return real(features, **kwargs)

    monkeypatch.setattr(so, "modes", spy)
    assert main(["modes", "--features", "2", "--samples", "4", "--random-seed", "7"]) == 0
    assert seen == {"classes": 3, "samples": 4, "seed": 7}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["demo", "--samples", "1"], "--samples: the demo's report is written for the lecture's classifier"),
        (["newton", "--classes", "2"], "--classes: newton trains on the --dataset"),
        (["newton", "--random-seed", "1"], "--random-seed: newton starts from W = 0 on fixed data"),
        (["jacobian", "--features", "2"], "--features: the Jacobian is softmax's at one sample's logits"),
        (["jacobian", "--labels", "0"], "--labels: the Jacobian is softmax's at one sample's logits"),
        (["hessian", "--labels", "0,1"], "--labels: hessian draws the labels with its random seed"),
        (["modes", "--labels", "0"], "--labels: modes times random data"),
        (["compare", "--model", "mlp", "--classes", "4"], "--classes: the size options set the linear"),
        (
            ["compare", "--labels", "0,3", "--samples", "2"],
            "--labels: class 3 is out of range for --classes 3",
        ),
        (["anomaly", "--labels", "0,1"], "--labels: 2 labels for --samples 5"),
    ],
)
def test_a_size_option_that_cannot_take_effect_is_refused_in_one_line(command, reason, tmp_path, capsys):
    assert (
        main([*command, *(["--out", str(tmp_path / "o")] if command[0] in ("demo", "anomaly") else [])]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
