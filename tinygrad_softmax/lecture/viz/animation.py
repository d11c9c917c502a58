"""The backward walk as pictures: :func:`backward_frames` (one PNG per step, and a GIF).

:func:`frames_plan` chooses how to draw them so that a frame fits a slide: the
layout every frame is pinned to, the captions, the canvas, and (for a graph too
big for one slide) the parts of the graph the frames show.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ... import engine
from ...tensor import Tensor
from .. import dot, extras, outputs, slides
from ..graph import graph_order, loss_steps, tensor_labels
from .drawing import Cluster, find_clusters
from .frames import CAPTION_PT, Frame, Layout, frame_captions, frame_dot
from .rendering import MAX_SLIDES, GraphvizNotFoundError

__all__ = [
    "READING_MS",
    "caption_delays",
    "backward_frames",
    "FramesPlan",
    "frames_plan",
    "place_caption",
    "png_size",
]


READING_MS = (1500, 200)  # a frame of the GIF: 1.5 s to find the orange node, then 0.2 s a word


def caption_delays(captions: Sequence[Sequence[str]]) -> list[int]:
    """How long the GIF holds each frame, in ms: 1.5 s + 0.2 s per word of its caption.

    0.2 s a word is 300 words a minute, a quick reader: a three-line caption
    (about 30 words) stays up 7.5 s, long enough to read it once while the
    picture is explained; a leaf's two lines go by in about 4 s.
    """
    base, per_word = READING_MS
    return [base + per_word * sum(len(line.split()) for line in caption) for caption in captions]


def backward_frames(
    root: Tensor,
    out_dir: str | Path,
    *,
    gif: bool = False,
    delay_ms: int | None = None,
    dpi: int | None = None,
    rankdir: str = "LR",
    slide: str | None = "16:9",
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
    compact: bool = False,
    collapse: bool = False,
) -> list[Path]:
    """One PNG per step of the backward walk: ``frame_001.png``, ``frame_002.png``, ...

    Each frame highlights the node being processed with the gradient that just
    reached it, draws in bold the edges the gradient has already travelled, and
    greys out the rest. ``dot`` lays the graph out once; every frame is drawn at
    those positions (``neato -n2``), so the frames play as an animation. With
    ``gif=True``, Pillow also writes ``frames.gif``: each frame held long enough
    to read its caption (:func:`caption_delays`), or ``delay_ms`` each, the last
    three times as long. The walk is ``engine.walk``: no ``.grad`` changes.

    By default the frames fit a 16:9 slide as :func:`render`'s graphs do: the
    chain wrapped onto rows, and drawn compact (each unnamed intermediate inside
    its op) or with the one cluster in ``clusters`` collapsed into a box, the
    first of these that keeps the smallest text at least ``slides.MIN_TEXT_PX``
    on the slide (:func:`frames_plan`). ``slide=None`` draws exactly as asked.

    The set is built in a private temporary folder inside ``out_dir`` and then
    moved into place file by file (each move atomic), and older ``frame_*.png``
    beyond the new count are removed: an interrupted run leaves whole files, and
    two runs into the same folder both succeed.
    """
    steps = loss_steps(root, "backward_frames")
    if delay_ms is not None and delay_ms <= 0:
        raise ValueError(f"backward_frames: delay_ms must be positive, got {delay_ms}")
    if gif and not extras.have("Pillow"):
        raise ImportError("backward_frames: " + extras.skipped("the animated GIF (gif=True)", "Pillow"))
    if not extras.have("dot"):
        raise GraphvizNotFoundError(extras.skipped("the backward frames", "dot"), None)
    out_dir = Path(out_dir)
    plan = frames_plan(
        root, rankdir=rankdir, slide=slide, dpi=dpi, clusters=clusters, compact=compact, collapse=collapse
    )
    order, captions = plan.order, plan.captions

    names = [f"frame_{k + 1:03d}.png" for k in range(len(captions))]
    with outputs.private_folder(out_dir) as private:
        made = []
        for name, (k, caption) in zip(names, enumerate(captions)):
            frame = frame_dot(
                root,
                order,
                steps,
                k,
                rankdir,
                plan.layouts[plan.part_of[k]],
                caption,
                compact=plan.compact,
                collapsed=plan.collapsed,
            )
            frame.attr(**plan.canvases[plan.part_of[k]])
            made.append(private / name)
            made[-1].write_bytes(dot.pipe(frame.source, "png", "neato", neato_no_op=2))  # private folder
        _same_size(made)
        if gif:
            delays = [delay_ms] * len(made) if delay_ms else caption_delays(captions)
            _write_gif(made, private / "frames.gif", delays)
        # The finished set goes into place one atomic rename at a time; the GIF last.
        for path in made:
            os.replace(path, out_dir / path.name)
        if gif:
            os.replace(private / "frames.gif", out_dir / "frames.gif")
    for old in out_dir.glob("frame_*.png"):
        if old.name not in names:  # left by an earlier run with more steps
            old.unlink(missing_ok=True)
    return [out_dir / name for name in names]


@dataclass
class FramesPlan:
    """How :func:`backward_frames` draws: the drawing chosen, the pinned layouts, captions and canvas.

    A graph too big for one slide is cut into parts (``slides.split``): each
    part has its own layout, and each frame shows the part that holds the node
    of its step. Every frame has the same canvas.
    """

    order: list[Tensor]
    compact: bool
    collapsed: Cluster | None
    layouts: list[Layout]  # one per part of the graph (one part unless it had to be cut)
    part_of: list[int]  # the part each frame shows
    captions: list[list[str]]
    canvases: list[dict[str, str]]  # each part's pad and dpi attributes
    size_pt: tuple[float, float]  # the canvas, in points
    font_pt: float  # the smallest text drawn

    @property
    def layout(self) -> Layout:
        """The first part's layout (the only one when the graph is not cut)."""
        return self.layouts[0]

    @property
    def canvas(self) -> dict[str, str]:
        return self.canvases[0]

    @property
    def text_px(self) -> float:
        """How tall the smallest text is when a frame fills the 1920×1080 slide."""
        width, height = self.size_pt
        return self.font_pt * min(slides.SLIDE[0] / width, slides.SLIDE[1] / height)


