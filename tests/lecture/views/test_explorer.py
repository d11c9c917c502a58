"""The explorer page: one offline HTML file that steps through the backward walk.

The first tests read the file; the rest open it in a real Chromium (headless,
from file://, every request that is not a file blocked and counted), press the
keys a lecturer presses and compare what the page shows with ``engine.walk``.
The browser tests skip where no Chromium or Playwright is installed, and CI
(``.ci/run`` sets TINYGRAD_SOFTMAX_REQUIRE_BROWSER=1) requires them.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_softmax import Tensor, analytic, engine, viz
from tinygrad_softmax import functional as F
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.training.classifier import build_classifier
from tinygrad_softmax.lecture.views import explorer
from tinygrad_softmax.lecture.views.graph import graph_order

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def classifier_page(tmp_path: Path, layout: str = "column", compact: bool = False):
    model = build_classifier(layout)
    path = explorer.to_html(
        model.loss,
        tmp_path / f"{layout}{'-compact' if compact else ''}.html",
        reference=(model.Z, model.labels, model.class_axis),
        clusters={"cross_entropy": (model.loss, [model.Z])},
        compact=compact,
    )
    return model, path


def page_data(text: str) -> dict:
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    assert found is not None
    return json.loads(found.group(1))


def walk(loss: Tensor) -> list[engine.Step]:
    return list(engine.walk(loss, np.ones_like(loss.data)))


def node_names(loss: Tensor, step: engine.Step, compact: bool) -> set[str]:
    """The drawing's nodes that light up at ``step``: the tensor's record and the op that made it."""
    k = graph_order(loss).index(step.node)
    if step.node.grad_fn is None:
        return {f"t{k}"}
    # cross_entropy's names for its steps (exp, log S, ...) are not a user's own: compact folds them
    folded = compact and (not step.node.name or step.node.name in F.STEP_NAMES) and step.node is not loss
    return {f"op{k}"} if folded else {f"t{k}", f"op{k}"}


# ---------------------------------------------------------------- the file


@pytest.mark.parametrize(("layout", "compact"), [("column", False), ("row", False), ("column", True)])
def test_the_page_is_self_contained_and_within_its_size_budget(tmp_path, layout, compact):
    _, path = classifier_page(tmp_path, layout, compact)
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text), "no file, font or script is fetched"
    assert "@import" not in text and "url(" not in text
    assert path.stat().st_size < explorer.SIZE_BUDGET
    assert text.count("<svg") == 4  # plain, values, gradients, both


@pytest.mark.numerics
def test_the_steps_in_the_page_are_the_engines_walk(tmp_path):
    model, path = classifier_page(tmp_path)
    data = page_data(path.read_text(encoding="utf-8"))
    steps = walk(model.loss)
    assert [s["node"] for s in data["steps"]] == [sorted(node_names(model.loss, s, False))[-1] for s in steps]
    for shown, step in zip(data["steps"], steps):
        np.testing.assert_array_equal(np.array(shown["grad"]["data"]).reshape(step.grad.shape), step.grad)
    comparison = data["comparison"]
    closed = analytic.logits_grad(model.Z.data, model.labels, model.class_axis)
    np.testing.assert_array_equal(np.array(comparison["closed"]["data"]).reshape(closed.shape), closed)
    assert comparison["difference"] == float(np.max(np.abs(model.Z.grad - closed)))
    assert comparison["difference"] < 1e-15
    # the formulas the engine derives from the same graph, as data for the last view
    assert comparison["formula"][:3] == [
        "∂L/∂Z = (softmax(Z) − onehot(y))/N",
        "∂L/∂W = ∂L/∂Z · Xᵀ",
        "∂L/∂b = Σₙ ∂L/∂Z",
    ]


def test_any_graph_works_and_nothing_is_written_to_grad(tmp_path):
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, name="x")
    loss = (x * x + x.exp()).sum()  # x used three times: the gradients add up
    path = viz.to_html(loss, tmp_path / "mine.html")
    data = page_data(path.read_text(encoding="utf-8"))
    assert x.grad is None
    assert data["comparison"] is None
    assert [leaf["name"] for leaf in data["leaves"]] == ["x"]
    np.testing.assert_allclose(data["leaves"][0]["grad"]["data"], 2 * x.data + np.exp(x.data))
    assert data["steps"][0]["name"] == "t4"


def test_big_arrays_are_summarised_and_the_page_says_so(tmp_path):
    W = Tensor(np.random.default_rng(0).normal(size=(30, 30)), requires_grad=True, name="W")
    path = explorer.to_html((W * W).mean(), tmp_path / "big.html")
    data = page_data(path.read_text(encoding="utf-8"))
    node = data["nodes"]["t0"]
    assert "data" not in node["values"] and node["values"]["summary"]["max"] == W.data.max()
    assert data["limits"]["summarised"] is True


def test_a_long_graph_leaves_numbers_off_the_drawing(tmp_path):
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    y = x
    for _ in range(explorer.DRAWN_LIMIT):
        y = y * 1.01
    text = explorer.to_html(y.sum(), tmp_path / "long.html").read_text(encoding="utf-8")
    assert text.count("<svg") == 1
    assert page_data(text)["limits"]["drawn"] is False


def test_bad_input_writes_no_file(tmp_path):
    model = build_classifier()
    with pytest.raises(ValueError, match=r"must end in \.html"):
        explorer.to_html(model.loss, tmp_path / "page.png")
    with pytest.raises(ValueError, match="scalar loss"):
        explorer.to_html(model.Z, tmp_path / "page.html")
    with pytest.raises(ValueError, match="not on the backward walk"):
        explorer.to_html(model.loss, tmp_path / "page.html", reference=(model.X, model.labels, 0))
    assert list(tmp_path.iterdir()) == []


def test_without_dot_the_dot_text_is_saved_and_no_page_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(explorer.shutil, "which", lambda name: None)
    model = build_classifier()
    with pytest.raises(viz.GraphvizNotFoundError, match="dot is not installed; install it with"):
        explorer.to_html(model.loss, tmp_path / "page.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.dot"]


def test_the_notebook_view_is_a_sandboxed_iframe():
    model = build_classifier()
    shown = viz.explore(model.loss, height=600)
    frame = shown._repr_html_()
    assert frame.startswith("<iframe ") and 'sandbox="allow-scripts"' in frame and "600px" in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame)
    assert srcdoc is not None and html.unescape(srcdoc.group(1)) == shown.html


def test_the_command_writes_the_page(tmp_path, capsys):
    out = tmp_path / "sub" / "explorer.html"
    assert main(["explore", "--out", str(out), "--layout", "row", "--compact"]) == 0
    assert "row-layout" in capsys.readouterr().out
    assert "(row layout)" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["explorer.html"]  # no temporary file left
    assert main(["explore", "--out", str(tmp_path / "e.txt")]) == 2


# ---------------------------------------------------------------- in a real browser

ATOL = 6e-5  # the page prints four decimals
NAMES = "gs => gs.map(g => g.dataset.name)"
HIDDEN = "ts => ts.filter(t => getComputedStyle(t).visibility === 'hidden').length"


class Opened:
    """A page opened from file:// with the network blocked, and everything that went wrong on it."""

    def __init__(self, context, path: Path):
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())

    def _route(self, route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def current(self) -> set[str]:
        return set(self.page.eval_on_selector_all("svg.graph.shown g.node.current", NAMES))

    def numbers(self, selector: str) -> np.ndarray:
        cells = self.page.eval_on_selector_all(selector + " td", "tds => tds.map(td => td.textContent)")
        return np.array([float(c) for c in cells])

    def clean(self) -> bool:
        return not (self.errors or self.blocked or self.failed)

    def close(self) -> None:
        self.page.close()


@pytest.mark.parametrize(("layout", "compact"), [("column", False), ("row", True)])
def test_arrow_keys_step_through_the_engines_walk(browser, tmp_path, layout, compact):
    out = tmp_path / "explorer.html"
    assert main(["explore", "--out", str(out), "--layout", layout, *(["--compact"] if compact else [])]) == 0
    model = build_classifier(layout)
    steps = walk(model.loss)
    opened = Opened(browser, out)
    try:
        assert opened.current() == set()
        assert "Start" in opened.page.inner_text("#caption")
        for k, step in enumerate(steps, start=1):
            opened.press("ArrowRight")
            assert opened.current() == node_names(model.loss, step, compact), f"step {k}"
            assert f"Step {k} of {len(steps)}" in opened.page.inner_text("#caption")
            shown = opened.numbers("#caption [data-role=arrived]")
            np.testing.assert_allclose(shown, step.grad.ravel(), atol=ATOL, err_msg=f"step {k}")
        opened.press("ArrowRight")
        caption = opened.page.inner_text("#caption")
        assert "(P − Y)/N" in caption and "End" in caption
        closed = analytic.logits_grad(model.Z.data, model.labels, model.class_axis)
        np.testing.assert_allclose(
            opened.numbers("#caption [data-role=closed-form]"), closed.ravel(), atol=6e-5
        )
        np.testing.assert_allclose(
            opened.numbers("#caption [data-role=autograd]"), model.Z.grad.ravel(), atol=6e-5
        )
        difference = opened.page.inner_text("#caption [data-role=difference]")
        assert float(difference.split("=")[-1]) < 1e-12
        opened.press("ArrowLeft")
        assert opened.current() == node_names(model.loss, steps[-1], compact)
        opened.press("ArrowLeft")
        assert opened.current() == node_names(model.loss, steps[-2], compact)
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_home_end_slider_and_buttons(browser, tmp_path):
    model, path = classifier_page(tmp_path)
    steps = walk(model.loss)
    opened = Opened(browser, path)
    try:
        opened.press("End")
        assert "(P − Y)/N" in opened.page.inner_text("#caption")
        derived = opened.page.inner_text("#caption [data-role=formula]")
        assert "derived by the engine" in derived and "∂L/∂Z = (softmax(Z) − onehot(y))/N" in derived
        assert set(opened.page.eval_on_selector_all("svg.graph.shown g.node.compared", NAMES)) == {
            f"t{graph_order(model.loss).index(model.Z)}"
        }
        opened.press("Home")
        assert opened.current() == set() and opened.page.is_disabled("#prev")
        opened.page.click("#next")
        opened.page.click("#next")
        assert opened.current() == node_names(model.loss, steps[1], False)
        opened.page.fill("#slider", "5")
        assert opened.current() == node_names(model.loss, steps[4], False)
        opened.page.click("#last")
        assert opened.page.is_disabled("#next")
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_hovering_a_node_shows_its_values_and_gradient_once_it_has_arrived(browser, tmp_path):
    model, path = classifier_page(tmp_path)
    W = f"t{graph_order(model.loss).index(model.W)}"
    opened = Opened(browser, path)
    try:
        opened.page.hover(f'svg.graph.shown g.node[data-name="{W}"]')
        assert opened.page.is_visible("#tip")
        tip = opened.page.inner_text("#tip")
        assert "W" in tip and "parameter" in tip and "3×4" in tip and "float64" in tip
        np.testing.assert_allclose(
            opened.numbers("#tip [data-role=tip-values]"), model.W.data.ravel(), atol=6e-5
        )
        assert "arrives in step" in tip  # not computed yet at the start
        opened.press("End")
        opened.page.mouse.move(0, 0)
        opened.page.hover(f'svg.graph.shown g.node[data-name="{W}"]')
        np.testing.assert_allclose(
            opened.numbers("#tip [data-role=tip-grad]"), model.W.grad.ravel(), atol=6e-5
        )
        # An op shows its local rule.
        opened.page.hover('svg.graph.shown g.node[data-name^="op"] >> nth=0')
        assert "local rule" in opened.page.inner_text("#tip")
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_keyboard_only_tab_to_a_node_and_toggle_values(browser, tmp_path):
    _, path = classifier_page(tmp_path)
    opened = Opened(browser, path)
    try:
        for _ in range(40):  # buttons, slider, toggles, then the nodes of the drawing
            opened.press("Tab")
            if opened.page.evaluate("document.activeElement.classList.contains('node')"):
                break
        assert opened.page.is_visible("#tip")
        opened.press("Escape")
        assert not opened.page.is_visible("#tip")
        assert opened.page.get_attribute("svg.graph.shown", "data-variant") == "grads"
        opened.press("v")
        assert opened.page.get_attribute("svg.graph.shown", "data-variant") == "both"
        opened.press("g")
        assert opened.page.get_attribute("svg.graph.shown", "data-variant") == "values"
        # A gradient's numbers on its node stay hidden until the walk reaches it.
        opened.press("g")
        opened.press("ArrowRight")
        hidden = opened.page.eval_on_selector_all(
            "svg.graph.shown text.ng",
            HIDDEN,
        )
        total = opened.page.eval_on_selector_all("svg.graph.shown text.ng", "ts => ts.length")
        assert 0 < hidden < total
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_a_screenshot_at_a_middle_step_shows_the_graph_and_the_highlight(browser, tmp_path):
    from PIL import Image

    model, path = classifier_page(tmp_path)
    opened = Opened(browser, path)
    try:
        for _ in range(len(walk(model.loss)) // 2):
            opened.press("ArrowRight")
        picture = Image.open(io.BytesIO(opened.page.screenshot())).convert("RGB")
        assert picture.size == (1920, 1080)
        box = opened.page.locator("#stage").bounding_box()
        stage = picture.crop((box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]))
        pixels = np.asarray(stage).reshape(-1, 3).astype(int)
        assert (pixels.sum(axis=1) < 600).mean() > 0.02, "the drawing is (nearly) blank"
        orange = np.abs(pixels - [0xF2, 0x8E, 0x2B]).sum(axis=1) < 40
        assert orange.sum() > 5000, "the current node's highlight is not drawn"
    finally:
        opened.close()


# The caption's and every node's box on screen, and the smallest node text in CSS pixels
# (a font size in the drawing's units times the drawing's scale on screen).
LAYOUT = """() => {
  const box = (r) => [r.left, r.top, r.right, r.bottom];
  const svg = document.querySelector("svg.graph.shown");
  const scale = svg.getBoundingClientRect().height / svg.viewBox.baseVal.height;
  const sizes = [...svg.querySelectorAll("g.node text")].map((t) => Number(t.getAttribute("font-size")));
  return {
    caption: box(document.getElementById("caption").getBoundingClientRect()),
    nodes: [...svg.querySelectorAll("g.node")].map((g) => [g.dataset.name, box(g.getBoundingClientRect())]),
    smallestText: Math.min(...sizes) * scale,
  };
}"""


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1280, 720)])
def test_on_a_laptop_the_caption_covers_no_node_and_keeps_to_a_third_of_the_height(
    browser, tmp_path, width, height
):
    model, path = classifier_page(tmp_path)
    opened = Opened(browser, path)
    try:
        opened.page.set_viewport_size({"width": width, "height": height})
        for position in range(len(walk(model.loss)) + 2):
            if position:
                opened.press("ArrowRight")
            shown = opened.page.evaluate(LAYOUT)
            left, top, right, bottom = shown["caption"]
            assert bottom - top <= 0.34 * height, f"position {position}: caption {bottom - top:.0f} px tall"
            stage = opened.page.locator("#stage").bounding_box()
            seen = (stage["x"], stage["y"], stage["x"] + stage["width"], stage["y"] + stage["height"])
            # What shows of each node is the part inside the stage (the stage clips the rest, scrolled
            # out of it); the caption must cover none of that.
            clipped = [
                (name, (max(x0, seen[0]), max(y0, seen[1]), min(x1, seen[2]), min(y1, seen[3])))
                for name, (x0, y0, x1, y1) in shown["nodes"]
            ]
            under = [
                name
                for name, (x0, y0, x1, y1) in clipped
                if x0 < x1 and y0 < y1 and x0 < right and x1 > left and y0 < bottom and y1 > top
            ]
            assert under == [], f"position {position}: the caption covers {under}"
            assert shown["smallestText"] >= 11, (
                f"position {position}: node text {shown['smallestText']:.1f} px"
            )
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_the_notebook_iframe_runs_the_page(browser):
    model = build_classifier()
    shown = viz.explore(model.loss, reference=(model.Z, model.labels, model.class_axis))
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.set_content(f"<!DOCTYPE html><html><body>{shown._repr_html_()}</body></html>")
        frame = page.frame_locator("iframe")
        frame.locator("#next").click()
        frame.locator("#next").click()
        assert "Step 2 of" in frame.locator("#caption").inner_text()
        assert errors == []
    finally:
        page.close()


