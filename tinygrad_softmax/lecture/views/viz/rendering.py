"""Writing a picture: :func:`render` (one file) and :func:`render_slides` (as many slides as it takes).

Both fit a 16:9 slide by default (:mod:`lecture.views.slides`); without Graphviz's
``dot`` program the DOT text is saved and :class:`GraphvizNotFoundError` says
how to install it.
"""

from __future__ import annotations

import glob
import re
import shutil
from pathlib import Path
from typing import Any

import graphviz

from ....tensor import Tensor
from ... import extras, outputs
from .. import slides
from ..graph import graph_order
from .drawing import Drawing, find_clusters, to_dot

__all__ = [
    "FORMATS",
    "GraphvizNotFoundError",
    "missing_dot",
    "render",
    "render_slides",
    "slide_source",
    "slide_sources",
    "slide_text_px",
    "MAX_SLIDES",
]

FORMATS = ("png", "svg", "pdf")


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not on PATH.

    The message is the one line of :func:`extras.skipped`: what was not drawn
    and the install command. ``dot_path`` is where the DOT text was saved
    (None when there is nothing useful to save, as for the backward frames).
    """

    def __init__(self, message: str, dot_path: Path | None) -> None:
        super().__init__(message)
        self.dot_path = dot_path


def missing_dot(source: str, path: Path) -> GraphvizNotFoundError:
    """Save the DOT text next to ``path`` and build the error that says so, in one line."""
    dot_path = outputs.write_text(path.with_suffix(".dot"), source)
    form = path.suffix[1:].lower() or "png"
    # `dot -Tpng` makes the picture itself; an explorer page is more than Graphviz's output
    remake = f": dot -T{form} {dot_path} -o {path}" if form in ("png", "svg", "pdf") else ""
    what = f"{path} (its DOT text is in {dot_path}{remake})"
    return GraphvizNotFoundError(extras.skipped(what, "dot"), dot_path)


def render(
    root: Tensor,
    path: str | Path,
    *,
    dpi: int | None = None,
    slide: str | None = "16:9",
    **to_dot_options: Any,
) -> Path:
    """Draw ``root``'s graph into ``path``: PNG, SVG or PDF by its extension.

    By default the picture fits a 16:9 slide (:mod:`lecture.views.slides`: a long
    chain wrapped onto rows, the canvas padded to the ratio, 1920 px wide);
    ``slide="4:3"`` for the older shape, ``slide=None`` for the drawing at its
    natural width (``graph --wide``). ``dpi`` sets the resolution. Other options
    go to :func:`to_dot`. Without Graphviz's ``dot`` program, the DOT text is
    saved next to ``path`` and :class:`GraphvizNotFoundError` says how to install it.

    One picture: to fit, it may be drawn compact or with its clusters collapsed
    (:func:`slide_source`), which hides the rules of a collapsed cluster's ops.
    :func:`render_slides` cuts such a picture into slides instead.
    """
    return _render("render", root, Path(path), dpi, slide, to_dot_options, cut=False)[0]


def render_slides(
    root: Tensor,
    path: str | Path,
    *,
    dpi: int | None = None,
    slide: str | None = "16:9",
    **to_dot_options: Any,
) -> list[Path]:
    """Draw ``root``'s graph on as many slides as it takes to show everything asked: the paths written.

    As :func:`render` when one slide is enough; else (typically with
    ``show_rules=True``: a graph with every op's local rule) the graph is cut
    along its ranks into 2, 3 or 4 pictures, ``path``'s name with ``-1``,
    ``-2``, ... (``rules-1.png``, ``rules-2.png``), each fitted to the slide
    and meeting the slide rule (:func:`slide_sources`). The tensor one slide
    ends with is drawn again where the next starts. ``slide=None``: one
    picture at natural width, as :func:`render`. A picture an earlier call
    left in the other form (``path`` itself, or ``path``-k) is removed, so
    the folder never mixes two drawings.
    """
    return _render("render_slides", root, Path(path), dpi, slide, to_dot_options, cut=True)


def _render(
    who: str,
    root: Tensor,
    path: Path,
    dpi: int | None,
    slide: str | None,
    options: dict[str, Any],
    *,
    cut: bool,
) -> list[Path]:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{who}: cannot write {path.name!r}: the extension {path.suffix or '(none)'!r} is not "
            "one of .png, .svg, .pdf"
        )
    if slide is not None and slide not in slides.RATIOS:
        raise ValueError(f"{who}: slide must be one of {', '.join(slides.RATIOS)} or None, got {slide!r}")
    dot = to_dot(root, **options)
    if dpi is not None:
        dot.attr(dpi=str(dpi))
    if shutil.which("dot") is None:
        raise missing_dot(dot.source, path)
    try:
        if slide is None:
            sources = [dot.source]
        elif cut:
            sources = slide_sources(root, options, slide, dpi)
        else:
            sources = [slide_source(root, options, slide, dpi)]
        pictures = [slides.picture(source, fmt) for source in sources]
    except graphviz.ExecutableNotFound:
        raise missing_dot(dot.source, path) from None
    # Each file whole or not at all: a temporary file renamed into place.
    if len(pictures) == 1:
        written = [outputs.write_bytes(path, pictures[0])]
    else:
        paths = [path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(1, len(pictures) + 1)]
        written = [outputs.write_bytes(part, picture) for part, picture in zip(paths, pictures)]
    if cut:  # a picture of an earlier run in the other form (one file, or more slides) would mislead
        older = [path, *path.parent.glob(f"{glob.escape(path.stem)}-[0-9]{glob.escape(path.suffix)}")]
        for old in older:
            if old not in written:
                old.unlink(missing_ok=True)
    return written


def slide_text_px(source: str, dpi: int | None) -> float:
    """How tall the smallest text of a fitted source is when its picture fills the slide."""
    resolution = float(dpi) if dpi is not None else slides.SLIDE[0] / slides.canvas_inches(source)
    return slides.text_px(slides.min_font_pt(source), resolution, slides.SLIDE)


def slide_source(root: Tensor, options: dict[str, Any], shape: str, dpi: int | None) -> str:
    """The DOT source of the mildest drawing that meets the slide rule (:mod:`lecture.views.slides`).

    Tried in order: the drawing as asked, wrapped onto rows; then compact (each
    unnamed intermediate inside its op); then, if a cluster was given, collapsed
    (cross_entropy as one node); then both. The first whose smallest text is at
    least ``slides.MIN_TEXT_PX`` on a 1920×1080 slide is drawn, else the last.
    """
    steps: list[dict[str, Any]] = [{}, {"compact": True}]
    if options.get("clusters"):
        steps += [{"collapse": True}, {"compact": True, "collapse": True}]
    source = ""
    for extra in steps:
        source = slides.fit(to_dot(root, **{**options, **extra}).source, shape, dpi)
        if slide_text_px(source, dpi) >= slides.MIN_TEXT_PX:
            break
    return source


MAX_SLIDES = 4  # a graph cut into more slides than this is better read in the explorer


def slide_sources(root: Tensor, options: dict[str, Any], shape: str, dpi: int | None) -> list[str]:
    """One fitted DOT source per slide: the fewest slides that show everything asked at the rule's size.

    One slide when :func:`slide_source`'s drawing meets the rule and hides
    nothing asked for: collapsing a cluster hides its ops' rules and the red
    marks inside it, so then (unless ``collapse`` was asked) it does not
    count (:func:`_collapse_hides`). Else the
    drawing as asked, then compact, cut into 2, 3, ... ``MAX_SLIDES`` pieces
    (``slides.split``, a compact box handed over as its tensor): the first cut
    whose every piece meets the rule. If none does, the one slide, or (when it
    would hide the rules) the cut whose smallest text is largest.
    """
    single = slide_source(root, options, shape, dpi)
    collapsed = re.search(r"^\t+fn\d+ \[", single, re.M) is not None
    hides_rules = collapsed and not options.get("collapse") and _collapse_hides(root, options)
    if slide_text_px(single, dpi) >= slides.MIN_TEXT_PX and not hides_rules:
        return [single]
    best: tuple[float, list[str]] | None = None
    for parts in range(2, MAX_SLIDES + 1):
        for extra in ({}, {"compact": True}):
            drawing_options = {**options, **extra}
            source = to_dot(root, **drawing_options).source
            handoffs = Drawing.of(root, **_drawing_options(drawing_options)).handoffs()
            pieces = [slides.fit(piece, shape, dpi) for piece in slides.split(source, parts, handoffs)]
            smallest = min(slide_text_px(piece, dpi) for piece in pieces)
            if smallest >= slides.MIN_TEXT_PX:
                return pieces
            if best is None or smallest > best[0]:
                best = (smallest, pieces)
    assert best is not None
    return best[1] if hides_rules else [single]


def _collapse_hides(root: Tensor, options: dict[str, Any]) -> bool:
    """Whether collapsing the clusters would hide something asked for: a rule, or a red mark inside."""
    members = {t for c in find_clusters(graph_order(root), options.get("clusters")) for t in c.members}
    if options.get("show_rules") and any(t.parents for t in members):
        return True
    marked = {*options.get("highlight", ()), *options.get("highlight_ops", ())}
    return any(t in members and t is not root for t in marked)


def _drawing_options(options: dict[str, Any]) -> dict[str, Any]:
    """:func:`to_dot`'s options without the ones that only place the picture (rankdir, title)."""
    return {key: value for key, value in options.items() if key not in ("rankdir", "title")}
