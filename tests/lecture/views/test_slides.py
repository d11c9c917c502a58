"""Slide-fit: every picture the demo writes has a slide's shape, and its graphs and plots have text
at least 24 px tall when scaled to fill a 1920×1080 slide (the rule in lecture/views/slides.py)."""

import html
import re
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.lessons.hidden_layer import build_two_layer_net
from tinygrad_softmax.lecture.training.classifier import build_classifier
from tinygrad_softmax.lecture.views import slides, viz


@pytest.fixture
def demo(demo_run):
    """The folder of the shared demo run (conftest.py)."""
    return demo_run.out


def test_every_picture_the_demo_writes_has_a_slide_shape(demo):
    pictures = sorted(demo.rglob("*.png"))
    assert len(pictures) >= 20
    low, high = slides.BANDS["16:9"]
    shapes = {p.relative_to(demo).as_posix(): viz.png_size(p) for p in pictures}
    outside = {name: (w, h) for name, (w, h) in shapes.items() if not low <= w / h <= high}
    assert outside == {}


@pytest.mark.parametrize(("name", "grads"), [("graph.png", False), ("graph-grads.png", True)])
def test_the_demo_graphs_keep_their_smallest_text_24_px_on_the_slide(demo, name, grads):
    model = build_classifier("column")
    options = {"clusters": {"cross_entropy": (model.loss, [model.Z])}, "show_grads": grads}
    source = viz.rendering.slide_source(model.loss, options, "16:9", None)  # the DOT the demo rendered
    dpi = float(re.findall(r"dpi=([\d.]+)", source)[-1])
    font = slides.min_font_pt(source)
    size = viz.png_size(demo / name)
    assert font >= 10 and slides.fits(size, font, dpi), (size, font, dpi, slides.text_px(font, dpi, size))


@pytest.mark.parametrize("name", ["iris-loss.png", "digits-loss.png", "digits-weights.png"])
def test_the_training_plots_keep_their_smallest_text_24_px_on_the_slide(demo, name):
    assert matplotlib.rcParams["font.size"] == 10  # tick labels and legends: the smallest text drawn
    with Image.open(demo / name) as image:
        dpi = image.info["dpi"][0]
        assert slides.fits(image.size, 10, dpi), slides.text_px(10, dpi, image.size)


def test_the_wide_drawing_is_what_used_to_be_drawn_and_does_not_fit(tmp_path):
    model = build_classifier("column")
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    wide = viz.render(model.loss, tmp_path / "wide.png", clusters=clusters, slide=None)
    fitted = viz.render(model.loss, tmp_path / "slide.png", clusters=clusters)
    w, h = viz.png_size(wide)
    assert w / h > 5 and not slides.fits((w, h), 10, 96)  # 3000-odd px by 360: unreadable on a slide
    assert viz.png_size(fitted) == slides.SLIDE


def test_wrapping_keeps_every_node_and_edge_and_stacks_the_rows_in_order():
    model = build_classifier("column")
    source = viz.to_dot(model.loss, clusters={"cross_entropy": (model.loss, [model.Z])}).source
    wrapped = slides.wrap_rows(source, 3)

    def nodes(text):
        return sorted(set(re.findall(r"^\t+(t\d+|op\d+) \[", text, re.M)))

    def edges(text):
        return sorted(re.findall(r"^\t+(\w+) -> (\w+)\b(?! \[style=invis)", text, re.M))

    assert nodes(wrapped) == nodes(source) and edges(wrapped) == edges(source)
    assert wrapped.count("cluster_row") == 3 and "cross_entropy, continued" in wrapped
    assert "constraint=false" in wrapped  # the arrows that wrap to the next row
    assert slides.wrap_rows(source, 1) == source


@pytest.mark.parametrize("shape", ["16:9", "4:3"])
def test_the_ratio_option_gives_that_shape(tmp_path, shape):
    model = build_classifier("column")
    path = viz.render(model.loss, tmp_path / "g.png", slide=shape)
    w, h = viz.png_size(path)
    low, high = slides.BANDS[shape]
    assert low <= w / h <= high and w == 1920


def _classifier_clusters(model):
    return {"cross_entropy": (model.loss, [model.Z])}


def _fitted_frame_sources(root, plan, frames):
    """Each frame's DOT source, once its PNG is checked: exactly the slide, its text readable on it."""
    steps = viz.loss_steps(root, "t")
    sources = []
    for k, frame in enumerate(frames):
        dpi = float(plan.canvases[plan.part_of[k]]["dpi"])
        size = viz.png_size(frame)
        assert size == slides.SLIDE, (frame.name, size)  # exactly the slide, not a few rows short
        assert slides.fits(size, plan.font_pt, dpi), (
            frame.name,
            size,
            slides.text_px(plan.font_pt, dpi, size),
        )
        layout, view = plan.layouts[plan.part_of[k]], plan.view_of(k)
        frame_dot = viz.frames.frame_dot(
            root, plan.order, steps, k, "LR", layout, plan.captions[k], view=view
        )
        sources.append(frame_dot.source)
    return sources