def frames_plan(
    root: Tensor,
    *,
    rankdir: str = "LR",
    slide: str | None = "16:9",
    dpi: int | None = None,
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None = None,
    compact: bool = False,
    collapse: bool = False,
) -> FramesPlan:
    """The mildest drawing of the frames that meets the slide rule, laid out once.

    Tried in order, as for :func:`render`: as asked, then compact, then (given a
    cluster) collapsed, then both; each wrapped onto rows by ``slides.fit``'s
    rule. Then the last of these cut into 2, 3, ... ``MAX_SLIDES`` parts, each
    frame showing the part where its step is (the two-layer net's walk: the
    loss and the second layer, then the first layer from ``H1`` back). The
    first whose smallest text is at least ``slides.MIN_TEXT_PX`` when a frame
    fills the slide is kept, else the last. With ``slide=None``, as asked.
    """
    steps = loss_steps(root, "backward_frames")
    if slide is not None and slide not in slides.RATIOS:
        raise ValueError(
            f"backward_frames: slide must be one of {', '.join(slides.RATIOS)} or None, got {slide!r}"
        )
    order = graph_order(root)
    found = find_clusters(order, clusters)
    if len(found) > 1:
        raise ValueError(f"backward_frames: at most one cluster can be collapsed, got {len(found)}")
    cluster = found[0] if found else None
    if collapse and cluster is None:
        raise ValueError("backward_frames: collapse=True needs a cluster: clusters={name: (output, inputs)}")
    tries = [(compact, collapse)]
    if slide is not None:
        tries += [(True, collapse), *([(compact, True), (True, True)] if cluster else [])]
    tries = list(dict.fromkeys(tries))
    cuts = [(*tries[-1], parts) for parts in range(2, MAX_SLIDES + 1)] if slide is not None else []
    plan = None
    for fold, shut, parts in [*((fold, shut, 1) for fold, shut in tries), *cuts]:
        collapsed = cluster if shut else None
        plan = _plan_frames(root, order, steps, rankdir, slide, dpi, fold, collapsed, parts)
        if plan.text_px >= slides.MIN_TEXT_PX:
            break
    assert plan is not None
    return plan


def _plan_frames(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    slide: str | None,
    dpi: int | None,
    compact: bool,
    collapsed: Cluster | None,
    parts: int,
) -> FramesPlan:
    """The frames drawn one way, cut into ``parts`` parts, each part laid out on its best rows."""
    full = frame_dot(root, order, steps, None, rankdir, compact=compact, collapsed=collapsed)
    font = min(slides.min_font_pt(full.source), CAPTION_PT)
    pieces = slides.split_nodes(full.source, parts)
    where = Frame(root, order, steps, None, compact, collapsed)
    part_of = [
        next(p for p, (own, _) in enumerate(pieces) if where.node_of(step.node) in own) for step in steps
    ]
    captions = frame_captions(root, steps, tensor_labels(root))
    if len(pieces) > 1:  # the picture changes with the part: say which part of the graph this is
        for k, caption in enumerate(captions):
            caption[0] = caption[0].replace(
                ":", f" (part {part_of[k] + 1} of {len(pieces)} of the graph):", 1
            )
    layouts: list[Layout] = []
    sizes: list[tuple[float, float]] = []
    for p, source in enumerate(slides.split(full.source, parts)):
        ks = [k for k in range(len(steps)) if part_of[k] == p]
        best: tuple[tuple[bool, float], Layout, list[list[str]], tuple[float, float]] | None = None
        # The layout every frame of the part is pinned to: wrapped onto rows like `graph` for a slide,
        # unless wide; the number of rows chosen with the caption strip counted, as the frame shows it.
        for rows in range(1, slides.MAX_ROWS + 1) if slide is not None else [1]:
            wrapped, in_order = slides.wrapped_rows(source, rows)
            layout = Layout.from_json(dot.pipe(wrapped, "json"))
            tall = layout.width / layout.height < slides.RATIOS.get(slide or "", 0)
            part_captions = [list(captions[k]) for k in ks]
            place_caption(layout, part_captions)
            size = _frame_points(layout, slide)
            score = (in_order, min(slides.SLIDE[0] / size[0], slides.SLIDE[1] / size[1]))
            if best is None or score > best[0]:
                best = (score, layout, part_captions, size)
            if tall:  # already taller than the slide: more rows only shrink the text
                break
        assert best is not None
        _, layout, part_captions, size = best
        for k, caption in zip(ks, part_captions):
            captions[k] = caption
        if slide is not None:
            size = _drawn_size(root, order, steps, rankdir, layout, part_captions, compact, collapsed, slide)
        layouts.append(layout)
        sizes.append(size)
    size = (max(w for w, _ in sizes), max(h for _, h in sizes))  # each at the slide's ratio, so this is too
    canvases = [_frame_canvas(layout, size, slide, dpi) for layout in layouts]
    return FramesPlan(order, compact, collapsed, layouts, part_of, captions, canvases, size, font)


