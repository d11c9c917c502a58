"""The ``tinygrad-softmax`` command line (also ``python -m tinygrad_softmax``).

Each subcommand is two small functions and one row of :data:`SUBCOMMANDS`:
``cmd_x(args)`` does the work (importing its room, the lecture or the bench,
only when it runs) and ``_x_arguments(parser)`` declares its options, added
only when that subcommand is parsed or its help is shown. So
``tinygrad-softmax train`` never imports the injected bugs, and the top-level
``--help`` imports no room at all.

Exit status, the same for every subcommand:

- 0: done, and every check passed;
- 1: a check failed (a comparison, an injected bug caught), or an optional
  part is missing (matplotlib, Pillow, Graphviz's ``dot``): the command does
  everything it can and ends with one line per part, naming what it skipped
  and the install command (:func:`lecture.extras.skipped`);
- 2: a bad value, refused before any work starts and printed as one line
  ``tinygrad-softmax X: error: ...``: every option is checked by its argparse
  type function below (numbers in range, output paths writable), and any
  ``ValueError`` a subcommand raises is reported by :func:`main` the same way.

Every file is written to a temporary file in its folder and renamed into
place (:mod:`lecture.outputs`), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# ---------------------------------------------------------------- one validation style for every option
# Each is an argparse ``type``: argparse calls it while parsing, so a bad value is refused, with the
# option's name, before any work starts, and argparse turns the message into exit status 2.


def _integer(low: int, high: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An integer in [low, high]."""
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}{unit}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bounds}{unit}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _fraction(text: str) -> float:
    """A number in [0, 1) (a momentum)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number from 0 up to (not including) 1, got {text!r}"
        ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 up to (not including) 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _output_file(*suffixes: str) -> Callable[[str], Path]:
    """A file that can be written (its folder made if needed), with one of ``suffixes`` if given."""

    def parse(text: str) -> Path:
        from .lecture.outputs import OutputPathError, check_file

        path = Path(text)
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"cannot write {text!r}: the extension must be {', '.join(suffixes)}"
            )
        try:
            return check_file(path, "")
        except OutputPathError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "output file"
    return parse


def _output_folder(text: str) -> Path:
    """A folder that exists or can be made, and accepts new files."""
    from .lecture.outputs import OutputPathError, check_folder

    try:
        return check_folder(Path(text), "")
    except OutputPathError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _jacobian_classes(text: str) -> int:
    """C ≥ 2, and small enough that the demo's C×C float64 matrices fit the memory limit."""
    from .lecture.lab import JACOBIAN_MATRICES, MAX_JACOBIAN_BYTES, jacobian_demo_bytes

    classes = _integer(2)(text)
    need = jacobian_demo_bytes(classes)
    if need > MAX_JACOBIAN_BYTES:
        largest = math.isqrt(MAX_JACOBIAN_BYTES // (8 * JACOBIAN_MATRICES))
        raise argparse.ArgumentTypeError(
            f"{classes} classes need {JACOBIAN_MATRICES} float64 matrices of {classes}×{classes} = "
            f"{need / 2**30:.1f} GiB; at most {largest} classes fit in {MAX_JACOBIAN_BYTES / 2**30:.0f} GiB"
        )
    return classes


DPI = _integer(24, 600, " dots per inch")  # below 24 text is unreadable; above 600 a PNG runs to 100 MB
SEED = _integer(0)  # NumPy's generators take seeds ≥ 0


def _add_slide(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ratio", choices=["16:9", "4:3"], default="16:9", help="the slide the picture fits (default: 16:9)"
    )
    parser.add_argument(
        "--wide", action="store_true", help="the full drawing at its natural width, not fitted to a slide"
    )


def _add_layout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        choices=["column", "row"],
        default="column",
        help="column: the derivation's X D×N, W C×D (default); row: X N×D, W D×C",
    )


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        choices=["linear", "mlp"],
        default="linear",
        help="linear: the linear softmax classifier (default); mlp: the two-layer net "
        "Z2 = W2 relu(W1 X + b1) + b2",
    )


@dataclass(frozen=True)
class _SmallModel:
    """What graph, animate and explain draw: a loss after backward, its logits and labels."""

    loss: Any
    logits: Any
    labels: Any
    class_axis: int
    what: str