def test_the_demo_frames_keep_their_smallest_text_24_px_on_the_slide(demo):
    model = build_classifier("column")
    plan = viz.frames_plan(model.loss, clusters=_classifier_clusters(model))  # what the demo drew
    frames = sorted((demo / "frames").glob("frame_*.png"))
    assert len(frames) == len(plan.captions) == 12
    for source in _fitted_frame_sources(model.loss, plan, frames):
        assert slides.min_font_pt(source) >= plan.font_pt == viz.FRAME_TEXT_PT
    # Focus and context: two views, each on one layout, with values and gradients.
    boxes = [view.collapsed.name for view in plan.views]
    assert boxes == ["Z = W X + b", "cross_entropy"] and all(view.values for view in plan.views)


def test_animate_draws_as_asked_with_wide_and_refuses_what_cannot_take_effect(tmp_path):
    model = build_classifier("column")
    clusters = _classifier_clusters(model)
    wide = viz.frames_plan(model.loss, clusters=clusters, slide=None)
    (view,) = wide.views
    assert not view.compact and view.collapsed is None and wide.text_px < 10  # ~6 px: unreadable on a slide
    asked = viz.frames_plan(model.loss, clusters=clusters, slide=None, compact=True, collapse=True)
    assert asked.views[0].compact and asked.views[0].collapsed is not None
    unclustered = viz.frames_plan(model.loss)  # nothing to collapse: compact, on rows, is the best there is
    assert unclustered.views[0].compact and unclustered.views[0].collapsed is None
    with pytest.raises(ValueError, match="collapse=True needs a cluster"):
        viz.frames_plan(model.loss, collapse=True)
    # On a slide the cluster is opened while the walk is inside it: collapsing it cannot take effect.
    with pytest.raises(ValueError, match="collapse=True cannot take effect"):
        viz.frames_plan(model.loss, clusters=clusters, collapse=True)
    default = viz.frames_plan(model.loss, clusters=clusters)
    if all(view.compact for view in default.views):
        with pytest.raises(ValueError, match="compact=True cannot take effect"):
            viz.frames_plan(model.loss, clusters=clusters, compact=True)
    else:
        compact = viz.frames_plan(model.loss, clusters=clusters, compact=True)
        assert all(view.compact for view in compact.views)
    frames = viz.backward_frames(model.loss, tmp_path / "wide", clusters=clusters, slide=None)
    w, h = viz.png_size(frames[0])
    assert w / h > slides.BANDS["16:9"][1]  # the natural drawing is far wider than a slide


def _text_px(source):
    dpi = float(re.findall(r"dpi=([\d.]+)", source)[-1])
    return slides.text_px(slides.min_font_pt(source), dpi, slides.SLIDE)


def _rules(loss):
    """Every op's local rule, as a label writes it (first line)."""
    ops = [t for t in viz.graph_order(loss) if t.grad_fn is not None]
    return [(t.op, html.escape(viz.look.rule_lines(t.grad_fn.rule)[0])) for t in ops]


@pytest.mark.parametrize(("model_name", "rankdir"), [("linear", "LR"), ("linear", "TB"), ("mlp", "LR")])
def test_the_rules_slides_show_every_ops_rule_at_24_px(tmp_path, model_name, rankdir):
    if model_name == "mlp":
        net = build_two_layer_net("column")
        loss, logits = net.loss, net.Z2
    else:
        model = build_classifier("column")
        loss, logits = model.loss, model.Z
    options = {"clusters": {"cross_entropy": (loss, [logits])}, "show_rules": True, "rankdir": rankdir}
    paths = viz.render_slides(loss, tmp_path / "rules.png", **options)  # as `graph --show-rules` draws it
    sources = viz.rendering.slide_sources(loss, options, "16:9", None)
    assert len(paths) == len(sources) >= 2  # one slide at 24 px would need cross_entropy collapsed
    assert [p.name for p in paths] == [f"rules-{k}.png" for k in range(1, len(paths) + 1)]
    for path, source in zip(paths, sources):
        assert viz.png_size(path) == slides.SLIDE and _text_px(source) >= slides.MIN_TEXT_PX
        assert not re.search(r"^\t+fn\d+ \[", source, re.M)  # nothing collapsed
    every = "".join(sources)
    missing = [(op, rule) for op, rule in _rules(loss) if rule not in every]
    assert missing == []


def test_one_slide_is_one_file_named_as_asked(tmp_path):
    model = build_classifier("column")
    paths = viz.render_slides(model.loss, tmp_path / "g.png", clusters=_classifier_clusters(model))
    assert paths == [tmp_path / "g.png"] and viz.png_size(paths[0]) == slides.SLIDE


def test_the_cli_writes_the_rules_as_slides(tmp_path, capsys):
    assert main(["graph", "--show-rules", "--out", str(tmp_path / "rules.png")]) == 0
    out = capsys.readouterr().out
    assert "2 16:9 slides" in out and "rules-1.png" in out and "rules-2.png" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules-1.png", "rules-2.png"]