def test_the_python_in_docs_explorer_md_runs(tmp_path, monkeypatch):
    docs = Path(__file__).resolve().parents[3] / "docs"
    text = (docs / "explorer.md").read_text(encoding="utf-8")
    assert (docs / "images" / "explorer.png").is_file()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(docs / "explorer.md"), "exec"), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classifier-row.html", "mine.html"]


def test_the_script_and_styles_are_in_the_wheel(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in ("explorer.html", "explorer.css", "explorer.js"):
        assert f"tinygrad_softmax/lecture/views/web/{name}" in names


# ---------------------------------------------------------------- names that look like markup

HOSTILE = {"x": "<!--<script>", "w": "</script><b>bold</b>", "sum": "a & b\u2028c"}


def hostile_graph() -> Tensor:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True, name=HOSTILE["x"])
    w = Tensor(np.array([0.5, -1.0]), requires_grad=True, name=HOSTILE["w"])
    loss = (x * w).exp().sum()
    loss.name = HOSTILE["sum"]
    return loss


def test_a_name_that_looks_like_markup_stays_inside_the_data_script(tmp_path):
    text = explorer.to_html(hostile_graph(), tmp_path / "page.html").read_text(encoding="utf-8")
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    assert found is not None
    block = found.group(1)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in block, raw  # each written as a \u escape inside the JSON strings
    assert set(HOSTILE.values()) <= _strings(page_data(text))  # and read back as they were


