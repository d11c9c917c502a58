"""The lecture deck (``tinygrad-softmax slides``): the plan, the page, and the deck presented in Chromium.

The first tests read the plan and the HTML file; the rest open the deck in a
real headless Chromium (from file://, every request that is not a file blocked
and counted), visit every slide with all its fragments shown, and measure it at
1920×1080: the slide is 16:9, nothing sticks out of it, no text is under 24 px.
They print it to PDF (one page per slide) and open the speaker view. The browser
tests skip where no Chromium or Playwright is installed; CI requires them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import deck, extras
from tinygrad_softmax.lecture.numbers import number
from tinygrad_softmax.lecture.training.classifier import build_classifier

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("deck")  # one worker builds the deck once and presents it
needs_dot = pytest.mark.skipif(not extras.have("dot"), reason="Graphviz's dot is not installed")
TITLES = [(part.number, title) for part in deck.PLAN for title in part.slides]


def sections(text: str) -> list[tuple[int, str]]:
    """(part, title) of every slide of a deck page, in order."""
    found = re.findall(
        r'<section class="[^"]*" data-part="(\d+)" data-slide="\d+" data-title="([^"]*)"', text
    )
    return [(int(part), title.replace("&#x27;", "'")) for part, title in found]


def _write_deck(out: Path) -> Path:
    assert main(["slides", "--out", str(out)]) == (0 if extras.have("dot") else 1)
    return out / "index.html"


@pytest.fixture(scope="session")
def default_deck(made_once) -> Path:
    """The deck at the default sizes, written once per test run by the command line."""
    return made_once("deck", _write_deck)


# ---------------------------------------------------------------- the plan


def test_the_plan_is_fifty_minutes_in_the_nine_parts_of_the_lecture():
    assert sum(part.minutes for part in deck.PLAN) == deck.TOTAL_MINUTES == 50
    assert [part.number for part in deck.PLAN] == list(range(1, 10))
    for part in deck.PLAN:
        assert part.command.startswith("tinygrad-softmax ") and part.slides and part.minutes > 0


def test_docs_lecture_plan_is_the_plan_the_deck_follows():
    """Each row of the plan's table: part, minutes, the command; and each slide's title, in order."""
    text = (ROOT / "docs" / "lecture-plan.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) \| ([^|]+?) \| (\d+) \| `([^`]+)` \| ([^|]+?) \|$", text, re.M)
    assert [(int(n), int(m), c) for n, _, m, c, _ in rows] == [
        (p.number, p.minutes, p.command) for p in deck.PLAN
    ]
    for (_, _, _, _, slides), part in zip(rows, deck.PLAN):
        assert [s.strip() for s in slides.split(";")] == list(part.slides)


# ---------------------------------------------------------------- the file


@needs_dot
def test_the_slides_follow_the_plan_and_the_timings_add_up_to_fifty_minutes(default_deck):
    text = default_deck.read_text(encoding="utf-8")
    assert sections(text) == TITLES
    timings = [int(t) for t in re.findall(r'data-timing="(\d+)"', text)]
    assert sum(timings) == 50 * 60 and all(t > 0 for t in timings)
    assert text.count('<aside class="notes">') == len(TITLES)


@needs_dot
def test_the_deck_is_one_self_contained_file(default_deck):
    text = default_deck.read_text(encoding="utf-8")
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.S)  # the code's own strings are not tags
    assert "<script" not in markup
    assert not re.search(r"""<(link|img|iframe)\b[^>]*\s(src|href)\s*=\s*["'](?!data:)""", markup)
    assert "@import" not in text and not re.search(r"url\(\s*['\"]?(https?:|//)", text)
    assert "Hakim El Hattab" in text  # reveal.js's licence travels with its code
    assert text.count("<img") >= 2 and 'srcdoc="' in text  # the graph, the frames, the explorer


