"""`tinygrad-softmax demo`: the whole lecture demo into one folder, the same on every run."""

import fnmatch
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from printouts import shows

from tinygrad_softmax.lecture.demo import COMPARISONS, run_demo
from tinygrad_softmax.lecture.lessons.bugs import BUGS
from tinygrad_softmax.lecture.views import dot


@pytest.fixture
def demo(demo_run):
    """The shared demo run (conftest.py): its result, its folder, and the lines it printed."""
    return demo_run.result, demo_run.out, demo_run.lines


def test_demo_writes_every_part(demo):
    result, out, _ = demo
    assert result.problems == [] and result.passed
    expected = [
        "report.md",
        "graph.png",
        "graph-grads.png",
        "frames/frames.gif",
        "explorer.html",
        "bugs.md",
        "bugs.json",
        "train-iris.json",
        "train-digits.json",
        "iris-loss.png",
        "digits-loss.png",
        "digits-weights.png",
    ]
    expected += [f"compare-{name}.{ext}" for name in COMPARISONS for ext in ("md", "json")]
    for name in expected:
        assert (out / name).is_file(), name
    assert len(list((out / "frames").glob("*.png"))) >= 10


def test_every_picture_opens_with_pillow(demo):
    _, out, _ = demo
    pictures = sorted(out.rglob("*.png")) + sorted(out.rglob("*.gif"))
    assert len(pictures) >= 16
    for path in pictures:
        with Image.open(path) as image:
            image.verify()
    with Image.open(out / "frames" / "frames.gif") as gif:
        assert gif.n_frames == len(list((out / "frames").glob("*.png")))


@pytest.mark.numerics
def test_report_links_only_to_files_that_exist_and_shows_p_minus_y(demo):
    result, out, _ = demo
    report = (out / "report.md").read_text(encoding="utf-8")
    # Alt text may hold balanced brackets (the step log P[y]), as Markdown allows.
    links = re.findall(r"!\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^)]+)\)", report)
    assert {"graph.png", "frames/frames.gif", "digits-weights.png", "digits-loss.png"} <= set(links)
    for link in links:
        assert (out / link).is_file(), link
    assert "[explorer.html](explorer.html)" in report
    assert "(P − Y)/N, the closed form:" in report and "Z.grad, what the chain rule produced" in report
    # The closed form and Z.grad print the same matrix.
    blocks = re.findall(r"```\n(.*?)```", report, flags=re.S)
    closed = report.split("(P − Y)/N, the closed form:")[1]
    auto = report.split("Z.grad, what the chain rule produced")[1]
    assert re.search(r"```\n(.*?)```", closed, re.S)[1] == re.search(r"```\n(.*?)```", auto, re.S)[1]
    assert len(blocks) >= 6
    for comparison in result.comparisons.values():
        assert comparison.title() in report
    digits = json.loads((out / "train-digits.json").read_text(encoding="utf-8"))
    assert f"{100 * digits['final_test_accuracy']:.1f}%" in report
    assert "Notes" not in report  # nothing went missing


@pytest.mark.numerics
def test_comparison_files_agree_with_the_tables(demo):
    result, out, _ = demo
    for name, (layout, dtype) in COMPARISONS.items():
        data = json.loads((out / f"compare-{name}.json").read_text(encoding="utf-8"))
        markdown = (out / f"compare-{name}.md").read_text(encoding="utf-8")
        assert data["layout"] == layout and data["dtype"] == dtype and data["passed"]
        assert [row["name"] for row in data["rows"]] == ["dZ", "dW", "db", "dX"]
        for row in data["rows"]:
            line = next(line for line in markdown.splitlines() if line.startswith(f"| `{row['name']}`"))
            for pair in row["pairs"].values():
                # An exact zero prints as 0: with some BLAS kernels autograd and the closed form agree
                # to the bit on db.
                for figure in (pair["max_abs"], pair["rel"]):
                    assert f" {'0' if figure == 0 else f'{figure:.1e}'} |" in line, (row["name"], figure)
        assert data == result.comparisons[name].to_dict()