def _strings(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def test_a_name_that_looks_like_markup_does_not_break_the_page_in_a_browser(browser, tmp_path):
    loss = hostile_graph()
    path = explorer.to_html(loss, tmp_path / "page.html")
    opened = Opened(browser, path)
    try:
        assert opened.page.eval_on_selector_all("script", "s => s.length") == 2  # the data and the code
        assert opened.page.locator("b").count() == 0  # nothing of a name became an element
        for k, step in enumerate(walk(loss), start=1):
            opened.press("ArrowRight")
            assert opened.current() == node_names(loss, step, False), f"step {k}"
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


# Where the stage is, and the node of this position (the loss at the start, the compared logits at the
# end) with its neighbours: each box on screen, and the smallest node text in CSS pixels.
SCREEN_USE = """() => {
  const box = (r) => [r.left, r.top, r.right, r.bottom];
  const svg = document.querySelector("svg.graph.shown");
  const scale = svg.getBoundingClientRect().height / svg.viewBox.baseVal.height;
  const sizes = [...svg.querySelectorAll("g.node text")].map((t) => Number(t.getAttribute("font-size")));
  const focus = svg.querySelector("g.node.current, g.node.compared") ||
    svg.querySelector(`g.node[data-name="${JSON.parse(document.getElementById("data").textContent).steps[0].node}"]`);
  const name = focus.dataset.name;
  const near = new Set([name]);
  svg.querySelectorAll("g.edge").forEach((e) => {
    if (e.dataset.tail === name) near.add(e.dataset.head);
    if (e.dataset.head === name) near.add(e.dataset.tail);
  });
  const stage = document.getElementById("stage");
  return {
    stage: box(stage.getBoundingClientRect()),
    drawing: box(svg.getBoundingClientRect()),
    inner: [stage.clientWidth, stage.clientHeight],
    focus: name,
    near: [...near].map((n) => [n, box(svg.querySelector(`g.node[data-name="${n}"]`)
      .getBoundingClientRect())]),
    nodes: [...svg.querySelectorAll("g.node")].map((g) => box(g.getBoundingClientRect())),
    smallestText: Math.min(...sizes) * scale,
  };
}"""


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1366, 768), (1280, 720)])
def test_the_explorer_uses_its_screen(browser, tmp_path, width, height):
    """At each position: the node of the step and its neighbours fully on screen, the drawing starting at
    the top of the stage (no blank band above it), node text at least 12 px; the same in the whole-graph
    view; the Start view shows the loss."""
    model, path = classifier_page(tmp_path)
    opened = Opened(browser, path)
    try:
        opened.page.set_viewport_size({"width": width, "height": height})
        for whole in (False, True):
            opened.press("Home")
            if whole:
                opened.press("w")
            for position in range(len(walk(model.loss)) + 2):
                if position:
                    opened.press("ArrowRight")
                shown = opened.page.evaluate(SCREEN_USE)
                where = f"{width}×{height}, {'whole graph, ' if whole else ''}position {position}"
                left, top = shown["stage"][:2]
                right, bottom = left + shown["inner"][0], top + shown["inner"][1]  # without the scroll bars
                boxes = dict(shown["near"])
                span = (
                    max(b[2] for b in boxes.values()) - min(b[0] for b in boxes.values()),
                    max(b[3] for b in boxes.values()) - min(b[1] for b in boxes.values()),
                )
                # All of them when they fit the stage at 12 px text; else (an arrow that skips over
                # three steps, Z − max into log P, on a laptop) the node of the step itself.
                fits = span[0] <= right - left and span[1] <= bottom - top
                for name, (x0, y0, x1, y1) in boxes.items():
                    if fits or name == shown["focus"]:
                        assert x0 >= left - 1 and x1 <= right + 1 and y0 >= top - 1 and y1 <= bottom + 1, (
                            f"{where}: {name} (next to {shown['focus']}) is not fully on screen"
                        )
                assert shown["drawing"][1] - top <= 16, f"{where}: a blank band above the drawing"
                assert shown["smallestText"] >= 11.99, f"{where}: node text {shown['smallestText']:.1f} px"
                if position == 0:
                    assert shown["focus"] == "t13"  # the loss: where the walk starts
            if whole:
                opened.press("w")
        assert opened.clean(), (opened.errors, opened.blocked, opened.failed)
    finally:
        opened.close()


