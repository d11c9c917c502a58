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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-softmax",
        description="A tiny autograd engine that derives the softmax cross-entropy gradient dz = p − y.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="the whole lecture demo", description=cmd_demo.__doc__)
    demo.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
