"""The subcommands that show the classifier's graph: graph (one picture), animate (one picture per
backward step), explore (a page to step through in a browser) and explain (the chain-rule ledger)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .options import DPI, add_layout, add_model, add_sizes, add_slide, integer, output_file, output_folder
from .status import report_skipped


@dataclass(frozen=True)
class SmallModel:
    """What graph, animate and explain draw: a loss after backward, its logits and labels."""

    loss: Any
    logits: Any
    labels: Any
    class_axis: int
    what: str


SIZES = {"samples": 5, "classes": 3, "features": 4, "random_seed": 0, "labels": None}  # the defaults


def small_model(args: argparse.Namespace) -> SmallModel:
    """The linear softmax classifier, or with --model mlp the two-layer net, forward and backward run."""
    if getattr(args, "model", "linear") == "mlp":
        asked = [f"--{k.replace('_', '-')}" for k, v in SIZES.items() if getattr(args, k, v) != v]
        if asked:
            raise ValueError(
                f"{' '.join(asked)}: the size options set the linear softmax classifier, not --model mlp"
            )
        from ..lecture.lessons.hidden_layer import build_two_layer_net

        net = build_two_layer_net(args.layout)
        return SmallModel(net.loss, net.Z2, net.labels, net.class_axis, f"{args.layout}-layout two-layer net")
    model = sized_classifier(args)
    return SmallModel(model.loss, model.Z, model.labels, model.class_axis, f"{args.layout}-layout classifier")


def sized_classifier(args: argparse.Namespace) -> Any:
    """The linear softmax classifier of --samples, --classes, --features, --random-seed and --labels."""
    from ..lecture.training.classifier import build_classifier

    N, C = args.samples, args.classes
    if args.labels is not None:
        if len(args.labels) != N:
            raise ValueError(
                f"--labels: {len(args.labels)} labels for --samples {N}; give one class per sample"
            )
        if max(args.labels) >= C:
            raise ValueError(
                f"--labels: class {max(args.labels)} is out of range for --classes {C} (0 to {C - 1})"
            )
    return build_classifier(args.layout, D=args.features, N=N, C=C, seed=args.random_seed, labels=args.labels)


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the classifier's computation graph, forward and backward already run, as PNG, SVG or PDF.

    The ops of cross_entropy sit in a dashed box; --collapse draws them as one node instead.
    --compact draws each unnamed intermediate inside the op that made it.
    --model mlp draws the two-layer net (W1, b1, Z1, H1, W2, b2, Z2) instead.

    By default the picture fits a 16:9 slide (--ratio 4:3 for the older shape): 1920 px wide, the
    chain wrapped onto rows, and drawn compact or collapsed if that is what keeps its smallest text
    at least 24 px tall on the slide. A graph that needs more than one slide at that size (with
    --show-rules: collapsing would hide the rules) is cut into slides, OUT-1.png, OUT-2.png, ...
    --wide draws it at its natural width, exactly as asked.
    """
    from ..lecture.views import viz

    out = Path(args.out).with_suffix("." + args.format) if args.format else Path(args.out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(
            f"cannot write {out.name!r}: the extension {out.suffix or '(none)'!r} is not one of "
            ".png, .svg, .pdf (or give --format png|svg|pdf)"
        )
    model = small_model(args)
    try:
        paths = viz.render_slides(
            model.loss,
            out,
            dpi=args.dpi,
            rankdir=args.rankdir,
            show_values=args.show_values,
            show_grads=args.show_grads,
            show_rules=args.show_rules,
            clusters={"cross_entropy": (model.loss, [model.logits])},
            collapse=args.collapse,
            compact=args.compact,
            slide=None if args.wide else args.ratio,
        )
    except viz.GraphvizNotFoundError as missing:
        return report_skipped([str(missing)])
    if len(paths) > 1:
        print(
            f"graph of the {model.what} written as {len(paths)} {args.ratio} slides "
            f"({', '.join(str(p) for p in paths)}): on one slide its smallest text would be under 24 px"
        )
    else:
        print(
            f"graph of the {model.what} written to {paths[0]}"
            + ("" if args.wide else f" (fits a {args.ratio} slide)")
        )
    return 0


def graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=output_file(),
        default="graph.png",
        help="output file; its extension picks the format",
    )
    add_layout(parser)
    add_sizes(parser)
    add_model(parser)
    parser.add_argument("--format", choices=["png", "svg", "pdf"], help="override the extension of --out")
    parser.add_argument("--show-values", action="store_true", help="write each tensor's values on it")
    parser.add_argument("--show-grads", action="store_true", help="write each tensor's .grad on it")
    parser.add_argument("--show-rules", action="store_true", help="write each op's local derivative on it")
    parser.add_argument("--collapse", action="store_true", help="draw cross_entropy as a single node")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="draw each unnamed intermediate (t6, t7, ...) inside the op that made it: half the ranks",
    )
    parser.add_argument("--rankdir", choices=["LR", "TB"], default="LR", help="LR: left to right (default)")
    parser.add_argument("--dpi", type=DPI, help="resolution of a PNG (24-600; default: 1920 px wide)")
    add_slide(parser)


