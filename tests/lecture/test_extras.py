"""One policy for a missing matplotlib, Pillow or dot, and one copy of the install hints."""

from pathlib import Path

from tinygrad_softmax.lecture import extras

ROOT = Path(__file__).resolve().parents[2]


def test_the_graphviz_hints_are_identical_in_the_makefile_the_readme_and_the_messages():
    assert f"GRAPHVIZ_INSTALL := {extras.GRAPHVIZ_INSTALL}\n" in (ROOT / "Makefile").read_text()
    assert f"\n{extras.GRAPHVIZ_INSTALL}\n" in (ROOT / "README.md").read_text(encoding="utf-8")
    for tool in ("brew", "winget", "conda"):
        assert f"{tool} install" in extras.GRAPHVIZ_INSTALL


def test_the_skipped_line_names_what_was_skipped_and_the_exact_command():
    line = extras.skipped("the animated GIF", "Pillow")
    assert line == (
        "skipped the animated GIF: Pillow is not installed; "
        "install it with: pip install 'tinygrad_softmax[demo]'"
    )
    assert "\n" not in extras.skipped("graph.png", "dot")


def test_a_blocked_module_counts_as_missing(monkeypatch):
    import sys

    assert extras.have("matplotlib")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` fails on
    assert not extras.have("matplotlib")
    monkeypatch.setenv("PATH", "")
    assert not extras.have("dot")
