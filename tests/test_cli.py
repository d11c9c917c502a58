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
    assert "tinygrad_softmax.lecture.bugs" not in _lecture_modules_loaded_by(f"{parse}(['train'])")
    code = f"{parse}(['compare'])"
    assert "tinygrad_softmax.lecture.bugs" in _lecture_modules_loaded_by(code)


def test_the_bug_names_are_listed_in_compare_help(capsys):
    from tinygrad_softmax.lecture.bugs import BUGS

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


def test_graph_refuses_an_unknown_extension_in_one_line_naming_the_command(tmp_path, capsys):
    assert main(["graph", "--out", str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinygrad-softmax graph: error: cannot write 'x.jpg'")
    assert ".png, .svg, .pdf" in err and "render" not in err and not list(tmp_path.iterdir())