def test_graphviz_that_takes_too_long_is_stopped_with_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYGRAD_SOFTMAX_DOT_SECONDS", "0.001")
    with pytest.raises(
        ValueError, match=r"Graphviz's dot took more than 0\.001 s to lay out a graph of \d+ tensors"
    ):
        explorer.to_html(hostile_graph(), tmp_path / "page.html")
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "explorer.html"
    assert main(["explore", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TINYGRAD_SOFTMAX_DOT_SECONDS=SECONDS" in err
    assert not out.exists()


def test_the_drawing_has_alt_text_for_every_position(browser, tmp_path):
    _, path = classifier_page(tmp_path)
    opened = Opened(browser, path)
    try:
        label = lambda: opened.page.get_attribute("#stage", "aria-label")  # noqa: E731
        assert "before the backward walk" in label()
        opened.press("ArrowRight")
        assert "step 1 of 12: loss = neg(−L)" in label() and "thick orange border" in label()
        opened.press("End")
        assert "(P − Y)/N" in label() and "thick green border" in label()
        dashed = opened.page.evaluate(
            "() => { document.body.classList.add('walking'); const e = document.querySelector("
            "'svg.graph.shown g.edge'); e.setAttribute('class', 'edge waiting');"
            " return getComputedStyle(e.querySelector('path')).strokeDasharray; }"
        )
        assert dashed not in ("", "none")
    finally:
        opened.close()