def _small_model(args: argparse.Namespace) -> _SmallModel:
    """The linear softmax classifier, or with --model mlp the two-layer net, forward and backward run."""
    if args.model == "mlp":
        from .lecture.hidden_layer import build_two_layer_net

        net = build_two_layer_net(args.layout)
        return _SmallModel(
            net.loss, net.Z2, net.labels, net.class_axis, f"{args.layout}-layout two-layer net"
        )
    from .lecture.classifier import build_classifier

    model = build_classifier(args.layout)
    return _SmallModel(
        model.loss, model.Z, model.labels, model.class_axis, f"{args.layout}-layout classifier"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole lecture demo into one folder: graph, backward frames, comparison tables,
    injected bugs, training on Iris and digits, and report.md tying them together."""
    from .lecture.demo import run_demo

    result = run_demo(args.out)  # ends with one line per skipped part
    return 0 if result.passed and not result.problems else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Autograd vs the closed form vs finite differences for the linear softmax classifier: dZ, dW, db.

    With --model mlp: autograd vs finite differences for every parameter of a two-layer net (it has
    no closed form), and Z2.grad next to the closed form (P − Y)/N at its logits.
    Exit status 1 when a check fails, as it must with --inject-bug.
    """
    from .lecture.compare import compare
    from .lecture.outputs import write_text

    if args.model == "mlp":
        from .lecture.hidden_layer import compare_mlp

        if args.inject_bug:
            raise ValueError("--inject-bug works on the linear softmax classifier only (--model linear)")
        result: Any = compare_mlp(args.layout, args.dtype, with_dx=args.with_dx)
    else:
        result = compare(args.layout, args.dtype, with_dx=args.with_dx, bug=args.inject_bug)
    # The two-layer table has no max|Δ| columns to hide: it always fits 100 columns.
    print(result.to_text() if args.model == "mlp" else result.to_text(wide=args.wide), end="")
    if args.markdown:
        print(f"Markdown written to {write_text(args.markdown, result.to_markdown())}")
    if args.json:
        print(f"JSON written to {write_text(args.json, result.to_json())}")
    return 0 if result.passed else 1


def cmd_train(args: argparse.Namespace) -> int:
    """Train the linear softmax classifier (or, with --model mlp, a two-layer net) by gradient descent
    through the engine, on data shipped in the package or generated (fixed seed, standardised
    features, 25% of each class held out for testing)."""
    from .lecture import extras
    from .lecture.train import save_pictures, settings, train

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
            return _skipped([extras.skipped(f"the pictures in {args.out}", "matplotlib")])
        print("pictures: " + ", ".join(str(p) for p in save_pictures(result, args.out)))
    return 0


def cmd_boundaries(args: argparse.Namespace) -> int:
    """One hidden layer further: train the linear softmax classifier and a two-layer net (same data,
    split, seed and optimiser) and draw the plane coloured by each one's predicted class, side by side.
    The linear model can only cut the plane with straight lines; the hidden layer bends them."""
    from .lecture.extras import have, skipped
    from .lecture.hidden_layer import run_hidden_layer
    from .lecture.outputs import check_folder

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
        return _skipped([skipped("the decision-boundary picture", "matplotlib")])
    print(f"decision boundaries: {result.pictures[args.dataset]}")
    return 0


def cmd_jacobian(args: argparse.Namespace) -> int:
    """The engine's Jacobian of softmax(z) equals diag(p) − p pᵀ, and times ∂L/∂p = −y/p it gives p − y."""
    from .lecture import lab

    demo = lab.softmax_jacobian_demo(args.classes, args.seed)
    print(lab.format_softmax_jacobian(demo))
    ok = demo.closed_form_error < 1e-12 and demo.finite_difference_error < 1e-6 and demo.chain_error < 1e-12
    return 0 if ok else 1


def cmd_anomaly(args: argparse.Namespace) -> int:
    """Why softmax subtracts the max: a naive softmax at logits of 1000, caught by detect_anomaly()."""
    from .lecture import lab

    demo = lab.anomaly_demo(args.out)
    print(lab.format_anomaly_demo(demo))
    return _skipped(demo.skipped)


def cmd_epsilon(args: argparse.Namespace) -> int:
    """The float32 lesson: numerical-gradient error vs step eps (1e-1 … 1e-10) in float32 and float64."""
    from .lecture import extras, lab

    rows = lab.epsilon_sweep()
    print(lab.format_epsilon_sweep(rows))
    if args.plot:
        if not extras.have("matplotlib"):
            return _skipped([extras.skipped(f"the plot {args.plot}", "matplotlib")])
        print(f"log-log plot written to {lab.plot_epsilon_sweep(rows, args.plot)}")
    return 0


def _save_figures(figures: list[tuple[str, Callable[[], Any]]], out: str | None) -> list[str]:
    """Draw each (file name, figure maker) into ``out``; without matplotlib, the line saying what was
    skipped, for :func:`_skipped` to print last."""
    if not out:
        return []
    from .lecture.extras import have, skipped

    if not have("matplotlib"):
        return [skipped(", ".join(str(Path(out) / name) for name, _ in figures), "matplotlib")]
    from .lecture.second_order import save_figure

    for name, make in figures:
        print(f"picture written to {save_figure(make(), Path(out) / name)}")
    return []


def cmd_hessian(args: argparse.Namespace) -> int:
    """The engine's Hessian of the linear softmax classifier with respect to W next to the closed form,
    its eigenvalues (convex; D of them zero) and, with --out, a heat map of H with its block structure."""
    from .lecture import second_order as so

    check = so.hessian_check(args.layout, args.samples, args.features, args.classes, args.seed)
    print(so.format_hessian_check(check))
    missing = _save_figures([(f"hessian-{args.layout}.png", lambda: so.hessian_figure(check))], args.out)
    return _skipped(missing) or (0 if check.passed else 1)


def cmd_newton(args: argparse.Namespace) -> int:
    """Newton's method (the engine's Hessian) against gradient descent on the same data from the same start;
    with --out, loss and gradient norm per step on log scales. Exit 1 if Newton does not converge."""
    from .lecture import second_order as so

    run = so.newton_vs_gd(args.dataset, l2=args.l2, max_steps=args.max_steps, gd_budget=args.gd_steps)
    print(so.format_newton(run))
    missing = _save_figures([(f"newton-{args.dataset}.png", lambda: so.newton_figure(run))], args.out)
    return _skipped(missing) or (0 if run.converged else 1)


def cmd_modes(args: argparse.Namespace) -> int:
    """Forward vs reverse mode for ∂L/∂W: C·D Jacobian-vector products against one vector-Jacobian
    product, timed for growing D; with --out, time against D."""
    from .lecture import second_order as so

    rows = so.modes(args.features, classes=args.classes)
    print(so.format_modes(rows))
    missing = _save_figures([("modes.png", lambda: so.modes_figure(rows))], args.out)
    return _skipped(missing) or (0 if max(r.max_difference for r in rows) < 1e-12 else 1)


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the classifier's computation graph, forward and backward already run, as PNG, SVG or PDF.

    The ops of cross_entropy sit in a dashed box; --collapse draws them as one node instead.
    --compact draws each unnamed intermediate inside the op that made it.
    --model mlp draws the two-layer net (W1, b1, Z1, H1, W2, b2, Z2) instead.

    By default the picture fits a 16:9 slide (--ratio 4:3 for the older shape): 1920 px wide, the
    chain wrapped onto rows, and drawn compact or collapsed if that is what keeps its smallest text
    at least 24 px tall on the slide. --wide draws it at its natural width, exactly as asked.
    """
    from .lecture import viz

    model = _small_model(args)
    out = Path(args.out).with_suffix("." + args.format) if args.format else Path(args.out)
    try:
        path = viz.render(
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
        return _skipped([str(missing)])
    print(
        f"graph of the {model.what} written to {path}"
        + ("" if args.wide else f" (fits a {args.ratio} slide)")
    )
    return 0


def cmd_animate(args: argparse.Namespace) -> int:
    """Watch backprop: one PNG per step of the classifier's backward walk, and with --gif an
    animated frames.gif. The node being processed is orange with the gradient that just reached it.
    --model mlp steps through the two-layer net's backward walk instead.

    By default the frames fit a 16:9 slide as graph's picture does (--ratio 4:3 for the older shape):
    1920 px wide, the chain wrapped onto rows, drawn compact (--compact) or with cross_entropy as one
    box (--collapse) if that is what keeps the smallest text at least 24 px tall on the slide.
    --wide draws them at their natural width, exactly as asked."""
    from .lecture import extras, viz

    model = _small_model(args)
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
        return _skipped([str(missing)])
    print(f"{len(frames)} frames, one per backward step: {frames[0]} … {frames[-1].name}")
    if gif:
        print(f"animation: {Path(args.out) / 'frames.gif'}")
    return _skipped(skipped)


def cmd_compile(args: argparse.Namespace) -> int:
    """The program the engine writes for one step of the classifier: straight-line NumPy, forward and
    backward, from compile(). The lines that make dZ = (P − Y)/N are marked ▶, found by reading the
    program; run, they give the derivation's closed form (checked)."""
    from .lecture.program import MarkedProgram

    program = MarkedProgram.for_classifier(args.layout)
    print(program.render())
    return 0 if program.difference < 1e-12 else 1


def cmd_explore(args: argparse.Namespace) -> int:
    """Backprop in the browser: one self-contained HTML page (no network, opens from disk) that steps
    through the classifier's backward walk with the arrow keys, and ends with ∂loss/∂Z next to the
    closed form (P − Y)/N. Hover or Tab to any node to read its values and gradient."""
    from .lecture import explorer, viz
    from .lecture.classifier import build_classifier

    model = build_classifier(args.layout)
    try:
        path = explorer.classifier_page(model, args.out, compact=args.compact)
    except viz.GraphvizNotFoundError as missing:
        return _skipped([str(missing)])
    size = path.stat().st_size
    print(f"explorer of the {args.layout}-layout classifier written to {path} ({size / 1000:.0f} kB)")
    print("open it in a browser; keys: → / ← step, Home / End, V values, G gradients, F full screen")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """The chain-rule ledger of the classifier's backward walk: node, op, local rule and
    gradient shapes at every step, ending in ∂loss/∂Z next to the closed form (P − Y)/N
    (with --model mlp: the two-layer net's walk, ending in Z2.grad next to (P − Y)/N)."""
    from .lecture.ledger import explain

    model = _small_model(args)
    reference = (model.logits, model.labels, model.class_axis)
    print(explain(model.loss, markdown=args.markdown, reference=reference, wide=args.wide), end="")
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    """The exercise kit: students write the backward rules themselves, an autograder grades them.

    init DIR writes DIR/my_rules.py (one function per op's backward rule, to be written) and a
    README; check DIR grades each rule alone by finite differences, then the linear softmax
    classifier with them (exit status 0 only when everything passes); solution DIR writes the
    reference rules, which are the package's own."""
    from .lecture import exercises, extras, outputs

    if args.action in ("init", "solution"):
        names = exercises.parse_ops(args.ops)
        if args.action == "init":
            written = exercises.init(args.dir, names, force=args.force)
            print(
                f"exercise for {len(names)} rules ({', '.join(names)}) written to "
                + ", ".join(map(str, written))
            )
            print(
                f"next: write the rules in {written[0]}, then run: tinygrad-softmax exercise check {args.dir}"
            )
        else:
            path = exercises.solution(args.dir, names, force=args.force)
            print(f"the reference rules ({', '.join(names)}) written to {path}")
        return 0
    assigned = exercises.parse_ops(args.ops) if args.ops else None
    if args.json:
        outputs.check_file(args.json, "--json")
    if args.picture:
        exercises.picture.check_path(args.picture)
    report = exercises.check(args.dir, assigned, time_limit=args.time_limit)
    print(report.to_text(), end="")
    if args.json:
        print(f"Gradescope results written to {exercises.write_json(report, args.json)}")
    status = 0 if report.passed else 1
    if args.picture:
        drawn = exercises.picture.draw(report, args.picture)
        if not drawn:
            return _skipped([extras.skipped(f"the picture {args.picture}", "dot")]) or status
        print(f"picture written to {drawn}")
    return status


def cmd_bench(args: argparse.Namespace) -> int:
    """One training step of the softmax classifier, timed against the hand-written NumPy closed form,
    PyTorch, HIPS autograd and micrograd (those installed); plus long chains and memory. Prints a
    Markdown report; --write also saves it."""
    from .bench import main as run_bench

    return run_bench(quick=args.quick, write=args.write, threads=args.threads)


def _skipped(lines: list[str]) -> int:
    """The end of every command that had to skip a part: one line each on stderr, exit status 1."""
    for line in lines:
        print(f"tinygrad-softmax: {line}", file=sys.stderr)
    return 1 if lines else 0


# ---------------------------------------------------------------- the arguments of each subcommand


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=_output_folder, default="demo-output", help="output folder (default: demo-output)"
    )


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    from .lecture.bugs import BUGS

    parser.epilog = "bugs for --inject-bug:\n" + "\n".join(
        f"  {b.name:18} {b.summary}" for b in BUGS.values()
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _add_layout(parser)
    _add_model(parser)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="default: float64")
    parser.add_argument("--with-dx", action="store_true", help="also compare dX, the gradient of the inputs")
    parser.add_argument(
        "--inject-bug",
        metavar="NAME",
        choices=list(BUGS),
        help="build the graph with this wrong backward rule (listed below) to see the check fail",
    )
    parser.add_argument(
        "--markdown", metavar="FILE", type=_output_file(), help="also write the table as Markdown"
    )
    parser.add_argument("--json", metavar="FILE", type=_output_file(), help="also write every number as JSON")
    parser.add_argument("--wide", action="store_true", help="the full table (default: fit 100 columns)")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=["iris", "digits", "spiral", "moons"],
        default="digits",
        help="iris, digits (shipped), spiral, moons (generated, 2 features; default: digits)",
    )
    _add_model(parser)
    parser.add_argument(
        "--hidden", type=_integer(1, 100_000), default=100, help="hidden ReLUs of --model mlp (default: 100)"
    )
    parser.add_argument(
        "--optimizer",
        choices=["sgd", "adam"],
        default="sgd",
        help="sgd: gradient descent, W ← W − lr·dW (default); adam: Adam",
    )
    parser.add_argument(
        "--momentum", type=_fraction, default=0.0, help="momentum of sgd, in [0, 1) (default: 0)"
    )
    parser.add_argument(
        "--epochs",
        type=_integer(1),
        help="gradient steps (default: 200 iris, 150 digits, 1000 spiral, 500 moons)",
    )
    parser.add_argument(
        "--lr",
        type=_positive_float,
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
        type=_output_folder,
        help="write the loss curve here (the W images for digits, the decision boundary for spiral/moons)",
    )


