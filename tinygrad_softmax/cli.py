"""The ``tinygrad-softmax`` command line (also ``python -m tinygrad_softmax``).

Each subcommand is a small function below; the work lives in the modules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from . import analytic
from .lecture import build_classifier


def _add_layout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        choices=["column", "row"],
        default="column",
        help="column: the seed's X D×N, W C×D (default); row: X N×D, W D×C",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Forward, backward and the p − y check for the seed's classifier."""
    for layout in ("column", "row"):
        model = build_classifier(layout)
        ref = analytic.linear_classifier(model.W.data, model.b.data, model.X.data, model.labels, layout)
        print(f"{layout} layout: loss {model.loss.item():.6f} (closed form {ref.loss:.6f})")
        for name, auto, closed in (
            ("Z.grad vs (P − Y)/N", model.Z.grad, ref.dZ),
            ("W.grad vs dW", model.W.grad, ref.dW),
            ("b.grad vs db", model.b.grad, ref.db),
        ):
            assert auto is not None
            print(f"  {name:22s} max |difference| = {np.max(np.abs(auto - closed)):.2e}")
    return 0


def cmd_jacobian(args: argparse.Namespace) -> int:
    """The engine's Jacobian of softmax(z) equals diag(p) − p pᵀ, and times ∂L/∂p = −y/p it gives p − y."""
    from . import lab

    try:
        demo = lab.softmax_jacobian_demo(args.classes, args.seed)
    except ValueError as error:
        print(f"tinygrad-softmax {error}", file=sys.stderr)
        return 2
    print(lab.format_softmax_jacobian(demo))
    ok = demo.closed_form_error < 1e-12 and demo.finite_difference_error < 1e-6 and demo.chain_error < 1e-12
    return 0 if ok else 1


def cmd_anomaly(args: argparse.Namespace) -> int:
    """Why softmax subtracts the max: a naive softmax at logits of 1000, caught by detect_anomaly()."""
    from . import lab, viz

    try:
        demo = lab.anomaly_demo(args.out)
    except viz.GraphvizNotFoundError as missing:
        print(lab.format_anomaly_demo(lab.anomaly_demo()))
        print(f"\n{missing}", file=sys.stderr)
        return 1
    print(lab.format_anomaly_demo(demo))
    return 0


def cmd_epsilon(args: argparse.Namespace) -> int:
    """The float32 lesson: numerical-gradient error vs step eps (1e-1 … 1e-10) in float32 and float64."""
    from . import lab

    rows = lab.epsilon_sweep()
    print(lab.format_epsilon_sweep(rows))
    if args.plot:
        try:
            print(f"log-log plot written to {lab.plot_epsilon_sweep(rows, args.plot)}")
        except ValueError as error:
            print(f"tinygrad-softmax epsilon: {error}", file=sys.stderr)
            return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-softmax",
        description="A tiny autograd engine that derives the softmax cross-entropy gradient dz = p − y.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="the whole lecture demo", description=cmd_demo.__doc__)
    demo.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    demo.set_defaults(run=cmd_demo)

    jac = commands.add_parser(
        "jacobian", help="the softmax Jacobian and how it becomes p − y", description=cmd_jacobian.__doc__
    )
    jac.add_argument("--classes", type=int, default=4, help="number of classes C (default: 4)")
    jac.add_argument("--seed", type=int, default=0, help="random seed for the logits (default: 0)")
    jac.set_defaults(run=cmd_jacobian)

    anomaly = commands.add_parser(
        "anomaly",
        help="the naive softmax overflows; detect_anomaly() finds where",
        description=cmd_anomaly.__doc__,
    )
    anomaly.add_argument("--out", default="demo-output", help="folder for the graphs (default: demo-output)")
    anomaly.set_defaults(run=cmd_anomaly)

    epsilon = commands.add_parser(
        "epsilon",
        help="finite-difference error vs step size, float32 and float64",
        description=cmd_epsilon.__doc__,
    )
    epsilon.add_argument(
        "--plot", metavar="FILE", help="also draw the log-log plot into FILE (.png, .svg, .pdf)"
    )
    epsilon.set_defaults(run=cmd_epsilon)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
