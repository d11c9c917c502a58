"""The command line runs end to end."""

from tinygrad_softmax.cli import main


def test_demo_prints_the_check(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "column layout" in out and "row layout" in out
