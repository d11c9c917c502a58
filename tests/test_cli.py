"""The command line as a whole: help on every subcommand, bad values as one-line errors."""

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


def test_python_dash_m_works():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_softmax", "--help"], capture_output=True, text=True, check=True
    )
    assert "tinygrad-softmax" in result.stdout and "demo" in result.stdout