def _drawn_size(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    layout: Layout,
    captions: list[list[str]],
    compact: bool,
    collapsed: Cluster | None,
    slide: str,
) -> tuple[float, float]:
    """The canvas of a frame as ``neato`` draws it at ``layout``, padded to the slide's shape.

    An arrow drawn at its place can reach past the layout's box (a long arrow back to an
    earlier row); the box is grown to what is drawn, so that the padding gives the canvas.
    """
    frame = frame_dot(
        root,
        order,
        steps,
        None,
        rankdir,
        layout,
        captions[0] if captions else None,
        compact=compact,
        collapsed=collapsed,
    )
    drawn = json.loads(dot.pipe(frame.source, "json", "neato", neato_no_op=2))
    _, _, width, height = (float(v) for v in drawn["bb"].split(","))
    layout.width, layout.height = max(layout.width, width), max(layout.height, height)
    return _frame_points(layout, slide)


def _frame_points(layout: Layout, slide: str | None) -> tuple[float, float]:
    """The frame's canvas in points: the drawing with a margin, padded to the slide's shape."""
    width, height = layout.width + 12, layout.height + 12
    if slide is None:
        return width, height
    ratio = slides.RATIOS[slide]
    if width / height > ratio:
        height = width / ratio
    else:
        width = height * ratio
    return width, height


def _frame_canvas(
    layout: Layout, size: tuple[float, float], slide: str | None, dpi: int | None
) -> dict[str, str]:
    """Resolution and padding of a frame: 1920 px wide and padded to the slide's shape, or as given."""
    if slide is None:
        return {"dpi": str(dpi or 96)}
    width, height = size
    pad = f"{(width - layout.width) / 2 / 72:.4f},{(height - layout.height) / 2 / 72:.4f}"
    return {"pad": pad, "dpi": f"{dpi if dpi is not None else slides.SLIDE[0] / (width / 72):.3f}"}


def place_caption(layout: Layout, captions: list[list[str]]) -> None:
    """Wrap every caption to the graph's width and reserve a strip above the graph for it."""
    chars = max(40, int(layout.width / 8.2))  # about 8 points per character at 15 points
    for k, caption in enumerate(captions):
        captions[k] = [line for text in caption for line in textwrap.wrap(text, chars)]
    lines = max(len(c) for c in captions)
    height = 20.0 * lines + 12
    y = layout.height + 8 + height / 2
    layout.nodes["caption"] = {
        "pos": f"{layout.width / 2:.2f},{y:.2f}!",
        "width": f"{layout.width / 72:.4f}",
        "height": f"{height / 72:.4f}",
    }
    layout.height += 8 + height


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, read from its header (bytes 16–24), without Pillow."""
    header = path.read_bytes()[:24]
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _same_size(paths: list[Path]) -> None:
    """Pad every frame onto a white canvas of the largest frame's size.

    The pinned layout already makes them agree; this guarantees it for the
    animation, and needs Pillow only in the case it has work to do.
    """
    sizes = [png_size(path) for path in paths]
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    if all(size == (width, height) for size in sizes):
        return
    from PIL import Image

    for path, size in zip(paths, sizes):
        if size != (width, height):
            with Image.open(path) as image:
                canvas = Image.new("RGB", (width, height), "white")
                canvas.paste(image.convert("RGB"), (0, 0))
            canvas.save(path)  # in backward_frames' private folder


def _write_gif(paths: list[Path], gif_path: Path, delays: list[int]) -> None:
    """An animated GIF of the frames, looping, the last frame held three times as long."""
    from PIL import Image

    frames = [Image.open(path).convert("RGB") for path in paths]
    durations = [*delays[:-1], 3 * delays[-1]]
    frames[0].save(  # in backward_frames' private folder
        gif_path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True
    )
    for frame in frames:
        frame.close()
