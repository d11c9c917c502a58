"""Backprop you can watch: one frame per backward step, all the same size, and the GIF."""

from __future__ import annotations

import html
import itertools
import os
import re

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax import Tensor, engine, viz
from tinygrad_softmax import functional as F
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import build_classifier
from tinygrad_softmax.lecture.lessons.hidden_layer import build_two_layer_net


def walk_steps(root: Tensor) -> list[engine.Step]:
    return list(engine.walk(root, np.ones_like(root.data)))


# The frames and the GIF are drawn once per worker: their tests share one worker.
COLUMN_FRAMES = pytest.mark.xdist_group("column-frames")


@pytest.fixture(scope="module")
def column_frames(tmp_path_factory):
    model = build_classifier()
    out = tmp_path_factory.mktemp("frames")
    grads = {name: getattr(model, name).grad.copy() for name in ("W", "b", "Z")}
    frames = viz.backward_frames(model.loss, out, gif=True, delay_ms=400, dpi=60)
    return model, out, frames, grads


@COLUMN_FRAMES
def test_the_tests_of_a_group_share_one_worker(request):
    """pytest-xdist's --dist loadgroup marks a grouped test's id with its group (where it does not, as
    under pytest 9.2, the group's tests are spread over the workers and each makes the fixture)."""
    if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith("@column-frames"), request.node.nodeid


@COLUMN_FRAMES
def test_one_frame_per_backward_step(column_frames):
    model, out, frames, _ = column_frames
    assert len(frames) == len(walk_steps(model.loss)) == 12
    assert [p.name for p in frames] == [f"frame_{k:03d}.png" for k in range(1, 13)]
    assert sorted(out.glob("frame_*.png")) == frames


@COLUMN_FRAMES
def test_frames_are_real_images_of_identical_size(column_frames):
    _, _, frames, _ = column_frames
    sizes = set()
    for path in frames:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            sizes.add(image.size)
    assert len(sizes) == 1
    width, height = sizes.pop()
    assert width > 500 and 1.5 <= width / height <= 2.1  # a slide's shape, at 60 dpi


@COLUMN_FRAMES
def test_consecutive_frames_differ(column_frames):
    _, _, frames, _ = column_frames
    pixels = [np.asarray(Image.open(path).convert("RGB")) for path in frames]
    for a, b in itertools.pairwise(pixels):
        assert np.any(a != b)


@COLUMN_FRAMES
def test_the_gif_has_one_frame_per_step_with_the_delay(column_frames):
    _, out, frames, _ = column_frames
    with Image.open(out / "frames.gif") as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(frames)
        assert gif.size == Image.open(frames[0]).size
        assert gif.info["duration"] == 400
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == 1200  # the last frame is held longer


@COLUMN_FRAMES
def test_frames_change_no_grad(column_frames):
    model, _, _, grads = column_frames
    for name, grad in grads.items():
        np.testing.assert_array_equal(getattr(model, name).grad, grad)


def test_every_frame_pins_the_same_layout():
    model = build_classifier("row")
    steps = walk_steps(model.loss)
    order = viz.graph_order(model.loss)
    full = viz.frames.frame_dot(model.loss, order, steps, None, "LR")
    layout = viz.frames.Layout.from_json(full.pipe(format="json"))
    captions = viz.frames.frame_captions(model.loss, steps, viz.tensor_labels(model.loss))
    viz.animation.place_caption(layout, captions)
    nodes, edges = [], []
    for k, caption in enumerate(captions):
        source = viz.frames.frame_dot(model.loss, order, steps, k, "LR", layout, caption).source
        nodes.append(re.findall(r'^\s*(\w+) \[.*pos="([^"]+)"', source, re.MULTILINE))
        edges.append(re.findall(r'^\s*(\w+ -> \w+) \[.*pos="([^"]+)"', source, re.MULTILINE))
    assert all(n == nodes[0] for n in nodes) and all(e == edges[0] for e in edges)
    ops_count = sum(1 for t in order if t.parents)
    assert len(nodes[0]) == len(order) + ops_count + 1  # tensors, ops, the caption
    assert len(edges[0]) == sum(len(t.parents) for t in order) + ops_count


def test_the_current_node_shows_its_gradient_and_later_ones_are_hidden():
    model = build_classifier()
    steps = walk_steps(model.loss)
    order = viz.graph_order(model.loss)
    z_step = next(k for k, s in enumerate(steps) if s.node is model.Z)
    source = viz.frames.frame_dot(model.loss, order, steps, z_step, "LR").source
    z_line = next(line for line in source.splitlines() if "<B>Z</B>" in line)
    assert viz.CURRENT in z_line and f"{steps[z_step].grad[0, 0]:.2f}" in z_line
    w_line = next(line for line in source.splitlines() if "<B>W</B>" in line)
    assert viz.CURRENT not in w_line
    # W's gradient is not known yet: written in the fill colour, so it cannot be read.
    assert 'COLOR="#f7f7f7">∂loss/∂W' in w_line


