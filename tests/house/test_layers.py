"""The house: which room may import which, read from the source and checked in a fresh interpreter.

    cli ──(lazily, per subcommand)──► lecture/ ──► core
      └──────────────────────────────► bench/   ──► core (+ lecture's classifier)

The core (every module at the package's top but ``__main__``, and the core's own
subpackage ``compiler/``) imports NumPy and the standard library only; ``analytic`` not even the rest of
the core, because it is the independent witness. Every import statement
counts, including those inside functions. The command line (``cli/``)
imports the standard library at the top of its modules, and a room only inside
the subcommand that needs it. Inside the lecture, the rooms import one way
(``LECTURE_ROOMS`` below) and no module imports another in a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tinygrad_softmax"
NAME = "tinygrad_softmax"
ENTRY_POINTS = ("__main__.py",)  # at the top, but not the core: it opens the command line

CORE_PACKAGES = ("compiler",)  # the core's own subpackages: one concept too big for one file
CORE = sorted(
    [p for p in PACKAGE.glob("*.py") if p.name not in ENTRY_POINTS]
    + [p for room in CORE_PACKAGES for p in (PACKAGE / room).rglob("*.py")]
)
LECTURE = sorted((PACKAGE / "lecture").rglob("*.py"))  # subpackages (the exercise kit) too
BENCH = sorted((PACKAGE / "bench").rglob("*.py"))
CLI = sorted((PACKAGE / "cli").rglob("*.py"))
# threadpoolctl (a dependency, pure Python) is imported inside orientation.py's function that names
# the BLAS, kernel and thread count a matmul choice was measured on; the bare import never loads it.
THIRD_PARTY_IN_THE_CORE = {"numpy", "threadpoolctl"}


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_only: bool = False, root: Path = PACKAGE.parent) -> set[str]:
    """Every module ``path`` imports, as absolute names, from every import statement in it (with
    ``top_only``: from those outside any function and class, run when the module is imported); ``root``
    is the folder the package sits in."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body if top_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)  # `from . import viz`
    return found