def _boundaries_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["spiral", "moons"], default="spiral", help="default: spiral")
    parser.add_argument(
        "--hidden",
        type=_integer(1, 100_000),
        default=100,
        help="hidden ReLUs of the two-layer net (default: 100)",
    )
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="default: sgd")
    parser.add_argument(
        "--seed", type=SEED, default=0, help="random seed of the split and the initial weights (default: 0)"
    )
    parser.add_argument(
        "--out",
        type=_output_folder,
        default=".",
        metavar="DIR",
        help="writes DIR/<dataset>-boundaries.png (default: .)",
    )


def _jacobian_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--classes", type=_jacobian_classes, default=4, help="number of classes C (default: 4)"
    )
    parser.add_argument("--seed", type=SEED, default=0, help="random seed for the logits (default: 0)")


def _anomaly_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=_output_folder,
        default=".",
        help="folder for the two graphs (default: the current folder)",
    )


def _epsilon_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plot",
        metavar="FILE",
        type=_output_file(".png", ".svg", ".pdf"),
        help="also draw the log-log plot into FILE (.png, .svg, .pdf)",
    )


_positive = _integer(1)


def _non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (a weight decay)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def _hessian_arguments(parser: argparse.ArgumentParser) -> None:
    _add_layout(parser)
    parser.add_argument("--samples", type=_positive, default=40, help="N (default 40)")
    parser.add_argument("--features", type=_positive, default=4, help="D (default 4)")
    parser.add_argument("--classes", type=_positive, default=3, help="C, at least 2 (default 3)")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed of the data and W")
    parser.add_argument(
        "--out", metavar="DIR", type=_output_folder, help="write the heat map hessian-<layout>.png here"
    )