def test_every_injected_bug_is_caught_in_the_bug_table(demo):
    _, out, lines = demo
    found = json.loads((out / "bugs.json").read_text(encoding="utf-8"))
    assert list(found) == list(BUGS)
    assert all(not entry["passed"] for entry in found.values())
    table = (out / "bugs.md").read_text(encoding="utf-8")
    for name in BUGS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}`"))
        assert row.endswith("| yes |")
    assert f"injected backward bugs caught by the check: {len(BUGS)} of {len(BUGS)}" in lines


def test_a_second_run_writes_the_same_files(demo, tmp_path, monkeypatch):
    """Byte for byte on the same machine, pictures and GIF included, but for the one file the report
    names."""
    _, out, _ = demo
    # Graphviz draws every picture anew, though this process may have drawn the first run.
    monkeypatch.setattr(dot, "_kept", type(dot._kept)())
    run_demo(tmp_path, log=lambda line: None)
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == names
    assert "report.md" in names and "frames/frames.gif" in names
    timed = {"modes.png"}  # forward vs reverse mode: measured times
    report = (out / "report.md").read_text("utf-8")
    # Two runs on one machine; another CPU's BLAS kernel rounds otherwise, and the report says so.
    assert "again on this machine" in report and "except\n`modes.png`, which plots times measured" in report
    for name in names:
        if name not in timed:
            assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_cli_demo_prints_the_summary(demo_run):
    # The shared run is `tinygrad-softmax demo --out OUT`, through the command line.
    assert demo_run.status == 0
    out = "\n".join(demo_run.lines)
    # the derivation's layout as the full table, the others as one verdict line each
    assert "Gradient check: column layout, float64" in out and "dZ = (P − Y)/N" in out
    assert "row layout, float64: PASS" in out and "column layout, float32: PASS" in out
    assert "digits: train accuracy" in out and f"{demo_run.out / 'report.md'}" in out


ROOT = Path(__file__).resolve().parents[2]


def test_derivation_doc_points_at_code_and_tests_that_exist():
    """Every `module.name` link names a definition in the linked file (at the linked line, if any),
    and every linked test function exists."""
    doc = ROOT / "docs" / "derivation.md"
    text = doc.read_text(encoding="utf-8")
    links = re.findall(r"\[`([\w.]+)`\]\(([^)#]+)(?:#L(\d+))?\)", text)
    assert len(links) > 30
    for name, target, line in links:
        if name.endswith(".py"):  # a link to a whole file
            continue
        source = (doc.parent / target).resolve()
        assert source.is_file(), target
        code = source.read_text(encoding="utf-8")
        short = name.split(".")[-1]
        definition = re.compile(rf"^(def|class) {re.escape(short)}\b", re.M)
        assert definition.search(code), f"{name} is not defined in {target}"
        if line:
            assert definition.match(code.splitlines()[int(line) - 1]), f"{target}#L{line} is not {name}"
    linked_tests = {name for name, target, _ in links if name.startswith("test_")}
    assert {
        "test_autograd_equals_the_closed_form",
        "test_elementwise_gradients_sum_back_to_each_input_shape",
    } <= (linked_tests)


def test_without_graphviz_the_demo_still_writes_the_rest_and_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # as if `dot` were not installed
    lines = []
    result = run_demo(tmp_path, log=lines.append)
    assert result.passed  # the checks themselves need no pictures
    assert not (tmp_path / "graph.png").exists() and (tmp_path / "graph.dot").is_file()
    assert (tmp_path / "compare-column.md").is_file() and (tmp_path / "digits-weights.png").is_file()
    assert len(result.problems) == 3  # graph.png, graph-grads.png, the frames: one line each
    assert all("dot is not installed" in p and "brew install graphviz" in p for p in result.problems)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Notes" in report and "apt-get install graphviz" in report
    assert "graph.png was not drawn" in report
    assert lines[-3:] == result.problems


@pytest.mark.numerics
def test_the_lecture_notes_show_what_the_demo_prints_and_list_every_file_it_writes(demo):
    """docs/lecture.md quotes the demo's printout (all but the timing of forward mode; its rounding
    errors by their order of magnitude, as another CPU prints other digits: see printouts.py), and its
    table of the folder names every file the demo writes and no other."""
    _, out, lines = demo
    doc = (ROOT / "docs" / "lecture.md").read_text(encoding="utf-8")
    shown = re.search(r"```console\n(Gradient check.*?)```", doc, re.S).group(1)
    printed = "\n".join(lines).replace(str(out), "demo-output") + "\n"

    def timing(text: str) -> str:  # a ratio of two timings varies from run to run
        return re.sub(r"forward mode \d+× slower", "forward mode N× slower", text)

    assert shows(timing(shown).splitlines(), timing(printed).splitlines()), (
        "docs/lecture.md shows an older printout of the demo:\n" + printed
    )
    rows = doc.split("| file in `demo-output/` |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    patterns = set()
    for row in rows:
        names = re.findall(r"`([^`]+)`", row.split(" | ")[0])
        patterns |= {name for name in names if name != ".json"}
        if "`.json`" in row:  # "`compare-column.md` (and `.json`)"
            patterns |= {name.removesuffix(".md") + ".json" for name in names if name.endswith(".md")}
    written = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    for name in written:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"lecture.md does not list {name}"
    for pattern in patterns:
        assert fnmatch.filter(written, pattern), f"lecture.md lists {pattern}, which the demo does not write"


def test_the_last_line_counts_the_files_written(demo):
    result, out, lines = demo
    written = [p for p in out.rglob("*") if p.is_file() and p.name != "report.md"]
    assert lines[-1] == f"wrote {out / 'report.md'} and {len(written)} more files into {out}/"
    assert {Path(f) for f in result.files} == {*written, out / "report.md"}


def test_the_report_says_which_net_the_graph_shows_and_why_its_loss_starts_above_ln_c(demo):
    result, out, _ = demo
    report = (out / "report.md").read_text(encoding="utf-8")
    run = result.hidden_layer.runs.runs[("spiral", "mlp")]
    width = len(result.hidden_layer.net.H1.data)  # the drawn net's hidden units (column layout: H×N)
    assert width != run.hidden  # the drawn net is the small one, and the text says so
    assert f"{width} hidden units" in report and f"the {run.hidden}-unit nets of the table" in report
    assert f"starts higher, at {run.initial_loss:.4f}" in report and f"| {run.initial_loss:.4f} → " in report
    assert run.initial_loss > np.log(3) + 0.1 and f"ln C = {np.log(3):.4f}" in report