def inside(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def test_the_import_reader_sees_imports_inside_functions_and_relative_ones(tmp_path):
    # A module of the package's lecture room, written in a copy of the package's layout, not in the
    # package itself, where the tests that list its modules (running alongside) would find it.
    module = tmp_path / NAME / "lecture" / "probe_for_the_test.py"
    module.parent.mkdir(parents=True)
    source = (
        "def f():\n    from ..lecture.views import viz\n    import matplotlib.pyplot\nfrom .. import ops\n"
    )
    module.write_text(source, encoding="utf-8")
    found = imports(module, root=tmp_path)
    assert {"tinygrad_softmax.lecture.views.viz", "matplotlib.pyplot", "tinygrad_softmax.ops"} <= found


def test_the_rooms_are_found():
    names = {p.name for p in CORE}
    assert {"tensor.py", "ops.py", "engine.py", "functional.py", "analytic.py", "gradcheck.py"} <= names
    assert {"anomaly.py", "derivatives.py", "__init__.py"} <= names
    assert {"symbolic.py", "trace.py", "backward.py", "cache.py"} <= {
        p.name for p in CORE if p.parent.name == "compiler"
    }
    assert {"ledger.py", "demo.py", "classifier.py"} <= {p.name for p in LECTURE}
    assert {"drawing.py", "animation.py"} <= {p.name for p in LECTURE if p.parent.name == "viz"}
    assert {"expr.py", "simplify.py", "derivation.py", "elements.py", "slide.py"} <= {
        p.name for p in LECTURE if p.parent.name == "derive"
    }
    assert any(p.parent.name != "lecture" for p in LECTURE)  # the lecture's own subpackages are read
    assert {"__init__.py", "timing.py", "report.py"} <= {p.name for p in BENCH}
    assert {"__init__.py", "parser.py", "options.py", "graphs.py"} <= {p.name for p in CLI}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_core_imports_numpy_and_the_standard_library_only(path):
    for name in imports(path):
        if inside(name, NAME):
            for room in ("lecture", "bench", "cli", "__main__"):
                assert not inside(name, f"{NAME}.{room}"), f"{path.name} imports {name}"
        else:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in THIRD_PARTY_IN_THE_CORE, (
                f"{path.name} imports {name}: the core imports NumPy and the standard library only"
            )


def test_analytic_imports_no_engine_module():
    # The independent witness: if it shared code with the engine, the proof would be circular.
    inner = {name for name in imports(PACKAGE / "analytic.py") if inside(name, NAME)}
    assert inner == set(), f"analytic imports {sorted(inner)}"


def _core_import_graph(room: str = "") -> dict[str, set[str]]:
    """Which module of the core (the whole core, its own subpackages too, or only its subpackage
    ``room``) imports which: every import statement, in functions and under ``TYPE_CHECKING`` too. A
    package's ``__init__`` only gathers its modules."""
    inner = [p for p in CORE if p.name != "__init__.py"]
    modules = {module_name(p): p for p in inner if not room or p.parent == PACKAGE / room}
    return {name: imports(path) & set(modules) for name, path in modules.items()}


def _a_circle(graph: dict[str, set[str]]) -> list[str]:
    """A list of modules that import each other in a circle, or [] (a depth-first search, by a stack)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return []


def test_the_core_has_no_import_circle_not_even_a_type_only_one():
    graph = _core_import_graph()
    assert {f"{NAME}.tensor", f"{NAME}.ops", f"{NAME}.engine", f"{NAME}.contracts"} <= set(graph)
    assert f"{NAME}.compiler.symbolic" in graph  # and the core's own subpackage
    assert f"{NAME}.ops" in graph[f"{NAME}.tensor"]  # the reader sees the imports
    circle = _a_circle(graph)
    assert circle == [], " imports ".join(circle)


def test_the_compiler_has_no_import_circle_not_even_a_type_only_one():
    graph = _core_import_graph("compiler")
    assert f"{NAME}.compiler.symbolic" in graph[f"{NAME}.compiler.program"]  # the reader sees the imports
    circle = _a_circle(graph)
    assert circle == [], " imports ".join(circle)


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _a_circle(graph) == ["a", "b", "c", "a"]
    assert _a_circle({"a": {"b"}, "b": set()}) == []


# The lecture's rooms, and which of them each may import (the core and the shared pieces at the
# lecture's top, ``SHARED``, any room may use; a shared piece imports no room):
#     lessons   ──► views, training, derive
#     exercises ──► views, training
#     views     ──► training, derive
#     derive    ──► (none)
#     training  ──► (none)
# What composes the rooms sits at the top too (``demo``, ``deck``, the package's ``__init__``) and
# may import every room; no room imports it.
LECTURE_ROOMS: dict[str, set[str]] = {
    "lessons": {"views", "training", "derive"},
    "exercises": {"views", "training"},
    "views": {"training", "derive"},
    "derive": set(),
    "training": set(),
}
SHARED = ("outputs", "extras", "numbers", "doctor")


def _lecture_room(name: str) -> str:
    """The room of a lecture module: one of ``LECTURE_ROOMS``, ``shared``, or ``top`` (what composes)."""
    part = name.split(".")[2] if name.count(".") >= 2 else ""
    return part if part in LECTURE_ROOMS else "shared" if part in SHARED else "top"


def _lecture_import_graph() -> dict[str, set[str]]:
    """Which lecture module imports which, every import statement counted. ``from . import x`` names
    the package and its module ``x``: the edge is to ``x`` (a package's ``__init__`` counts where it
    is imported for its own names, as ``from .derive import Derivation``)."""
    modules = {module_name(p): p for p in LECTURE}
    graph = {}
    for name, path in modules.items():
        found = imports(path) & set(modules)
        graph[name] = {
            t
            for t in found - {name}
            if not (modules[t].name == "__init__.py" and any(x.startswith(t + ".") for x in found))
        }
    return graph


def test_the_lecture_has_no_import_circle():
    graph = _lecture_import_graph()
    assert f"{NAME}.lecture.training.boundaries" in graph[f"{NAME}.lecture.training.train"]
    circle = _a_circle(graph)
    assert circle == [], " imports ".join(circle)


def test_the_lecture_rooms_import_one_way():
    graph = _lecture_import_graph()
    assert {_lecture_room(name) for name in graph} == {*LECTURE_ROOMS, "shared", "top"}
    for name, found in sorted(graph.items()):
        room = _lecture_room(name)
        for target in found:
            other = _lecture_room(target)
            allowed = other in (room, "shared") or room == "top" or other in LECTURE_ROOMS.get(room, set())
            assert allowed, f"{name} ({room}) imports {target} ({other})"


@pytest.mark.parametrize("path", LECTURE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_lecture_imports_neither_the_bench_nor_the_command_line(path):
    for name in imports(path):
        assert not inside(name, f"{NAME}.bench"), f"lecture/{path.name} imports {name}"
        assert not inside(name, f"{NAME}.cli"), f"lecture/{path.name} imports {name}"


@pytest.mark.parametrize("path", BENCH, ids=lambda p: p.name)
def test_the_bench_imports_the_core_and_only_the_classifier_from_the_lecture(path):
    for name in imports(path):
        assert not inside(name, f"{NAME}.cli"), f"bench/{path.name} imports {name}"
        if inside(name, f"{NAME}.lecture"):
            assert inside(name, f"{NAME}.lecture.training.classifier"), f"bench/{path.name} imports {name}"


@pytest.mark.parametrize("path", CLI, ids=lambda p: p.name)
def test_the_command_line_imports_a_room_only_inside_the_subcommand_that_needs_it(path):
    # At its top a module of cli/ imports the standard library and cli/ itself, so building the
    # parser loads no room; inside a function it may import the lecture or the bench, never the
    # command line the other way round (checked above).
    for name in imports(path, top_only=True):
        if inside(name, NAME):
            assert inside(name, f"{NAME}.cli"), f"cli/{path.name} imports {name} at its top"
        else:
            assert name.split(".")[0] in sys.stdlib_module_names, f"cli/{path.name} imports {name} at its top"
    for name in imports(path):
        if inside(name, NAME):
            assert any(inside(name, f"{NAME}.{room}") for room in ("cli", "lecture", "bench")), name


DERIVE = PACKAGE / "lecture" / "derive"


@pytest.mark.parametrize("path", sorted(DERIVE.glob("*.py")), ids=lambda p: p.name)
def test_the_derivation_uses_sympy_in_the_element_view_only_and_draws_only_the_slide(path):
    # The tensor-level derivation and its identities are NumPy and the engine: SymPy is the
    # element view's algebra system (an optional part), matplotlib the slide's.
    for name in imports(path):
        top = name.split(".")[0]
        if top == "sympy":
            assert path.name == "elements.py", f"derive/{path.name} imports {name}"
        if top == "matplotlib":
            assert path.name == "slide.py", f"derive/{path.name} imports {name}"


def test_the_derive_command_loads_no_sympy_without_the_element_view():
    loaded = _loaded_after(
        "import contextlib, io\nfrom tinygrad_softmax.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['derive']) == 0"
    )
    assert f"{NAME}.lecture.derive.simplify" in loaded
    assert "sympy" not in loaded and "matplotlib" not in loaded


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_import_tinygrad_softmax_loads_the_core_only():
    loaded = _loaded_after("import tinygrad_softmax")
    rooms = (f"{NAME}.lecture", f"{NAME}.bench", f"{NAME}.cli")
    for outside in ("graphviz", "matplotlib", "PIL", "sympy", *rooms):
        assert not any(inside(name, outside) for name in loaded), outside
    assert f"{NAME}.engine" in loaded and f"{NAME}.ops" in loaded


def test_the_lecture_names_are_reachable_lazily_from_the_package():
    loaded = _loaded_after(
        "import tinygrad_softmax as t\n"
        "assert callable(t.explain) and callable(t.viz.to_dot) and callable(t.datasets.load)\n"
        "assert {'viz', 'explain', 'datasets'} <= set(dir(t))"
    )
    assert f"{NAME}.lecture.views.viz" in loaded and "graphviz" in loaded


def test_the_ledger_draws_no_picture_so_loads_no_graphviz():
    loaded = _loaded_after("import tinygrad_softmax as t\nt.explain")
    assert f"{NAME}.lecture.views.ledger" in loaded and "graphviz" not in loaded


def test_the_wheel_holds_every_file_of_every_room_and_the_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    # The package's files as a clean clone has them: what git tracks.
    tracked = subprocess.run(
        ["git", "ls-files", NAME], cwd=PACKAGE.parent, capture_output=True, text=True, check=True
    ).stdout.split()
    shipped = [PACKAGE.parent / name for name in tracked]
    assert any(p.suffix == ".csv" for p in shipped) and any(p.name == "report.md" for p in shipped)
    for path in shipped:  # modules, data, templates, the explorer's page, py.typed
        assert path.relative_to(PACKAGE.parent).as_posix() in names, path
