"""The subcommands that train: train (the linear softmax classifier or a two-layer net) and boundaries
(the two side by side on a plane)."""

from __future__ import annotations

import argparse

from .options import SEED, add_model, fraction, integer, output_folder, positive_float
from .status import report_skipped


def cmd_train(args: argparse.Namespace) -> int:
    """Train the linear softmax classifier (or, with --model mlp, a two-layer net) by gradient descent
    through the engine, on data shipped in the package or generated (fixed seed, standardised
    features, 25% of each class held out for testing)."""
    from ..lecture import extras
    from ..lecture.training.train import save_pictures, settings, train

    epochs, lr = settings(args.dataset, args.optimizer, args.epochs, args.lr)
    what = (
        "linear softmax classifier"
        if args.model == "linear"
        else f"two-layer net, {args.hidden} hidden ReLUs"
    )
    step = "Adam" if args.optimizer == "adam" else "gradient descent"
    step += f" with momentum {args.momentum}" if args.momentum and args.optimizer == "sgd" else ""
    print(f"{args.dataset}: {what}, {step} (lr {lr}), {epochs} steps")
    result = train(
        args.dataset,
        epochs=epochs,
        lr=lr,
        seed=args.seed,
        model=args.model,
        hidden=args.hidden,
        optimizer=args.optimizer,
        momentum=args.momentum,
        compiled=args.compile,
    )
    if args.out:
        if not extras.have("matplotlib"):
            return report_skipped([extras.skipped(f"the pictures in {args.out}", "matplotlib")])
        print("pictures: " + ", ".join(str(p) for p in save_pictures(result, args.out)))
    return 0


def train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=["iris", "digits", "spiral", "moons"],
        default="digits",
        help="iris, digits (shipped), spiral, moons (generated, 2 features; default: digits)",
    )
    add_model(parser)
    parser.add_argument(
        "--hidden", type=integer(1, 100_000), default=100, help="hidden ReLUs of --model mlp (default: 100)"
    )
    parser.add_argument(
        "--optimizer",
        choices=["sgd", "adam"],
        default="sgd",
        help="sgd: gradient descent, W ← W − lr·dW (default); adam: Adam",
    )
    parser.add_argument(
        "--momentum", type=fraction, default=0.0, help="momentum of sgd, in [0, 1) (default: 0)"
    )
    parser.add_argument(
        "--epochs",
        type=integer(1),
        help="gradient steps (default: 200 iris, 150 digits, 1000 spiral, 500 moons)",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate (default: 0.5 iris/digits, 0.3 spiral/moons; adam 0.01)",
    )
    parser.add_argument(
        "--seed", type=SEED, default=0, help="random seed of the split and the initial weights (default: 0)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run each step as the NumPy program compile() writes for it (same numbers, less Python)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=output_folder,
        help="write the loss curve here (the W images for digits, the decision boundary for spiral/moons)",
    )


def cmd_boundaries(args: argparse.Namespace) -> int:
    """One hidden layer further: train the linear softmax classifier and a two-layer net (same data,
    split, seed and optimiser) and draw the plane coloured by each one's predicted class, side by side.
    The linear model can only cut the plane with straight lines; the hidden layer bends them."""
    from ..lecture.extras import have, skipped
    from ..lecture.lessons.hidden_layer import run_hidden_layer
    from ..lecture.outputs import check_folder

    drawing = have("matplotlib")
    if drawing:
        check_folder(args.out, "--out")  # before the training, not after it
    result = run_hidden_layer(
        args.out if drawing else None,
        datasets=[args.dataset],
        hidden=args.hidden,
        optimizer=args.optimizer,
        seed=args.seed,
    )
    if not drawing:
        return report_skipped([skipped("the decision-boundary picture", "matplotlib")])
    print(f"decision boundaries: {result.pictures[args.dataset]}")
    return 0


def boundaries_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["spiral", "moons"], default="spiral", help="default: spiral")
    parser.add_argument(
        "--hidden",
        type=integer(1, 100_000),
        default=100,
        help="hidden ReLUs of the two-layer net (default: 100)",
    )
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="default: sgd")
    parser.add_argument(
        "--seed", type=SEED, default=0, help="random seed of the split and the initial weights (default: 0)"
    )
    parser.add_argument(
        "--out",
        type=output_folder,
        default=".",
        metavar="DIR",
        help="writes DIR/<dataset>-boundaries.png (default: .)",
    )