def test_frames_in_row_layout_top_to_bottom_and_old_frames_replaced(tmp_path):
    stale = tmp_path / "frame_099.png"
    stale.write_bytes(b"old")
    model = build_classifier("row")
    frames = viz.backward_frames(model.loss, tmp_path, rankdir="TB", dpi=50, slide=None)  # as drawn
    assert len(frames) == len(walk_steps(model.loss))
    assert not stale.exists()
    assert len({viz.png_size(p) for p in frames}) == 1
    width, height = viz.png_size(frames[0])
    assert height > width  # top to bottom
    assert not (tmp_path / "frames.gif").exists()


def test_frames_of_a_small_graph(tmp_path):
    x = Tensor([1.0, -2.0], requires_grad=True, name="x")
    loss = (x * x).sum()
    frames = viz.backward_frames(loss, tmp_path, dpi=40)
    assert len(frames) == 3  # sum, mul, x


def test_bad_roots_are_refused(tmp_path):
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        viz.backward_frames(x * 2, tmp_path)
    with pytest.raises(ValueError, match="does not require grad"):
        viz.backward_frames(Tensor(1.0), tmp_path)
    with pytest.raises(ValueError, match="delay_ms"):
        viz.backward_frames((x * 2).sum(), tmp_path, delay_ms=0)


def test_without_graphviz_the_frames_say_how_to_install(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(viz.GraphvizNotFoundError, match="skipped the backward frames: dot is not installed"):
        viz.backward_frames(build_classifier().loss, tmp_path / "frames")
    assert not (tmp_path / "frames").exists()  # no DOT file that would draw something else


def test_cli_animate_writes_frames_and_a_gif(tmp_path, capsys):
    out = tmp_path / "anim"
    assert main(["animate", "--out", str(out), "--gif", "--delay-ms", "300", "--dpi", "40"]) == 0
    printed = capsys.readouterr().out
    assert "12 frames" in printed and "frames.gif" in printed
    with Image.open(out / "frames.gif") as gif:
        assert gif.n_frames == 12 and gif.info["duration"] == 300


# ---------------------------------------------------------------- focus and context


def _drawn_frames(root, clusters):
    """Each frame's DOT text as backward_frames draws it, and its caption."""
    plan = viz.frames_plan(root, clusters=clusters)
    steps = viz.loss_steps(root, "test")
    sources = [
        viz.frames.frame_dot(
            root,
            plan.order,
            steps,
            k,
            "LR",
            plan.layouts[plan.part_of[k]],
            plan.captions[k],
            view=plan.view_of(k),
        ).source
        for k in range(len(steps))
    ]
    return plan, steps, sources


def _drawn_names(source: str) -> set[str]:
    """The tensor names a frame draws: a record's bold title, or the name under a compact op."""
    text = html.unescape(source)
    return set(re.findall(r"<B>([^<]+)</B>", text)) | set(re.findall(r">([^<>]+?) · [^<]*</FONT>", text))


def _outside_caption(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("caption "))


@pytest.mark.parametrize("model_name", ["column", "row", "mlp"])
def test_every_node_a_caption_names_is_drawn_in_its_frame(model_name):
    if model_name == "mlp":
        net = build_two_layer_net("column")
        root, clusters = net.loss, {"cross_entropy": (net.loss, [net.Z2])}
    else:
        model = build_classifier(model_name)
        root, clusters = model.loss, {"cross_entropy": (model.loss, [model.Z])}
    plan, steps, sources = _drawn_frames(root, clusters)
    labels = viz.tensor_labels(root)
    for k, (step, source) in enumerate(zip(steps, sources)):
        named = {labels[step.node], *(labels[p] for p in step.node.parents)}
        caption = " ".join(plan.captions[k])
        # A caption names a node by the symbol its name defines: S for the node drawn as "S = Σ exp".
        assert all(viz.frames.symbol(name) in caption for name in named), (caption, named)
        missing = named - _drawn_names(_outside_caption(source))
        assert not missing, f"frame {k + 1} ({caption[:60]}...) does not draw {missing}"
        if model_name != "mlp":  # the classifier's frames also draw the loss the caption's ∂loss/∂ names
            assert labels[root] in _drawn_names(_outside_caption(source))


@pytest.mark.parametrize("model_name", ["column", "mlp"])
def test_no_two_consecutive_frames_are_the_same_outside_the_caption(model_name):
    if model_name == "mlp":
        net = build_two_layer_net("column")
        root, clusters = net.loss, {"cross_entropy": (net.loss, [net.Z2])}
    else:
        model = build_classifier(model_name)
        root, clusters = model.loss, {"cross_entropy": (model.loss, [model.Z])}
    _, _, sources = _drawn_frames(root, clusters)
    drawn = [_outside_caption(source) for source in sources]
    for k in range(1, len(drawn)):
        assert drawn[k] != drawn[k - 1], f"frames {k} and {k + 1} differ only in their caption"


def test_inside_the_cross_entropy_its_steps_are_drawn_with_values_and_the_linear_part_is_one_box():
    model = build_classifier()
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    _, steps, sources = _drawn_frames(model.loss, clusters)
    labels = viz.tensor_labels(model.loss)
    for step, source in zip(steps, sources):
        names = _drawn_names(_outside_caption(source))
        if labels[step.node] in F.STEP_NAMES or step.node is model.loss:
            assert "Z = W X + b" in names and "W" not in names and "cross_entropy" not in names
            assert set(F.STEP_NAMES[:-2]) <= names  # every step of the softmax, by its derivation name
            assert viz.frames.frame_numbers(step.node.data)[0] in source  # values, not only gradients
        else:
            assert "cross_entropy" in names and {"W", "X", "b", "Z"} <= names


def test_the_current_step_differs_in_line_width_not_only_in_colour():
    model = build_classifier()
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    _, steps, sources = _drawn_frames(model.loss, clusters)
    z_step = next(k for k, s in enumerate(steps) if s.node is model.Z)
    z_line = next(line for line in sources[z_step].splitlines() if "<B>Z</B>" in line)
    assert 'BORDER="5"' in z_line
    later = next(line for line in sources[z_step - 1].splitlines() if "<B>Z</B>" in line)
    assert 'BORDER="5"' not in later
    assert "style=dashed" in sources[0]  # arrows the gradient has not travelled yet


def test_cli_animate_refuses_options_that_cannot_take_effect(tmp_path, capsys):
    assert main(["animate", "--out", str(tmp_path / "a"), "--collapse"]) != 0
    err = capsys.readouterr().err
    assert "--collapse" in err or "collapse" in err
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("*.png"))