def _newton_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["iris", "digits"], default="iris", help="default: iris")
    parser.add_argument(
        "--l2",
        type=_non_negative_float,
        default=1e-3,
        help="λ of the (λ/2)‖W‖² term that makes H positive definite",
    )
    parser.add_argument("--max-steps", type=_positive, default=15, help="Newton steps at most (default 15)")
    parser.add_argument(
        "--gd-steps", type=_positive, help="gradient-descent budget (default 20000 for iris, 2000 for digits)"
    )
    parser.add_argument("--out", metavar="DIR", type=_output_folder, help="write newton-<dataset>.png here")


def _modes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--features", type=_positive, nargs="+", default=[2, 4, 8, 16, 32, 64], help="the values of D"
    )
    parser.add_argument("--classes", type=_positive, default=3, help="C, at least 2 (default 3)")
    parser.add_argument(
        "--out", metavar="DIR", type=_output_folder, help="write modes.png (time against D) here"
    )


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=_output_file(),
        default="graph.png",
        help="output file; its extension picks the format",
    )
    _add_layout(parser)
    _add_model(parser)
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
    _add_slide(parser)


def _animate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=_output_folder, default="frames", metavar="DIR", help="output folder (default: frames)"
    )
    _add_layout(parser)
    _add_model(parser)
    parser.add_argument("--gif", action="store_true", help="also write DIR/frames.gif (needs Pillow)")
    parser.add_argument(
        "--delay-ms",
        type=_integer(20, 60_000, " ms"),
        help="the same time for every GIF frame (default: 1.5 s + 0.2 s per word of its caption)",
    )
    parser.add_argument(
        "--dpi", type=DPI, help="resolution of the frames (default: 1920 px wide; 96 with --wide)"
    )
    parser.add_argument("--collapse", action="store_true", help="draw cross_entropy as a single box")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="draw each unnamed intermediate (t6, t7, ...) inside the op that made it: half the ranks",
    )
    _add_slide(parser)
    parser.add_argument("--rankdir", choices=["LR", "TB"], default="LR", help="LR: left to right (default)")


