"""The pictures in docs/images are the ones the renderer draws today: a stale picture fails here.

Each picture's pixel size is derived from the renderer's settings (a plot is SLIDE_FIGSIZE at
SLIDE_DPI, a slide-fitted graph or frame is slides.SLIDE); the few drawn at their natural width
(``graph --wide``) are drawn again, which takes a second each. And `make docs-images` names every
picture, so `make docs-images` brings them all up to date.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_softmax.lecture import extras
from tinygrad_softmax.lecture.outputs import SLIDE_DPI, SLIDE_FIGSIZE
from tinygrad_softmax.lecture.views import slides
from tinygrad_softmax.lecture.views.viz import png_size

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
PLOT = (round(SLIDE_FIGSIZE[0] * SLIDE_DPI), round(SLIDE_FIGSIZE[1] * SLIDE_DPI))

# Every picture, and what draws it: "plot" (matplotlib at the slide size), "slide" (a graph fitted to
# a 16:9 slide), or the `tinygrad-softmax graph` arguments that draw it at its natural width.
PICTURES: dict[str, object] = {
    "anomaly_naive.png": "slide",
    "anomaly_stable.png": "slide",
    "digits-loss.png": "plot",
    "digits-weights.png": "plot",
    "epsilon_sweep.png": "plot",
    "explorer.png": "slide",  # a 1920×1080 screenshot of the page
    "hessian-column.png": "plot",
    "iris-loss.png": "plot",
    "modes.png": "plot",
    "moons-boundaries.png": "plot",
    "newton-iris.png": "plot",
    "spiral-boundaries.png": "plot",
    "softmax_graph_rules-1.png": "slide",
    "softmax_graph_rules-2.png": "slide",
    "softmax_graph.png": ["--wide"],
    "softmax_graph_row.png": ["--wide", "--layout", "row", "--show-grads"],
    "softmax_graph_collapsed.png": ["--wide", "--collapse", "--show-values", "--show-grads"],
    "softmax_graph_compact.png": ["--wide", "--compact"],
    "softmax_graph_mlp.png": ["--wide", "--model", "mlp", "--compact", "--collapse"],
}


def _pictures() -> list[str]:
    return sorted(str(p.relative_to(IMAGES)) for p in IMAGES.rglob("*.png"))


def test_every_picture_is_in_the_table_and_made_by_make_docs_images():
    frames = [name for name in _pictures() if name.startswith("backward/")]
    assert frames and sorted(name for name in _pictures() if name not in frames) == sorted(PICTURES)
    target = re.search(r"^docs-images:.*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert target is not None
    recipe = target.group(1)
    assert "anomaly --out docs/images" in recipe  # anomaly_naive.png and anomaly_stable.png
    for name in (n for n in PICTURES if not n.startswith("anomaly_")):
        stem = re.sub(r"-\d+(?=\.png$)", "", name)  # a graph cut into slides: OUT-1.png, OUT-2.png
        assert f"docs/images/{stem}" in recipe or f"{stem} " in recipe or f"/{stem}" in recipe, name
    assert "--out docs/images/backward" in recipe


@pytest.mark.parametrize("name", [n for n, how in PICTURES.items() if how in ("plot", "slide")])
def test_a_plot_or_slide_picture_has_the_size_drawn_today(name):
    expected = PLOT if PICTURES[name] == "plot" else slides.SLIDE
    assert png_size(IMAGES / name) == expected, f"{name} is stale: run make docs-images"


def test_the_backward_frames_have_the_slide_size():
    for path in sorted((IMAGES / "backward").glob("frame_*.png")):
        assert png_size(path) == slides.SLIDE, f"{path.name} is stale: run make docs-images"


@pytest.mark.parametrize("name", [n for n, how in PICTURES.items() if isinstance(how, list)])
def test_a_wide_graph_has_the_size_drawn_today(name, tmp_path):
    if not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed")
    out = tmp_path / name
    command = [sys.executable, "-m", "tinygrad_softmax", "graph", "--out", str(out), *PICTURES[name]]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert png_size(IMAGES / name) == png_size(out), f"{name} is stale: run make docs-images"
