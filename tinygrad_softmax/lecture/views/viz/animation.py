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

from .... import engine
from ....tensor import Tensor
from ... import extras, outputs
from .. import dot, slides
from ..graph import graph_order, loss_steps, tensor_labels
from .drawing import Cluster, find_clusters
from .frames import CAPTION_PT, Frame, Layout, View, frame_captions, frame_dot
from .rendering import MAX_SLIDES, GraphvizNotFoundError

__all__ = [
    "READING_MS",
    "caption_delays",
    "backward_frames",
    "FramesPlan",
    "View",
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
                root, order, steps, k, rankdir, plan.layouts[plan.part_of[k]], caption, view=plan.view_of(k)
            )
            frame.attr(**plan.canvases[plan.part_of[k]])
            made.append(private / name)
            made[-1].write_bytes(dot.pipe(frame.source, "png", "neato", neato_no_op=2))  # private folder
        _same_size(made, slides.SLIDE if slide is not None and dpi is None else None)
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
    """How :func:`backward_frames` draws: the views chosen, the pinned layouts, captions and canvases.

    Each frame shows one layout (``part_of``), drawn in that layout's view. Focus and
    context: while the walk is inside the cross-entropy, its steps are drawn node by
    node and what comes before it is one box (``Z = W X + b``); once the walk reaches
    the logits, the reverse. A graph too big for one slide is also cut into parts
    (``slides.split``), each part with its own layout.
    """

    order: list[Tensor]
    views: list[View]  # one per layout
    layouts: list[Layout]
    part_of: list[int]  # the layout each frame shows
    captions: list[list[str]]
    canvases: list[dict[str, str]]  # each layout's pad and dpi attributes
    sizes: list[tuple[float, float]]  # each layout's canvas, in points
    font_pt: float  # the smallest text drawn

    @property
    def layout(self) -> Layout:
        """The first layout (the only one when the graph is drawn one way, not cut)."""
        return self.layouts[0]

    @property
    def canvas(self) -> dict[str, str]:
        return self.canvases[0]

    @property
    def size_pt(self) -> tuple[float, float]:
        """The largest canvas, in points."""
        return max(w for w, _ in self.sizes), max(h for _, h in self.sizes)

    @property
    def text_px(self) -> float:
        """How tall the smallest text is when a frame fills the 1920×1080 slide (the worst frame)."""
        return min(self.font_pt * min(slides.SLIDE[0] / w, slides.SLIDE[1] / h) for w, h in self.sizes)

    def view_of(self, k: int) -> View:
        """How frame ``k`` draws the graph."""
        return self.views[self.part_of[k]]


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
    """The mildest drawing of the frames that meets the slide rule, laid out once per view.

    Given a cluster (``{"cross_entropy": (loss, [Z])}``) and a slide: focus and context.
    The steps inside the cluster are drawn with the cluster open, node by node, and
    everything that makes ``Z`` as one box named by its formula (``Z = W X + b``);
    the steps from ``Z`` back are drawn with the cluster as one box. Each of the two
    views is the first of these that meets the rule: values and gradients written,
    then gradients only; each as asked, then compact; then cut into 2, 3, ...
    ``MAX_SLIDES`` parts, each frame showing the part where its step is. An option that
    cannot take effect is refused: ``collapse`` (the cluster is open while the walk is
    in it), ``compact`` when the frames are compact anyway.

    Without a cluster, tried in order: as asked, then compact. With ``slide=None``,
    the whole graph in every frame, exactly as asked.
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
    every = list(range(len(steps)))
    if slide is None:
        return _fitted(
            root, order, steps, every, rankdir, None, dpi, [View(compact, cluster if collapse else None)]
        )
    context = _context(order, clusters, cluster)
    if context is None or cluster is None:
        shut = cluster if collapse else None
        tries = [
            View(compact, shut),
            View(True, shut),
            *([View(compact, cluster), View(True, cluster)] * bool(cluster)),
        ]
        return _fitted(root, order, steps, every, rankdir, slide, dpi, tries)
    if collapse:
        raise ValueError(
            f"backward_frames: collapse=True cannot take effect on a slide: the frames draw {cluster.name} "
            "as one box while the walk is outside it, and open it while the walk is inside it, so that "
            "each of its steps is seen (slide=None draws every frame as asked)"
        )
    if compact and all(
        view.compact
        for view in _focus(root, order, steps, rankdir, slide, dpi, False, cluster, context).views
    ):
        raise ValueError(
            "backward_frames: compact=True cannot take effect: the frames are drawn compact anyway to fit "
            "the slide (slide=None draws every frame as asked)"
        )
    return _focus(root, order, steps, rankdir, slide, dpi, compact, cluster, context)


def _focus(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    slide: str,
    dpi: int | None,
    compact: bool,
    cluster: Cluster,
    context: Cluster,
) -> FramesPlan:
    """The two views of focus and context, each fitted to the slide, as one plan."""
    inside = set(cluster.members)
    groups = [
        ([k for k, s in enumerate(steps) if s.node in inside], context),
        ([k for k, s in enumerate(steps) if s.node not in inside], cluster),
    ]
    plans = []
    for ks, box in groups:
        if ks:
            tries = [View(fold, box, values) for values in (True, False) for fold in (compact, True)]
            plans.append((ks, _fitted(root, order, steps, ks, rankdir, slide, dpi, tries, grid=True)))
    merged = FramesPlan(order, [], [], [0] * len(steps), [[] for _ in steps], [], [], CAPTION_PT)
    for ks, plan in plans:
        offset = len(merged.layouts)
        for i, k in enumerate(ks):
            merged.part_of[k] = offset + plan.part_of[i]
            merged.captions[k] = plan.captions[i]
        merged.views += plan.views
        merged.layouts += plan.layouts
        merged.canvases += plan.canvases
        merged.sizes += plan.sizes
        merged.font_pt = min(merged.font_pt, plan.font_pt)
    return merged


def _context(
    order: list[Tensor],
    clusters: Mapping[str, tuple[Tensor, Sequence[Tensor]]] | None,
    cluster: Cluster | None,
) -> Cluster | None:
    """What comes before the cluster, as one cluster named by its formula: ``Z = W X + b``.

    None unless the cluster has one input made by ops (the logits).
    """
    if cluster is None or not clusters:
        return None
    ((_, inputs),) = clusters.values()
    if len(inputs) != 1 or not inputs[0].parents:
        return None
    logits = inputs[0]
    members = set(graph_order(logits))
    if members & set(cluster.members):
        return None
    labels = tensor_labels(order[-1])
    formula = _formula(logits, labels, top=True)
    name = f"{labels[logits]} = {formula}" if len(formula) <= 40 else f"what makes {labels[logits]}"
    return Cluster(name, logits, [t for t in order if t in members])


_INFIX = {"add": " + ", "sub": " − ", "mul": " · ", "div": " / ", "matmul": " "}


def _formula(t: Tensor, labels: dict[Tensor, str], top: bool = False) -> str:
    """``t`` written out down to the leaves: ``W X + b``, ``W2 relu(W1 X + b1) + b2``."""
    if not t.parents:
        return labels[t]
    args = [_formula(p, labels, top=t.op not in _INFIX) for p in t.parents]  # f(a + b) needs no more brackets
    if t.op in _INFIX and len(args) == 2:
        if t.op != "add" and t.op != "sub":  # a product of sums keeps its brackets
            args = [f"({a})" if (" + " in a or " − " in a) and not a.startswith("relu(") else a for a in args]
        text = _INFIX[t.op].join(args)
        return text if top or t.op in ("matmul", "mul", "div") else f"({text})"
    return f"{t.op}({', '.join(args)})"


def _fitted(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    ks: list[int],
    rankdir: str,
    slide: str | None,
    dpi: int | None,
    tries: list[View],
    grid: bool = False,
) -> FramesPlan:
    """The frames of steps ``ks``: the first view of ``tries`` that meets the slide rule (``grid``: on
    a layout of our own first, :func:`_grid_plan`), else the last one cut into 2, 3, ... ``MAX_SLIDES``
    parts; the first that meets it is kept, else the last."""
    tries = [view for i, view in enumerate(tries) if view not in tries[:i]]
    cuts = [(tries[-1], parts) for parts in range(2, MAX_SLIDES + 1)] if slide is not None else []
    plan = None
    if grid and slide is not None:
        for view in tries:
            plan = _grid_plan(root, order, steps, ks, rankdir, slide, dpi, view)
            if plan.text_px >= slides.MIN_TEXT_PX:
                return plan
    for view, parts in [*((view, 1) for view in tries), *cuts]:
        plan = _plan_frames(root, order, steps, ks, rankdir, slide, dpi, view, parts)
        if plan.text_px >= slides.MIN_TEXT_PX:
            break
    assert plan is not None
    return plan


_GAP = (24.0, 30.0)  # points between the columns of a grid layout (room for an arrow), and between its rows


def _grid_plan(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    ks: list[int],
    rankdir: str,
    slide: str,
    dpi: int | None,
    view: View,
) -> FramesPlan:
    """The frames of steps ``ks`` on one layout of our own: the nodes in forward order, left to right,
    wrapped onto rows like lines of text (each run of leaves stacked in one column), the arrows routed
    by ``neato``. The width of a row is the one that gives the largest text on the slide."""
    full = frame_dot(root, order, steps, None, rankdir, view=view)
    font = min(slides.min_font_pt(full.source), CAPTION_PT)
    sized = Layout.from_json(dot.pipe(full.source, "json"))
    frame = Frame(root, order, steps, None, view.compact, view.collapsed, view.values)
    columns = _columns(frame, sized)
    every = frame_captions(root, steps, tensor_labels(root))
    best: tuple[float, Layout, list[list[str]]] | None = None
    total = sum(w for w, _, _ in columns) + _GAP[0] * (len(columns) - 1)
    widest = max(w for w, _, _ in columns)
    for width in sorted({widest + (total - widest) * i / 40 for i in range(41)}):
        layout = _grid_layout(columns, sized, width)
        captions = [list(every[k]) for k in ks]
        place_caption(layout, captions)
        size = _frame_points(layout, slide)
        scale = min(slides.SLIDE[0] / size[0], slides.SLIDE[1] / size[1])
        if best is None or scale > best[0]:
            best = (scale, layout, captions)
    assert best is not None
    _, layout, captions = best
    size = _drawn_size(root, order, steps, rankdir, layout, captions, view, slide)
    canvas = _frame_canvas(layout, size, slide, dpi)
    return FramesPlan(order, [view], [layout], [0] * len(ks), captions, [canvas], [size], font)


def _columns(frame: Frame, sized: Layout) -> list[tuple[float, float, list[str]]]:
    """The drawn nodes in forward order as columns (width, height in points, node names): a run of leaves
    (the collapsed box among them) shares a column, every other node has its own."""
    names: list[str] = []
    leaves: set[str] = set()
    for t in frame.order:
        for name in ([frame.op_node(t)] if t.grad_fn is not None else []) + [frame.node_of(t)]:
            if name in sized.nodes and name not in names:
                names.append(name)
                if not t.parents and name == frame.node_of(t):
                    leaves.add(name)  # a leaf, or the box of what comes before the focus
    columns: list[tuple[float, float, list[str]]] = []
    for name in names:
        w, h = (float(sized.nodes[name][key]) * 72 for key in ("width", "height"))
        if columns and name in leaves and all(n in leaves for n in columns[-1][2]):
            cw, ch, members = columns[-1]
            columns[-1] = (max(cw, w), ch + _GAP[1] / 2 + h, [*members, name])
        else:
            columns.append((w, h, [name]))
    return columns


def _grid_layout(columns: list[tuple[float, float, list[str]]], sized: Layout, width: float) -> Layout:
    """The columns placed left to right, a new row when the next would pass ``width`` points."""
    rows: list[list[tuple[float, float, list[str]]]] = [[]]
    used = 0.0
    for column in columns:
        if rows[-1] and used + _GAP[0] + column[0] > width + 0.5:
            rows.append([])
            used = 0.0
        used += (_GAP[0] if rows[-1] else 0.0) + column[0]
        rows[-1].append(column)
    heights = [max(h for _, h, _ in row) for row in rows]
    margin = 3.0  # room for the thick border of the node being drawn
    widest = max(sum(w for w, _, _ in row) + _GAP[0] * (len(row) - 1) for row in rows)
    height = sum(heights) + _GAP[1] * (len(rows) - 1)
    nodes: dict[str, dict[str, str]] = {}
    top = height + margin
    for row, row_height in zip(rows, heights):
        x = margin
        middle = top - row_height / 2
        for w, h, members in row:
            y = middle + h / 2  # the column's top, its nodes stacked downwards
            for name in members:
                nh = float(sized.nodes[name]["height"]) * 72
                nodes[name] = {**sized.nodes[name], "pos": f"{x + w / 2:.2f},{y - nh / 2:.2f}!"}
                y -= nh + _GAP[1] / 2
            x += w + _GAP[0]
        top -= row_height + _GAP[1]
    return Layout(nodes, {}, widest + 2 * margin, height + 2 * margin)


def _plan_frames(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    ks: list[int],
    rankdir: str,
    slide: str | None,
    dpi: int | None,
    view: View,
    parts: int,
) -> FramesPlan:
    """The frames of steps ``ks`` drawn one way, cut into ``parts`` parts, each laid out on its best rows.

    The plan's ``part_of`` and ``captions`` follow ``ks``.
    """
    full = frame_dot(root, order, steps, None, rankdir, view=view)
    font = min(slides.min_font_pt(full.source), CAPTION_PT)
    pieces = slides.split_nodes(full.source, parts)
    where = Frame(root, order, steps, None, view.compact, view.collapsed)
    part_of = [
        next(p for p, (own, _) in enumerate(pieces) if where.node_of(steps[k].node) in own) for k in ks
    ]
    every = frame_captions(root, steps, tensor_labels(root))
    captions = [every[k] for k in ks]
    if len(pieces) > 1:  # the picture changes with the part: say which part of the graph this is
        for i, caption in enumerate(captions):
            caption[0] = caption[0].replace(
                ":", f" (part {part_of[i] + 1} of {len(pieces)} of the graph):", 1
            )
    layouts: list[Layout] = []
    sizes: list[tuple[float, float]] = []
    for p, source in enumerate(slides.split(full.source, parts)):
        mine = [i for i in range(len(ks)) if part_of[i] == p]
        best: tuple[tuple[bool, float], Layout, list[list[str]], tuple[float, float]] | None = None
        # The layout every frame of the part is pinned to: wrapped onto rows like `graph` for a slide,
        # unless wide; the number of rows chosen with the caption strip counted, as the frame shows it.
        for rows in range(1, slides.MAX_ROWS + 1) if slide is not None else [1]:
            wrapped, in_order = slides.wrapped_rows(source, rows)
            layout = Layout.from_json(dot.pipe(wrapped, "json"))
            tall = layout.width / layout.height < slides.RATIOS.get(slide or "", 0)
            part_captions = [list(captions[i]) for i in mine]
            place_caption(layout, part_captions)
            size = _frame_points(layout, slide)
            score = (in_order, min(slides.SLIDE[0] / size[0], slides.SLIDE[1] / size[1]))
            if best is None or score > best[0]:
                best = (score, layout, part_captions, size)
            if tall:  # already taller than the slide: more rows only shrink the text
                break
        assert best is not None
        _, layout, part_captions, size = best
        for i, caption in zip(mine, part_captions):
            captions[i] = caption
        if slide is not None:
            size = _drawn_size(root, order, steps, rankdir, layout, part_captions, view, slide)
        layouts.append(layout)
        sizes.append(size)
    size = (max(w for w, _ in sizes), max(h for _, h in sizes))  # each at the slide's ratio, so this is too
    canvases = [_frame_canvas(layout, size, slide, dpi) for layout in layouts]
    return FramesPlan(
        order, [view] * len(layouts), layouts, part_of, captions, canvases, [size] * len(layouts), font
    )


def _drawn_size(
    root: Tensor,
    order: list[Tensor],
    steps: list[engine.Step],
    rankdir: str,
    layout: Layout,
    captions: list[list[str]],
    view: View,
    slide: str,
) -> tuple[float, float]:
    """The canvas of a frame as ``neato`` draws it at ``layout``, padded to the slide's shape.

    An arrow drawn at its place can reach past the layout's box (a long arrow back to an
    earlier row); the box is grown to what is drawn, so that the padding gives the canvas.
    """
    frame = frame_dot(root, order, steps, None, rankdir, layout, captions[0] if captions else None, view=view)
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
    lines = max((len(c) for c in captions), default=1)
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


def _same_size(paths: list[Path], slide: tuple[int, int] | None = None) -> None:
    """Pad every frame, centred, onto a white canvas: the slide's size, or the largest frame's.

    The pinned layout already makes the frames agree, and ``fit`` sizes them to
    the slide to within Graphviz's rounding of the canvas to whole points (a
    frame drawn 1920×1074); this makes each exactly the slide (or, without a
    slide, the largest frame), and needs Pillow only in the case it has work to
    do (without it, the GIF is skipped anyway and the frames are left as drawn).
    """
    sizes = [png_size(path) for path in paths]
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    if slide is not None:
        width, height = max(width, slide[0]), max(height, slide[1])
    if all(size == (width, height) for size in sizes):
        return
    try:
        from PIL import Image
    except ImportError:  # without Pillow there is no GIF to make; each frame stays as drawn
        return

    for path, (w, h) in zip(paths, sizes):
        if (w, h) != (width, height):
            with Image.open(path) as image:
                canvas = Image.new("RGB", (width, height), "white")
                canvas.paste(image.convert("RGB"), ((width - w) // 2, (height - h) // 2))
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
