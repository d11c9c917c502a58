"""The reading path: what one step of the classifier runs in the core, and the guide that reads it.

``docs/reading-guide.md`` names each stop by a file:line range and the function or class
it is; the ranges must start and end where that definition does. The step itself,
``F.cross_entropy(W @ X + b, y, axis=0).backward()``, runs at most 400 lines of core
functions, none longer than 40: checks that only a mistake fails, the guarantees and
the speed live in functions the step does not enter.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest

from tinygrad_softmax import Tensor
from tinygrad_softmax import functional as F

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tinygrad_softmax"
GUIDE = ROOT / "docs" / "reading-guide.md"
STOP = re.compile(
    r"\[([a-z_/]+\.py):(\d+)–(\d+)\]\(\.\./tinygrad_softmax/\1#L\2-L\3\) (module docstring|`([\w.]+)`)"
)


def stops() -> list[tuple[str, int, int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    found = [(m[1], int(m[2]), int(m[3]), m[5] or m[4]) for m in STOP.finditer(text)]
    # Every link into the package is a stop the pattern reads: none is left unchecked.
    assert len(found) == text.count("](../tinygrad_softmax/")
    return found


def span(file: str, name: str) -> tuple[int, int]:
    """Where ``name`` (``Class.method``, a function, or the module docstring) starts and ends in ``file``."""
    tree = ast.parse((PACKAGE / file).read_text(encoding="utf-8"))
    if name == "module docstring":
        return tree.body[0].lineno, tree.body[0].end_lineno or 0
    node: Any = tree
    for part in name.split("."):
        node = next(n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def test_the_guide_has_its_stops():
    names = {name for _, _, _, name in stops()}
    assert {"cross_entropy", "Tensor._apply", "MatMul", "unbroadcast", "_chain_rule", "Value"} <= names


@pytest.mark.parametrize("stop", stops(), ids=lambda s: f"{s[0]}:{s[3]}")
def test_each_stop_of_the_guide_is_the_range_of_what_it_names(stop):
    file, first, last, name = stop
    assert (first, last) == span(file, name), f"{file}: {name} is at lines {span(file, name)}"


def test_a_moved_stop_is_caught():
    file, first, last, name = stops()[0]
    assert (first + 1, last) != span(file, name)


def core_functions_run_by(step: Any) -> dict[tuple[str, int], int]:
    """Every core function (the package but lecture/, bench/, cli/) that ``step()`` runs: its length."""
    skip = tuple(str(PACKAGE / room) for room in ("lecture", "bench", "cli"))
    seen: dict[tuple[str, int], Any] = {}

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        code, where = frame.f_code, frame.f_code.co_filename
        core = where.startswith(str(PACKAGE)) and not where.startswith(skip)
        if event == "call" and core and not code.co_name.startswith("<"):
            seen.setdefault((where, code.co_firstlineno), code)

    sys.setprofile(profile)
    try:
        step()
    finally:
        sys.setprofile(None)
    lengths = {key: len(inspect.getsourcelines(code)[0]) for key, code in seen.items()}
    # A nested function lies inside its parent's lines: count only the outermost.
    return {
        (f, first): n
        for (f, first), n in lengths.items()
        if not any(f == g and a < first < a + m for (g, a), m in lengths.items())
    }


def test_one_step_of_the_classifier_runs_at_most_400_lines_none_in_a_function_over_40():
    rng = np.random.default_rng(0)
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    b = Tensor(np.zeros((3, 1)), requires_grad=True)
    X = Tensor(rng.normal(size=(4, 5)))
    y = np.array([0, 2, 1, 2, 2])

    def step() -> None:
        F.cross_entropy(W @ X + b, y, axis=0).backward()

    step()  # warm: imports and caches
    W.zero_grad()
    b.zero_grad()
    ran = core_functions_run_by(step)
    longest = max(ran.items(), key=lambda item: item[1])
    assert sum(ran.values()) <= 400, f"{sum(ran.values())} lines in {len(ran)} functions"
    assert longest[1] <= 40, f"{longest[0]} is {longest[1]} lines"
    assert any(f.endswith("engine.py") for f, _ in ran)  # the walk was seen