def test_split_gives_each_node_one_owner_and_each_edge_one_piece():
    model = build_classifier("column")
    source = viz.to_dot(model.loss, clusters=_classifier_clusters(model), show_rules=True).source
    nodes = [n for n in re.findall(r"^\t+(\w+) \[", source, re.M) if n not in ("graph", "node", "edge")]
    edges = sorted(re.findall(r"^\t+(\w+) -> (\w+)", source, re.M))
    for parts in (2, 3, 4):
        pieces = slides.split_nodes(source, parts)
        owned = [n for own, _ in pieces for n in own]
        assert sorted(owned) == sorted(nodes)  # every node drawn, owned by exactly one piece
        cut = slides.split(source, parts)
        assert sorted(e for piece in cut for e in re.findall(r"^\t+(\w+) -> (\w+)", piece, re.M)) == edges
        for (own, drawn), piece in zip(pieces, cut):
            for tail, head in re.findall(r"^\t+(\w+) -> (\w+)", piece, re.M):
                assert head in own and tail in drawn  # an arrow from an earlier piece starts at its tensor
        assert "continued, continued" not in "".join(cut)


def test_the_rows_of_every_fitted_picture_are_stacked_in_order():
    net = build_two_layer_net("column")
    clusters = {"cross_entropy": (net.loss, [net.Z2])}
    source = viz.to_dot(net.loss, clusters=clusters).source
    for rows in (2, 3, 4, 5):  # asked one way only, dot stacks 2 and 3 rows of this graph out of order
        assert slides.in_row_order(slides.wrap_rows(source, rows)), rows
    model = build_classifier("column")
    for loss, options in [
        (model.loss, {"clusters": _classifier_clusters(model)}),
        (model.loss, {"clusters": _classifier_clusters(model), "show_grads": True}),
        (model.loss, {"clusters": _classifier_clusters(model), "show_rules": True}),
        (net.loss, {"clusters": clusters, "show_rules": True}),
        (net.loss, {"clusters": clusters, "compact": True, "collapse": True}),
    ]:
        for fitted in viz.rendering.slide_sources(loss, options, "16:9", None):
            assert slides.in_row_order(fitted), options


@pytest.mark.parametrize("layout", ["column", "row"])
def test_the_two_layer_net_frames_keep_their_smallest_text_24_px_on_the_slide(tmp_path, layout):
    net = build_two_layer_net(layout)
    clusters = {"cross_entropy": (net.loss, [net.Z2])}
    plan = viz.frames_plan(net.loss, clusters=clusters)  # what `animate --model mlp` draws
    assert plan.text_px >= slides.MIN_TEXT_PX, plan.text_px
    frames = viz.backward_frames(net.loss, tmp_path, clusters=clusters)
    steps = viz.loss_steps(net.loss, "t")
    assert len(frames) == len(steps) == len(plan.part_of) == 17
    for k, source in enumerate(_fitted_frame_sources(net.loss, plan, frames)):
        assert slides.min_font_pt(source) >= plan.font_pt
        assert viz.CURRENT_FILL in source, f"frame {k + 1} does not show the node of its step"
    # Inside the cross-entropy, the net before it is one box named by its formula.
    formula = {"column": "Z2 = W2 relu(W1 X + b1) + b2", "row": "Z2 = relu(X W1 + b1) W2 + b2"}[layout]
    assert plan.view_of(0).collapsed.name == formula


def test_the_docs_pictures_have_the_shape_make_docs_images_asks_for():
    """Each graph picture `make docs-images` draws is in docs/images/ as that line draws it: fitted to
    the slide (1920 px wide, in the 16:9 band) without --wide, at its natural shape with it; and the
    sizes docs/graph.md quotes are those of pictures there."""
    root = Path(__file__).resolve().parents[3]
    lines = re.findall(r"tinygrad_softmax graph --out (docs/images/\S+)(.*)", (root / "Makefile").read_text())
    assert len(lines) >= 5
    low, high = slides.BANDS["16:9"]
    for name, options in lines:
        path = root / name  # a graph cut into slides is NAME-1.png, NAME-2.png, ...
        pictures = [path] if path.exists() else sorted(path.parent.glob(f"{path.stem}-[0-9].png"))
        assert pictures, name
        for picture in pictures:
            with Image.open(picture) as image:
                width, height = image.size
            fitted = width == slides.SLIDE[0] and low <= width / height <= high
            assert fitted != ("--wide" in options.split()), (
                f"{picture.name} is {width}×{height}; make docs-images:{options}"
            )
    sizes = set()
    for picture in (root / "docs" / "images").glob("*.png"):
        with Image.open(picture) as image:
            sizes.add("{}×{}".format(*image.size))
    quoted = re.findall(r"(\d+×\d+) pixels", (root / "docs" / "graph.md").read_text(encoding="utf-8"))
    assert quoted and set(quoted) <= sizes, quoted
