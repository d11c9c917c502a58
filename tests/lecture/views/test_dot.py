"""Running Graphviz: each distinct DOT text is laid out once per process."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tinygrad_softmax.lecture.views import dot

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def test_the_same_text_runs_graphviz_once_and_gives_the_same_bytes(monkeypatch, tmp_path):
    runs = []
    run = subprocess.run

    def counted(command, **kwargs):
        runs.append(command)
        return run(command, **kwargs)

    monkeypatch.setattr(dot.subprocess, "run", counted)
    monkeypatch.setattr(dot, "_kept", dot.OrderedDict())
    source = 'digraph { a -> b [label="test_dot"] }\n'
    first = dot.pipe(source, "json")
    assert dot.pipe(source, "json") == first and len(runs) == 1
    assert dot.pipe(source, "svg") != first and len(runs) == 2  # another format is another output
    assert dot.pipe(source.replace("a ->", "c ->"), "json") != first and len(runs) == 3
    monkeypatch.setenv(dot.ENVIRONMENT, "30")  # another time limit lays it out again
    assert dot.pipe(source, "json") == first and len(runs) == 4
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # and another PATH, which may find no Graphviz at all
    with pytest.raises(dot.graphviz.ExecutableNotFound):
        dot.pipe(source, "json")


def test_only_the_last_outputs_are_kept(monkeypatch):
    monkeypatch.setattr(dot, "_kept", dot.OrderedDict())
    monkeypatch.setattr(dot, "KEPT", 2)
    sources = [f"digraph {{ n{k} }}\n" for k in range(3)]
    for source in sources:
        dot.pipe(source, "json")
    assert [key[0] for key in dot._kept] == sources[1:]
