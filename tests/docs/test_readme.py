"""Every ```python block of the README and of the docs runs, as written.

The README's blocks run on their own, top to bottom, in one namespace. A
doc's blocks continue from the linear softmax classifier already built (the
names a reader has in hand at that point: ``model``, ``loss``, ``Z``,
``labels``, ``F``, ``np``) and also run top to bottom in one namespace, in a
scratch folder, so the files they write go nowhere.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from printouts import same_line, shows

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def run_blocks(blocks: list[str], namespace: dict, where: str) -> str:
    """Run the blocks in order in ``namespace``; what they print comes back."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for k, block in enumerate(blocks, start=1):
            exec(compile(block, f"{where}, python block {k}", "exec"), namespace)
    return printed.getvalue()


def test_the_block_reader_finds_python_blocks_only(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\nmake\n```\n```python\nx = 1\n```\ntext\n```python\ny = x + 1\n```\n", "utf-8")
    assert python_blocks(doc) == ["x = 1\n", "y = x + 1\n"]


@pytest.mark.numerics
def test_the_readme_blocks_run_and_print_what_they_promise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "the README has no python block"
    printed = run_blocks(blocks, {"__name__": "__readme__"}, "README.md")
    # "print(np.abs(Z.grad - ref.dZ).max())  # ~1e-17": the engine's dZ is the closed form's.
    assert float(printed.split()[-1]) < 1e-12


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_blocks_run(doc, tmp_path, monkeypatch):
    from tinygrad_softmax import functional as F
    from tinygrad_softmax.lecture import build_classifier

    monkeypatch.chdir(tmp_path)
    model = build_classifier("column")
    namespace = {
        "__name__": "__docs__",
        "np": np,
        "F": F,
        "model": model,
        "loss": model.loss,
        "Z": model.Z,
        "labels": model.labels,
    }
    run_blocks(python_blocks(doc), namespace, f"docs/{doc.name}")


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_relative_link_points_at_a_file_that_exists(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_the_code_map_names_every_module_of_the_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code_map = readme.split("## The code", 1)[1]
    package = ROOT / "tinygrad_softmax"
    for module in package.rglob("*.py"):
        if module.name in ("__init__.py", "__main__.py"):
            continue
        inner = module.relative_to(package).parent
        # A module of a room is named itself; one of a room's own subpackage (the exercise kit) may be
        # named by its folder.
        named = f"`{module.name}`" in code_map or (
            len(inner.parts) > 1 and f"`{inner.parts[-1]}/`" in code_map
        )
        assert named, f"README's code map does not name {module.relative_to(ROOT)}"


# ---------------------------------------------------------------- what the pages say about code and commands

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TESTS = {path.stem: path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")}
DEFINED_TESTS = {name for source in TESTS.values() for name in re.findall(r"^def (test_\w+)", source, re.M)}


def defines(source: str, name: str) -> re.Match | None:
    """Where ``source`` defines ``name``: a function, a class, or a module-level assignment."""
    return re.search(
        rf"^\s*(?:def|class) {re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=]+)?=", source, re.M
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_linked_name_is_defined_in_the_file_it_links_to(page):
    """[`analytic.logits_grad`](../tinygrad_softmax/analytic.py#L58) names a definition in that file, on
    that line if the link gives one; [`test_x`](../tests/test_y.py) a test in that test file."""
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"\[`([\w.]+)(?:\(\))?`\]\(([^)#\s]+\.py)(?:#L(\d+))?\)", text)
    for name, target, line in links:
        source = (page.parent / target).resolve().read_text(encoding="utf-8")
        short = name.split(".")[-1]
        if short == "py":  # [`ops.py`](...): the file itself
            continue
        found = defines(source, short)
        assert found, f"{page.name}: {name} is not defined in {target}"
        if line:
            text_at = source.splitlines()[int(line) - 1]
            assert defines(text_at, short), (
                f"{page.name}: {target}#L{line} is {text_at.strip()!r}, not {name}"
            )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_test_a_page_names_exists(page):
    """A test named in `backticks` (`test_repeated_labels_are_all_counted`) is a test of the suite,
    and a test file (`tests/lecture/lessons/test_lab.py`, `test_oracles.py`) is a file of it."""
    for name in set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!<)", page.read_text(encoding="utf-8"))):
        assert name in DEFINED_TESTS or name in TESTS, f"{page.name} names {name}, which no test file has"


def _command_lines(page: Path) -> list[str]:
    """Every `tinygrad-softmax SUBCOMMAND ...` a page writes: in inline code, or a line of a code block."""
    text = page.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith("tinygrad-softmax "):
                found.append(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    found += [" ".join(span.split()) for span in re.findall(r"`(tinygrad-softmax\s[^`]+)`", prose)]
    commands = []
    for line in found:
        line = line.split("#")[0].split("||")[0].strip()
        if not re.match(r"tinygrad-softmax [a-z]+( |$)", line):
            continue  # `tinygrad-softmax X: error: ...` is a message, not a command
        if "[" in line:  # optional parts: the command without them, and with them all
            commands += [re.sub(r"\s*\[[^\]]*\]", "", line), re.sub(r"[\[\]]", "", line)]
        else:
            commands.append(line)
    return commands


def _options_of_the_command_line(capsys) -> set[str]:
    from tinygrad_softmax.cli import SUBCOMMANDS, main

    helps = [[sub.name, "--help"] for sub in SUBCOMMANDS]
    helps += [
        ["exercise", action, "--help"] for action in ("init", "check", "solution", "hint", "audit", "sheet")
    ]
    options = set()
    for argv in helps:
        with pytest.raises(SystemExit):
            main(argv)
        options |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", capsys.readouterr().out))
    return options


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_a_page_writes_is_accepted_as_written(page, monkeypatch, capsys):
    """Each `tinygrad-softmax ...` line parses (its subcommand, options and values exist; optional
    [parts] with and without), and every --option a page names in code is one the command line has."""
    from tinygrad_softmax.cli import build_parser
    from tinygrad_softmax.lecture import outputs

    # The paths are the reader's; whether this machine could write them is not the question here.
    monkeypatch.setattr(outputs, "check_file", lambda path, option="": Path(path))
    monkeypatch.setattr(outputs, "check_folder", lambda path, option="": Path(path))
    for line in _command_lines(page):
        try:
            build_parser().parse_args(line.split()[1:])
        except SystemExit as stop:  # --help ends with 0; a refused value with 2
            assert stop.code == 0, f"{page.name}: `{line}` is refused: {capsys.readouterr().err.strip()}"
    capsys.readouterr()
    options = _options_of_the_command_line(capsys)
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for span in re.findall(r"`([^`]+)`", prose) + blocks:
        if any(tool in span for tool in ("ruff", "pip ", "make ", "pytest", "browser.py")):  # other programs
            continue
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span):
            assert option in options, f"{page.name} names {option}, which no subcommand has: {span!r}"


def _console_blocks() -> list[tuple[str, str, list[str]]]:
    """(page, command, the lines shown under it) of every ```console block that shows one command's output."""
    blocks = []
    for page in PAGES:
        for block in re.findall(r"^```console\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S):
            lines = block.splitlines()
            commands = [line for line in lines if line.startswith("$ ")]
            if len(commands) == 1 and lines[0].startswith("$ tinygrad-softmax ") and len(lines) > 1:
                blocks.append((page.name, lines[0][2:], lines[1:]))
    return blocks


def test_the_block_matcher_reads_ellipses():
    printed = ["a", "b 1 2 3", "c", "d", "e"]
    assert shows(["a", "b 1 ...", "...", "e"], printed)
    assert shows(["a", "...", "d", "e"], printed) and shows(["a", "..."], printed)
    assert not shows(["a", "b 1 2 4", "..."], printed) and not shows(["a", "c", "..."], printed)
    assert not shows(["a", "b 1 2 3", "c"], printed)  # stops before the end


def test_the_block_matcher_reads_rounding_errors_by_their_order_of_magnitude():
    # Another CPU's BLAS kernel rounds otherwise: the figures' digits, an exact 0, the worst entry change.
    page = "dW = dZ Xᵀ   3×4   8.0e-17   3.9e-10   [0, 1]   ok"
    assert same_line(page, "dW = dZ Xᵀ   3×4         0   3.5e-10   [1, 1]   ok")
    assert same_line(page, "dW = dZ Xᵀ   3×4   4.0e-17   1.1e-09   [2, 0]   ok")
    assert same_line("  dZ[0, 1]: autograd ...", "  dZ[1, 1]: autograd -0.11166261, closed form -0.11")
    # Not rounding: a figure ten times off, a different word, shape, verdict, constant or fixed-point value.
    assert not same_line(page, "dW = dZ Xᵀ   3×4   8.0e-17   3.9e-09   [0, 1]   ok")
    assert not same_line(page, "dW = dZ Xᵀ   3×4   8.0e-17         0   [0, 1]   ok")
    assert not same_line(page, "dW = dZ Xᵀ   3×4   8.0e-17   3.9e-10   [0, 1]   WRONG")
    assert not same_line(page, "dW = dZ Xᵀ   4×3   8.0e-17   3.9e-10   [0, 1]   ok")
    assert not same_line(page, "dW = dZ Xᵀ   3×4   8.0e-17   3.9e-10   [0]   ok")
    assert not same_line("eps = 1e-06", "eps = 1e-07") and not same_line("L = 1.098453", "L = 1.098454")
    assert not same_line("seed 0", "seed 1") and not same_line("1.6e-04", "-1.6e-04")


@pytest.mark.numerics
@pytest.mark.parametrize("block", _console_blocks(), ids=lambda b: f"{b[0]}: {b[1]}")
def test_the_console_blocks_show_what_the_command_prints(block, tmp_path, monkeypatch, capsys):
    from tinygrad_softmax.cli import main

    page, command, shown = block
    if "anomaly" in command and not shutil.which("dot"):
        pytest.skip("the anomaly demo's lines name its pictures, which need Graphviz's dot")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    main(command.split()[1:])
    printed = capsys.readouterr().out.splitlines()
    assert shows(shown, printed), f"{page} shows an older output of `{command}`:\n" + "\n".join(printed)


def test_the_readme_quotes_the_benchmark_page_as_it_stands():
    """Each ratio in the README's table is docs/benchmarks.md's (row layout), rounded as printed: after
    `make bench` rewrites the page, this says which figure of the README to update."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bench = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    bench = bench.split("## One training step, 2 threads")[0]  # the README quotes the 1-thread table
    measured = {
        (size, name): float(ratio)
        for size, name, ratio in re.findall(
            r"^\| (\w[\w-]*) \([^)]*\) \| row \| \**([^|*]+?)\** \| [^|]+ \| [^|]+ \| ([\d.]+) \|$",
            bench,
            re.M,
        )
    }
    columns = {
        "engine, from primitives": "engine (primitives)",
        "engine, fused op": "engine (fused op)",
        "engine, compiled": "engine compiled (primitives)",
        "PyTorch, from primitives": "PyTorch (primitives)",
        "HIPS autograd": "HIPS autograd",
    }
    table = re.search(r"^\| size \(N, D, C\) \|(.*?)\n\n", readme, re.M | re.S).group(0).strip().splitlines()
    heads = [cell.strip() for cell in table[0].strip("|").split("|")][1:]
    assert set(heads) == set(columns), heads
    for row in table[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        size = cells[0].split()[0]
        for head, quoted in zip(heads, cells[1:]):
            figure = quoted.removesuffix("×")
            decimals = len(figure.partition(".")[2])
            actual = measured[(size, columns[head])]
            assert float(figure) == round(actual, decimals), (
                f"README: {size}, {head} is {quoted}; the page: {actual}"
            )


def test_the_pages_call_the_source_the_derivation():
    """The source is "the derivation" (named once as "Demystifying Softmax Loss"); to a student "the
    seed" is a random seed, and "the post" names nothing they can open."""
    notebook = json.loads((ROOT / "docs" / "lecture.ipynb").read_text(encoding="utf-8"))
    texts = {page.name: page.read_text(encoding="utf-8") for page in PAGES}
    texts["lecture.ipynb"] = "".join(
        "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"
    )
    for name, text in texts.items():
        assert not re.search(r"\bthe (post|seed)\b", text, re.I), f"{name}: say the derivation"