def cmd_animate(args: argparse.Namespace) -> int:
    """Watch backprop: one PNG per step of the classifier's backward walk, and with --gif an
    animated frames.gif. The node being processed is orange with the gradient that just reached it.
    --model mlp steps through the two-layer net's backward walk instead.

    By default the frames fit a 16:9 slide (--ratio 4:3 for the older shape), with their smallest text
    at least 24 px tall: focus and context. While the walk is inside cross_entropy, its steps are drawn
    node by node with their values and gradients, and the linear part before it as one box
    (Z = W X + b); from Z back, the linear part is drawn and cross_entropy is one box. Drawn compact if
    that is what fits; a view still too big (--model mlp, the net) is cut into parts, each frame
    showing the part of its step. --wide draws every frame whole, at its natural width, exactly as
    asked (--compact, --collapse). On a slide, --collapse cannot take effect (cross_entropy is open
    while the walk is in it) and is refused, as is --compact when the frames are compact anyway."""
    from ..lecture import extras
    from ..lecture.views import viz

    model = small_model(args)
    skipped = []
    gif = args.gif and extras.have("Pillow")
    if args.gif and not gif:
        skipped.append(extras.skipped(f"the animated GIF {Path(args.out) / 'frames.gif'}", "Pillow"))
    try:
        frames = viz.backward_frames(
            model.loss,
            args.out,
            gif=gif,
            delay_ms=args.delay_ms,
            dpi=args.dpi,
            rankdir=args.rankdir,
            slide=None if args.wide else args.ratio,
            clusters={"cross_entropy": (model.loss, [model.logits])},
            compact=args.compact,
            collapse=args.collapse,
        )
    except viz.GraphvizNotFoundError as missing:  # no frames without dot, and so no GIF either
        return report_skipped([str(missing)])
    print(f"{len(frames)} frames, one per backward step: {frames[0]} … {frames[-1].name}")
    if gif:
        print(f"animation: {Path(args.out) / 'frames.gif'}")
    return report_skipped(skipped)


def animate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=output_folder, default="frames", metavar="DIR", help="output folder (default: frames)"
    )
    add_layout(parser)
    add_sizes(parser)
    add_model(parser)
    parser.add_argument("--gif", action="store_true", help="also write DIR/frames.gif (needs Pillow)")
    parser.add_argument(
        "--delay-ms",
        type=integer(20, 60_000, " ms"),
        help="the same time for every GIF frame (default: 1.5 s + 0.2 s per word of its caption)",
    )
    parser.add_argument(
        "--dpi", type=DPI, help="resolution of the frames (default: 1920 px wide; 96 with --wide)"
    )
    parser.add_argument(
        "--collapse", action="store_true", help="with --wide: draw cross_entropy as a single box"
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="draw each intermediate (exp, log S, ...) inside the op that made it: half the ranks "
        "(refused on a slide when the frames are compact anyway)",
    )
    add_slide(parser)
    parser.add_argument("--rankdir", choices=["LR", "TB"], default="LR", help="LR: left to right (default)")


def cmd_explore(args: argparse.Namespace) -> int:
    """Backprop in the browser: one self-contained HTML page (no network, opens from disk) that steps
    through the classifier's backward walk with the arrow keys, and ends with ∂loss/∂Z next to the
    closed form (P − Y)/N. Hover or Tab to any node to read its values and gradient."""
    from ..lecture.views import explorer, viz

    model = sized_classifier(args)
    try:
        path = explorer.classifier_page(model, args.out, compact=args.compact)
    except viz.GraphvizNotFoundError as missing:
        return report_skipped([str(missing)])
    size = path.stat().st_size
    print(f"explorer of the {args.layout}-layout classifier written to {path} ({size / 1000:.0f} kB)")
    print("open it in a browser; keys: → / ← step, Home / End, V values, G gradients, F full screen")
    return 0


def explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=output_file(".html"),
        default="explorer.html",
        help="the page to write (default: explorer.html)",
    )
    add_layout(parser)
    add_sizes(parser)
    parser.add_argument(
        "--compact",
        action="store_true",
        help="draw each unnamed intermediate (t6, t7, ...) inside the op that made it: half the ranks",
    )


def cmd_explain(args: argparse.Namespace) -> int:
    """The chain-rule ledger of the classifier's backward walk: node, op, local rule and
    gradient shapes at every step, ending in ∂loss/∂Z next to the closed form (P − Y)/N
    (with --model mlp: the two-layer net's walk, ending in Z2.grad next to (P − Y)/N)."""
    from ..lecture.views.ledger import explain

    model = small_model(args)
    reference = (model.logits, model.labels, model.class_axis)
    print(explain(model.loss, markdown=args.markdown, reference=reference, wide=args.wide), end="")
    return 0


def explain_arguments(parser: argparse.ArgumentParser) -> None:
    add_layout(parser)
    add_sizes(parser)
    add_model(parser)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for lecture notes")
    parser.add_argument("--wide", action="store_true", help="the full table (default: fit 100 columns)")
