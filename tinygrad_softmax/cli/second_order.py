"""The second-order subcommands: hessian (the engine's Hessian next to the closed form), newton
(Newton's method against gradient descent) and modes (forward against reverse mode)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .options import POSITIVE, Refused, add_layout, add_sizes, integer, non_negative_float, output_folder
from .status import report_skipped


def save_figures(figures: list[tuple[str, Callable[[], Any]]], out: str | None) -> list[str]:
    """Draw each (file name, figure maker) into ``out``; without matplotlib, the line saying what was
    skipped, for :func:`report_skipped` to print last."""
    if not out:
        return []
    from ..lecture.extras import have, skipped

    if not have("matplotlib"):
        return [skipped(", ".join(str(Path(out) / name) for name, _ in figures), "matplotlib")]
    from ..lecture.lessons.second_order import save_figure

    for name, make in figures:
        print(f"picture written to {save_figure(make(), Path(out) / name)}")
    return []


def cmd_hessian(args: argparse.Namespace) -> int:
    """The engine's Hessian of the linear softmax classifier with respect to W next to the closed form,
    its eigenvalues (convex; D of them zero) and, with --out, a heat map of H with its block structure."""
    from ..lecture.lessons import second_order as so

    check = so.hessian_check(args.layout, args.samples, args.features, args.classes, args.random_seed)
    print(so.format_hessian_check(check))
    missing = save_figures([(f"hessian-{args.layout}.png", lambda: so.hessian_figure(check))], args.out)
    return report_skipped(missing) or (0 if check.passed else 1)


def hessian_arguments(parser: argparse.ArgumentParser) -> None:
    add_layout(parser)
    # The sizes' limit is memory (hessian_check refuses what does not fit), not a slide.
    add_sizes(
        parser,
        defaults={"samples": 40},
        highs={"samples": None, "classes": None, "features": None},
        refuse={"labels": "hessian draws the labels with its random seed (--random-seed)"},
    )
    parser.add_argument(
        "--out", metavar="DIR", type=output_folder, help="write the heat map hessian-<layout>.png here"
    )


def cmd_newton(args: argparse.Namespace) -> int:
    """Newton's method (the engine's Hessian) against gradient descent on the same data from the same start;
    with --out, loss and gradient norm per step on log scales. Exit 1 if Newton does not converge."""
    from ..lecture.lessons import second_order as so

    run = so.newton_vs_gd(
        args.dataset,
        l2=args.l2,
        max_steps=args.max_steps,
        gd_budget=args.gd_steps,
        log=lambda line: print(line, flush=True),
    )
    print()
    print(so.format_newton(run, table=False))
    missing = save_figures([(f"newton-{args.dataset}.png", lambda: so.newton_figure(run))], args.out)
    return report_skipped(missing) or (0 if run.converged else 1)


NEWTON_SIZES = (
    "newton trains on the --dataset (iris or digits): its samples, classes and features are the data's"
)


def newton_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(
        parser,
        refuse={
            **dict.fromkeys(("samples", "classes", "features", "labels"), NEWTON_SIZES),
            "random_seed": "newton starts from W = 0 on fixed data: nothing in it is random",
        },
        what="refused: the data set's own",
    )
    parser.add_argument("--dataset", choices=["iris", "digits"], default="iris", help="default: iris")
    parser.add_argument(
        "--l2",
        type=non_negative_float,
        default=1e-3,
        help="λ of the (λ/2)‖W‖² term that makes H positive definite",
    )
    parser.add_argument("--max-steps", type=POSITIVE, default=15, help="Newton steps at most (default 15)")
    parser.add_argument(
        "--gd-steps", type=POSITIVE, help="gradient-descent budget (default 20000 for iris, 2000 for digits)"
    )
    parser.add_argument("--out", metavar="DIR", type=output_folder, help="write newton-<dataset>.png here")


def cmd_modes(args: argparse.Namespace) -> int:
    """Forward vs reverse mode for ∂L/∂W: C·D Jacobian-vector products against one vector-Jacobian
    product, timed for growing D; with --out, time against D."""
    from ..lecture.lessons import second_order as so

    rows = so.modes(args.features, classes=args.classes, samples=args.samples, seed=args.random_seed)
    print(so.format_modes(rows))
    missing = save_figures([("modes.png", lambda: so.modes_figure(rows))], args.out)
    return report_skipped(missing) or (0 if all(r.max_difference < 1e-12 for r in rows) else 1)


def modes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--features", type=POSITIVE, nargs="+", default=[2, 4, 8, 16, 32, 64], help="the values of D"
    )
    parser.add_argument("--classes", type=POSITIVE, default=3, help="C, at least 2 (default 3)")
    parser.add_argument("--samples", type=POSITIVE, default=16, metavar="N", help="N samples (default 16)")
    parser.add_argument(
        "--random-seed", "--seed", type=integer(0), default=0, metavar="S", help="random seed of X, W and y"
    )
    parser.add_argument(
        "--labels",
        action=Refused,
        reason="modes times random data for each D; its labels are drawn with --random-seed",
        metavar="0,2,1",
        help="refused: the labels are drawn with --random-seed",
    )
    parser.add_argument(
        "--out", metavar="DIR", type=output_folder, help="write modes.png (time against D) here"
    )