def test_every_number_is_computed_at_the_chosen_sizes_and_random_seed(monkeypatch):
    monkeypatch.setattr(extras, "have", lambda part: part != "dot" and part != "browser")  # numbers only
    small = deck.build_deck(deck.DeckOptions(samples=3, classes=2, features=2, seed=7, labels=(1, 0, 1)))
    model = build_classifier("column", D=2, N=3, C=2, seed=7, labels=np.array([1, 0, 1]))
    problem = small.slides[1].body
    assert f"L = {model.loss.item():.4f}" in problem and "D×N = 2×3" in problem
    other = deck.build_deck(deck.DeckOptions(samples=3, classes=2, features=2, seed=8))
    assert other.slides[1].body != problem  # another random seed, other numbers
    closed = small.slides[6].body
    assert model.Z.grad is not None
    for value in model.Z.grad[:, 0]:
        assert number(value, ".4f") in closed
    assert [(s.part, s.title) for s in small.slides] == TITLES  # the same plan without dot


def test_the_p_minus_y_slide_shows_the_formula_derive_derives(monkeypatch):
    from tinygrad_softmax.lecture.derive import report

    monkeypatch.setattr(extras, "have", lambda part: part != "dot" and part != "browser")  # numbers only
    slide = next(s for s in deck.build_deck().slides if s.title == "∂L/∂Z = (P − Y)/N")
    assert (
        "derived from the graph (tinygrad-softmax derive): ∂L/∂Z = (softmax(Z) − onehot(y))/N" in slide.body
    )
    # Written by derive at build time: a formula the tool prints differently is what the slide shows.
    monkeypatch.setattr(report, "unicode_line", lambda d, f: f"∂L/∂{f.name} = from derive")
    slide = next(s for s in deck.build_deck().slides if s.title == "∂L/∂Z = (P − Y)/N")
    assert "(tinygrad-softmax derive): ∂L/∂Z = from derive" in slide.body