def _explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=_output_file(".html"),
        default="explorer.html",
        help="the page to write (default: explorer.html)",
    )
    _add_layout(parser)
    parser.add_argument(
        "--compact",
        action="store_true",
        help="draw each unnamed intermediate (t6, t7, ...) inside the op that made it: half the ranks",
    )


def _explain_arguments(parser: argparse.ArgumentParser) -> None:
    _add_layout(parser)
    _add_model(parser)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for lecture notes")
    parser.add_argument("--wide", action="store_true", help="the full table (default: fit 100 columns)")


def _compile_arguments(parser: argparse.ArgumentParser) -> None:
    _add_layout(parser)


def _exercise_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=argparse.ArgumentParser
    )
    ops_help = (
        "comma-separated ops whose backward rules to write, e.g. exp,log,sum,gather,matmul,add; "
        "'classifier' (default): the ops of the linear softmax classifier; 'all': every op"
    )
    for action, what in (
        ("init", "write DIR/my_rules.py and DIR/README.md for a student"),
        ("solution", "write the reference rules (the package's own) to DIR/my_rules.py"),
    ):
        sub = actions.add_parser(action, help=what, description=what)
        sub.add_argument("dir", metavar="DIR", help="the exercise folder")
        sub.add_argument("--ops", metavar="LIST", help=ops_help)
        sub.add_argument("--force", action="store_true", help="overwrite an existing DIR/my_rules.py")
    what = "grade DIR/my_rules.py: each rule alone, then the classifier with them"
    check = actions.add_parser("check", help=what, description=what)
    check.add_argument("dir", metavar="DIR", help="the exercise folder")
    check.add_argument(
        "--json",
        metavar="FILE",
        type=_output_file(),
        help="also write Gradescope's results.json format to FILE",
    )
    check.add_argument(
        "--picture",
        metavar="FILE",
        type=_output_file(),
        help="draw the classifier's graph, wrong rules in red (.png, .svg, .pdf)",
    )
    check.add_argument(
        "--ops",
        metavar="LIST",
        help="the rules assigned (default: those the file defines); one missing fails",
    )
    check.add_argument(
        "--time-limit", type=_positive_float, default=10.0, metavar="SECONDS", help="per rule (default: 10)"
    )


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: only proves it runs")
    parser.add_argument(
        "--write", metavar="FILE", type=_output_file(), help="also write the Markdown report to FILE"
    )
    parser.add_argument(
        "--threads", type=_integer(1, 256), default=1, help="BLAS and PyTorch threads (default: 1)"
    )