def test_with_one_sample_the_frame_at_the_logits_shows_the_blackboards_p_minus_y():
    model = build_classifier(N=1, labels=[2])
    plan = viz.frames_plan(model.loss, clusters={"cross_entropy": (model.loss, [model.Z])})
    steps = viz.loss_steps(model.loss, "test")
    z_step = next(k for k, s in enumerate(steps) if s.node is model.Z)
    caption = " ".join(plan.captions[z_step]).replace("\u00a0", " ")
    p = (
        np.exp(model.Z.data[:, 0] - model.Z.data.max())
        / np.exp(model.Z.data[:, 0] - model.Z.data.max()).sum()
    )
    dz = ", ".join(f"{v:.3f}" for v in p - np.eye(3)[2])
    assert f"dz = p − y = [{dz}]" in caption and "y = [0, 0, 1]" in caption
    assert all("N = 1" not in " ".join(c) for k, c in enumerate(plan.captions) if k != z_step)
    five = build_classifier()
    plan = viz.frames_plan(five.loss, clusters={"cross_entropy": (five.loss, [five.Z])})
    assert not any("N = 1" in " ".join(c) for c in plan.captions)


def test_cli_sizes_for_the_pictures(tmp_path, capsys):
    assert (
        main(["animate", "--out", str(tmp_path / "a"), "--samples", "1", "--labels", "2", "--dpi", "30"]) == 0
    )
    assert len(list((tmp_path / "a").glob("frame_*.png"))) == 12
    assert main(["explain", "--samples", "2", "--classes", "4", "--features", "3", "--random-seed", "7"]) == 0
    assert "4×2" in capsys.readouterr().out
    assert main(["explain", "--samples", "2", "--labels", "0,3"]) == 2
    assert "--labels: class 3 is out of range for --classes 3" in capsys.readouterr().err
    assert main(["explain", "--samples", "3", "--labels", "0,1"]) == 2
    assert "2 labels for --samples 3" in capsys.readouterr().err
    assert main(["explain", "--model", "mlp", "--samples", "3"]) == 2
    assert "--samples: the size options set the linear softmax classifier" in capsys.readouterr().err
