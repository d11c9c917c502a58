"""The subcommands that check the engine's gradient, and the lab's lessons about it: demo, compare,
jacobian, anomaly, epsilon."""

from __future__ import annotations

import argparse
from typing import Any

from .options import (
    add_layout,
    add_model,
    add_sizes,
    classifier_sizes,
    jacobian_classes,
    output_file,
    output_folder,
)
from .status import report_skipped


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole lecture demo into one folder: graph, backward frames, comparison tables,
    injected bugs, training on Iris and digits, and report.md tying them together."""
    from ..lecture.demo import run_demo

    result = run_demo(args.out)  # ends with one line per skipped part
    return 0 if result.passed and not result.problems else 1


DEMO_SIZES = (
    "the demo's report is written for the lecture's classifier (N = 5, C = 3, D = 4, random seed 0); "
    "show other sizes with graph, animate, explore, explain or compare"
)


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(
        parser, refuse=dict.fromkeys(("samples", "classes", "features", "random_seed", "labels"), DEMO_SIZES)
    )
    parser.add_argument(
        "--out", type=output_folder, default="demo-output", help="output folder (default: demo-output)"
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """Autograd vs the closed form vs finite differences for the linear softmax classifier: dZ, dW, db.

    With --model mlp: autograd vs finite differences for every parameter of a two-layer net (it has
    no closed form), and Z2.grad next to the closed form (P − Y)/N at its logits.
    Exit status 1 when a check fails, as it must with --inject-bug.
    """
    from ..lecture.lessons.compare import compare
    from ..lecture.outputs import write_text

    if args.model == "mlp":
        from ..lecture.lessons.hidden_layer import compare_mlp

        if args.inject_bug:
            raise ValueError("--inject-bug works on the linear softmax classifier only (--model linear)")
        asked = [f"--{k.replace('_', '-')}" for k, v in COMPARE_SIZES.items() if getattr(args, k) != v]
        if asked:
            raise ValueError(
                f"{' '.join(asked)}: the size options set the linear softmax classifier, not --model mlp"
            )
        result: Any = compare_mlp(args.layout, args.dtype, with_dx=args.with_dx)
    else:
        result = compare(
            args.layout, args.dtype, with_dx=args.with_dx, bug=args.inject_bug, **classifier_sizes(args)
        )
    # The two-layer table has no max|Δ| columns to hide: it always fits 100 columns.
    print(result.to_text() if args.model == "mlp" else result.to_text(wide=args.wide), end="")
    if args.markdown:
        print(f"Markdown written to {write_text(args.markdown, result.to_markdown())}")
    if args.json:
        print(f"JSON written to {write_text(args.json, result.to_json())}")
    return 0 if result.passed else 1


COMPARE_SIZES = {"samples": 5, "classes": 3, "features": 4, "random_seed": 0, "labels": None}  # the defaults


def compare_arguments(parser: argparse.ArgumentParser) -> None:
    from ..lecture.lessons.bugs import BUGS

    parser.epilog = "bugs for --inject-bug:\n" + "\n".join(
        f"  {b.name:18} {b.summary}" for b in BUGS.values()
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_layout(parser)
    add_sizes(parser)
    add_model(parser)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="default: float64")
    parser.add_argument("--with-dx", action="store_true", help="also compare dX, the gradient of the inputs")
    parser.add_argument(
        "--inject-bug",
        metavar="NAME",
        choices=list(BUGS),
        help="build the graph with this wrong backward rule (listed below) to see the check fail",
    )
    parser.add_argument(
        "--markdown", metavar="FILE", type=output_file(), help="also write the table as Markdown"
    )
    parser.add_argument("--json", metavar="FILE", type=output_file(), help="also write every number as JSON")
    parser.add_argument("--wide", action="store_true", help="the full table (default: fit 100 columns)")


def cmd_jacobian(args: argparse.Namespace) -> int:
    """The engine's Jacobian of softmax(z) equals diag(p) − p pᵀ, and times ∂L/∂p = −y/p it gives p − y."""
    from ..lecture.lessons import lab

    demo = lab.softmax_jacobian_demo(args.classes, args.random_seed)
    print(lab.format_softmax_jacobian(demo))
    ok = demo.closed_form_error < 1e-12 and demo.finite_difference_error < 1e-6 and demo.chain_error < 1e-12
    return 0 if ok else 1


def jacobian_arguments(parser: argparse.ArgumentParser) -> None:
    one = "the Jacobian is softmax's at one sample's logits z (C of them), with one label drawn at random"
    add_sizes(
        parser,
        defaults={"classes": 4},
        refuse={"samples": one, "features": one, "labels": one},
        kinds={"classes": jacobian_classes},  # C×C matrices: the limit is memory, not a slide
        what="one sample's C logits",
    )


def cmd_anomaly(args: argparse.Namespace) -> int:
    """Why softmax subtracts the max: a naive softmax at logits of 1000, caught by detect_anomaly()."""
    from ..lecture.lessons import lab

    demo = lab.anomaly_demo(args.out, **classifier_sizes(args))
    print(lab.format_anomaly_demo(demo))
    return report_skipped(demo.skipped)


def anomaly_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser)
    parser.add_argument(
        "--out",
        type=output_folder,
        default=".",
        help="folder for the two graphs (default: the current folder)",
    )


def cmd_epsilon(args: argparse.Namespace) -> int:
    """The float32 lesson: numerical-gradient error vs step eps (1e-1 … 1e-10) in float32 and float64."""
    from ..lecture import extras
    from ..lecture.lessons import lab

    rows = lab.epsilon_sweep()
    print(lab.format_epsilon_sweep(rows))
    if args.plot:
        if not extras.have("matplotlib"):
            return report_skipped([extras.skipped(f"the plot {args.plot}", "matplotlib")])
        print(f"log-log plot written to {lab.plot_epsilon_sweep(rows, args.plot)}")
    return 0


def epsilon_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plot",
        metavar="FILE",
        type=output_file(".png", ".svg", ".pdf"),
        help="also draw the log-log plot into FILE (.png, .svg, .pdf)",
    )