# ---------------------------------------------------------------- the table of subcommands


@dataclass(frozen=True)
class Subcommand:
    """One row of the command line: its name, one line for the overview, what it takes and runs."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("demo", "the whole lecture demo", _demo_arguments, cmd_demo),
    Subcommand("compare", "autograd vs closed form vs finite differences", _compare_arguments, cmd_compare),
    Subcommand(
        "train",
        "train the classifier (or a two-layer net) on Iris, digits, spiral, moons",
        _train_arguments,
        cmd_train,
    ),
    Subcommand(
        "boundaries",
        "linear vs two-layer net on spiral or moons: decision boundaries side by side",
        _boundaries_arguments,
        cmd_boundaries,
    ),
    Subcommand(
        "jacobian", "the softmax Jacobian and how it becomes p − y", _jacobian_arguments, cmd_jacobian
    ),
    Subcommand(
        "anomaly",
        "the naive softmax overflows; detect_anomaly() finds where",
        _anomaly_arguments,
        cmd_anomaly,
    ),
    Subcommand(
        "epsilon",
        "finite-difference error vs step size, float32 and float64",
        _epsilon_arguments,
        cmd_epsilon,
    ),
    Subcommand(
        "hessian",
        "the engine's Hessian of the classifier vs the closed form",
        _hessian_arguments,
        cmd_hessian,
    ),
    Subcommand(
        "newton", "Newton's method vs gradient descent on Iris or digits", _newton_arguments, cmd_newton
    ),
    Subcommand("modes", "forward vs reverse mode: why backprop is reverse mode", _modes_arguments, cmd_modes),
    Subcommand(
        "graph", "draw the classifier's computation graph (PNG, SVG, PDF)", _graph_arguments, cmd_graph
    ),
    Subcommand(
        "animate", "one picture per backward step, and an animated GIF", _animate_arguments, cmd_animate
    ),
    Subcommand(
        "explore",
        "step through the backward pass in a browser (one HTML file)",
        _explore_arguments,
        cmd_explore,
    ),
    Subcommand("explain", "the chain-rule ledger, step by step", _explain_arguments, cmd_explain),
    Subcommand(
        "compile",
        "the NumPy program the engine writes, dZ = (P − Y)/N marked",
        _compile_arguments,
        cmd_compile,
    ),
    Subcommand(
        "exercise",
        "students write the backward rules; an autograder grades them",
        _exercise_arguments,
        cmd_exercise,
    ),
    Subcommand(
        "bench", "the benchmark (writes docs/benchmarks.md with --write)", _bench_arguments, cmd_bench
    ),
]


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _SubcommandParser(_Parser):
    """A subcommand's parser that adds its arguments the first time it is used.

    Building the whole command line then imports nothing: a subcommand's room
    (the bug list of ``compare``, say) is imported by its arguments function
    only when that subcommand is parsed or its help is printed.
    """

    def __init__(self, *args: Any, arguments: Callable[[argparse.ArgumentParser], None], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._add_arguments: Callable[[argparse.ArgumentParser], None] | None = arguments

    def _ready(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._ready()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._ready()
        return super().format_usage()

    def format_help(self) -> str:
        self._ready()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand in :data:`SUBCOMMANDS`, in that order."""
    parser = _Parser(
        prog="tinygrad-softmax",
        description="A tiny autograd engine that derives the softmax cross-entropy gradient dz = p − y.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_SubcommandParser
    )
    for sub in SUBCOMMANDS:
        command = commands.add_parser(
            sub.name,
            help=sub.help,
            description=inspect.cleandoc(sub.run.__doc__ or ""),
            arguments=sub.arguments,
        )
        command.set_defaults(run=sub.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help exits 0 as usual; a refused value returns its status 2
        if not stop.code:
            raise
        return int(stop.code) if isinstance(stop.code, int) else 2
    try:
        return int(args.run(args))
    except ValueError as error:  # a bad value the parser could not see (epochs, sizes, a file name, ...)
        print(f"tinygrad-softmax {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every file is whole (old or new), so one line is all there is to say
        print(f"tinygrad-softmax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
