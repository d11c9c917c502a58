"""The subcommand that derives the gradient as a formula from the recorded graph: derive."""

from __future__ import annotations

import argparse

from .options import POSITIVE, SEED, add_layout, add_model, integer, integers, output_file
from .status import report_skipped


def cmd_derive(args: argparse.Namespace) -> int:
    """The engine derives the gradient as a formula: its backward rules run on symbolic values and
    named identities simplify the result to ∂L/∂Z = (softmax(Z) − onehot(y))/N, ∂L/∂W, ∂L/∂b
    (and the two-layer net's). Every printed formula is computed with NumPy and compared with
    the engine's gradient (float64, 1e-12); exit status 1 if one differs. --elements C,N adds
    the element view (SymPy): each entry, each chain-rule step, the Hessian of the logits."""
    from ..lecture.derive import DerivationError, Problem, derive_model
    from ..lecture.derive.report import to_latex, to_text
    from ..lecture.extras import have, skipped

    problem = Problem(
        layout=args.layout,
        model=args.model,
        samples=args.samples,
        classes=args.classes,
        features=args.features,
        hidden=args.hidden,
        seed=args.random_seed,
    )
    try:
        derivation = derive_model(problem, args.loss)
    except DerivationError as error:
        print(f"tinygrad-softmax derive: {error}")
        return 1
    missing: list[str] = []
    print(to_latex(derivation) if args.latex else to_text(derivation), end="")
    extra: list[str] = []
    if args.elements:
        if not have("SymPy"):
            missing.append(skipped("the element view", "SymPy"))
        else:
            from ..lecture.derive import elements

            C, N = args.elements
            view = elements.element_view(C, N, seed=args.random_seed)
            print()
            if args.latex:
                print("\n".join(elements.latex_lines(view)))
            else:
                print(elements.to_text(view), end="")
            extra = elements.latex_lines(view) if C * N <= 4 else []
            if not (view.witness_agrees and view.error <= elements.TOLERANCE):
                print("tinygrad-softmax derive: the element view disagrees with SymPy's diff or the engine")
                return 1
    if args.out:
        if not have("matplotlib"):
            missing.append(skipped(f"the slide {args.out}", "matplotlib"))
        else:
            from ..lecture.derive.slide import write_formula_png

            print(f"Slide written to {write_formula_png(derivation, args.out, extra)} (1920×1080)")
    return report_skipped(missing)


def _elements(text: str) -> tuple[int, int]:
    values = integers(1, 12)(text)
    if len(values) != 2 and not (len(values) == 1 and "," in text):
        raise argparse.ArgumentTypeError(f"must be two whole numbers C,N (classes, samples), got {text!r}")
    if len(values) == 1:  # C == N: integers() keeps each value once
        values = (values[0], values[0])
    C, N = values
    if C < 2 or C * N > 12:
        raise argparse.ArgumentTypeError(
            f"needs C ≥ 2 and C·N ≤ 12 (the formulas must fit a slide), got {C},{N}"
        )
    return C, N


def derive_arguments(parser: argparse.ArgumentParser) -> None:
    from ..lecture.derive.models import LOSSES

    add_layout(parser)
    add_model(parser)
    parser.add_argument(
        "--loss",
        choices=list(LOSSES),
        default="cross-entropy",
        help="the loss, written one of several ways (default: cross-entropy, as F.cross_entropy)",
    )
    parser.add_argument(
        "--elements",
        type=_elements,
        metavar="C,N",
        help="add the element view for C classes, N samples (SymPy)",
    )
    parser.add_argument(
        "--latex", action="store_true", help="print LaTeX (amsmath align*) instead of plain Unicode"
    )
    parser.add_argument(
        "--out", type=output_file(".png"), help="also draw the formulas on a 1920×1080 slide (PNG)"
    )
    parser.add_argument("--samples", type=POSITIVE, default=5, help="N, the samples (default: 5)")
    parser.add_argument("--classes", type=integer(2), default=3, help="C, the classes (default: 3)")
    parser.add_argument("--features", type=POSITIVE, default=4, help="D, the features (default: 4)")
    parser.add_argument(
        "--hidden", type=POSITIVE, default=6, help="H, the hidden units of --model mlp (default: 6)"
    )
    parser.add_argument("--random-seed", type=SEED, default=0, help="random seed of the inputs (default: 0)")