def test_bad_sizes_and_labels_are_refused_in_one_line_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "deck"
    for argv, words in (
        (["--labels", "0,1"], "--labels gives 2 labels for --samples 5"),
        (["--labels", "0,1,2,3,0"], "--labels 3 is not a class of --classes 3"),
        (["--classes", "9"], "--classes: must be from 2 to 8, got 9"),
        (["--labels", "a,b"], "--labels: must be whole numbers separated by commas"),
    ):
        assert main(["slides", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
    assert not (out / "index.html").exists()


def test_without_dot_the_deck_is_written_and_one_line_says_what_was_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(extras, "have", lambda part: part not in ("dot",))
    monkeypatch.setattr(extras, "browser", lambda: None)
    assert main(["slides", "--out", str(tmp_path), "--pdf", str(tmp_path / "deck.pdf")]) == 1
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert lines[0].startswith("tinygrad-softmax: skipped the forward graph") and "graphviz" in lines[0]
    assert lines[1].startswith("tinygrad-softmax: skipped the PDF") and "chromium" in lines[1]
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert sections(text) == TITLES and "dot is not installed" in text
    assert not (tmp_path / "deck.pdf").exists()


# ---------------------------------------------------------------- in a real browser

# Every element of the current slide that shows text of its own, with its size on the screen.
TEXTS = """() => {
  const slide = Reveal.getCurrentSlide(), scale = Reveal.getScale(), found = [];
  for (const el of [slide, ...slide.querySelectorAll('*'), ...document.querySelectorAll('.slide-number *')]) {
    if (el.closest('aside.notes') || !el.getClientRects().length) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || getComputedStyle(el).visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    found.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
                px: parseFloat(getComputedStyle(el).fontSize) * scale,
                left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  }
  return found;
}"""
# Every visible element of the current slide (pictures, tables, frames too), as rectangles.
BOXES = """() => [...Reveal.getCurrentSlide().querySelectorAll('*')]
  .filter(el => !el.closest('aside.notes') && el.getClientRects().length
                && getComputedStyle(el).visibility !== 'hidden')
  .map(el => { const r = el.getBoundingClientRect();
               return {tag: el.tagName, cls: el.className, left: r.left, top: r.top,
                       right: r.right, bottom: r.bottom}; })"""


class Presented:
    """The deck opened from file:// with the network blocked, and everything that went wrong on it."""

    def __init__(self, context, path: Path):
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.blocked.append(r.url))
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.Reveal && Reveal.isReady()")

    def _route(self, route) -> None:
        if route.request.url.startswith(("file://", "data:", "about:")):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def show(self, index: int) -> None:
        """Slide ``index`` with every fragment shown."""
        self.page.evaluate(f"Reveal.slide({index}, 0, 1000)")
        self.page.wait_for_timeout(100)


@needs_dot
def test_presented_every_slide_is_16_9_nothing_overflows_and_no_text_is_under_24_px(browser, default_deck):
    shown = Presented(browser, default_deck)
    try:
        page = shown.page
        assert page.evaluate("Reveal.getTotalSlides()") == len(TITLES)
        width, height = deck.SLIDE_SIZE
        assert page.evaluate("Reveal.getScale()") == pytest.approx(1.0)
        for k, (part, title) in enumerate(TITLES):
            shown.show(k)
            current = page.evaluate(
                "(() => { const s = Reveal.getCurrentSlide(), r = s.getBoundingClientRect();"
                " return [s.dataset.part, s.dataset.title, r.width, r.height]; })()"
            )
            assert current[:2] == [str(part), title]
            assert current[2:] == pytest.approx([width, height], abs=1), title  # 16:9 at full size
            for box in page.evaluate(BOXES):
                inside = (
                    box["left"] >= -1
                    and box["top"] >= -1
                    and box["right"] <= width + 1
                    and box["bottom"] <= height + 1
                )
                assert inside, f"slide {k + 1} ({title}): {box} sticks out of the slide"
            texts = page.evaluate(TEXTS)
            assert any(t["text"] == str(k + 1) for t in texts), title  # the slide number counts too
            small = [t for t in texts if t["px"] < deck.MIN_TEXT_PX - 0.01]
            assert not small, f"slide {k + 1} ({title}): text under {deck.MIN_TEXT_PX} px: {small[:3]}"
        assert not shown.errors and not shown.blocked, (shown.errors, shown.blocked)
    finally:
        shown.page.close()


@needs_dot
def test_arrow_keys_step_through_the_fragments_then_the_slides(browser, default_deck):
    shown = Presented(browser, default_deck)
    try:
        page = shown.page
        page.keyboard.press("ArrowRight")  # the title slide has no fragments
        assert page.evaluate("Reveal.getIndices().h") == 1
        fragments = page.evaluate("Reveal.getCurrentSlide().querySelectorAll('.fragment').length")
        assert fragments >= 2
        for _ in range(fragments):
            page.keyboard.press("ArrowRight")
        assert page.evaluate("Reveal.getIndices().h") == 1  # still the same slide, every step shown
        page.keyboard.press("ArrowRight")
        assert page.evaluate("Reveal.getIndices().h") == 2
        page.mouse.click(deck.SLIDE_SIZE[0] - 40, deck.SLIDE_SIZE[1] - 60)  # reveal's "next" arrow
        assert not shown.errors and not shown.blocked, (shown.errors, shown.blocked)
    finally:
        page.close()


@needs_dot
def test_the_speaker_view_opens_with_the_notes_and_a_timer(browser, default_deck):
    shown = Presented(browser, default_deck)
    try:
        page = shown.page
        page.keyboard.press("ArrowRight")
        with page.expect_popup() as popup:
            page.keyboard.press("s")
        notes = popup.value
        notes.wait_for_selector(".speaker-controls-notes:not(.hidden)", timeout=20_000)
        text = notes.inner_text(".speaker-controls-notes")
        assert "The problem" in text and "the loss is" in text
        assert notes.is_visible(".speaker-controls-time .timer")
        assert notes.query_selector("#current-slide iframe") is not None
        notes.close()
        assert not shown.errors and not shown.blocked, (shown.errors, shown.blocked)
    finally:
        page.close()


@needs_dot
def test_the_pdf_has_one_page_per_slide(default_deck, tmp_path):
    if not extras.have("browser"):
        pytest.skip("no Chromium, Chrome or Edge to print with")
    pdf = deck.print_pdf(default_deck.with_name("print.html"), tmp_path / "deck.pdf")
    assert deck.pdf_pages(pdf) == len(TITLES)
    sizes = set(re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes()))
    assert len(sizes) == 1
    ((w, h),) = sizes
    assert float(w) / float(h) == pytest.approx(16 / 9, rel=0.01)
