"""The command line itself: the table of subcommands, the parser built from it, and :func:`main`.

Each subcommand is two small functions in the module of its group and one row of
:data:`SUBCOMMANDS`: ``cmd_x(args)`` does the work (importing its room, the lecture
or the bench, only when it runs) and ``x_arguments(parser)`` declares its options,
added only when that subcommand is parsed or its help is shown. So
``tinygrad-softmax train`` never imports the injected bugs, and the top-level
``--help`` imports no room at all. The exit status is the same for every
subcommand (:mod:`.status`): 0 done, 1 a check failed or an optional part is
missing, 2 a bad value, 130 interrupted, 143 terminated.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from . import checks, exercise, graphs, presenting, second_order, speed, training
from .status import Terminated, unwind_on_sigterm


@dataclass(frozen=True)
class Subcommand:
    """One row of the command line: its name, one line for the overview, what it takes and runs."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("demo", "the whole lecture demo", checks.demo_arguments, checks.cmd_demo),
    Subcommand(
        "compare",
        "autograd vs closed form vs finite differences",
        checks.compare_arguments,
        checks.cmd_compare,
    ),
    Subcommand(
        "train",
        "train the classifier (or a two-layer net) on Iris, digits, spiral, moons",
        training.train_arguments,
        training.cmd_train,
    ),
    Subcommand(
        "boundaries",
        "linear vs two-layer net on spiral or moons: decision boundaries side by side",
        training.boundaries_arguments,
        training.cmd_boundaries,
    ),
    Subcommand(
        "jacobian",
        "the softmax Jacobian and how it becomes p − y",
        checks.jacobian_arguments,
        checks.cmd_jacobian,
    ),
    Subcommand(
        "anomaly",
        "the naive softmax overflows; detect_anomaly() finds where",
        checks.anomaly_arguments,
        checks.cmd_anomaly,
    ),
    Subcommand(
        "epsilon",
        "finite-difference error vs step size, float32 and float64",
        checks.epsilon_arguments,
        checks.cmd_epsilon,
    ),
    Subcommand(
        "hessian",
        "the engine's Hessian of the classifier vs the closed form",
        second_order.hessian_arguments,
        second_order.cmd_hessian,
    ),
    Subcommand(
        "newton",
        "Newton's method vs gradient descent on Iris or digits",
        second_order.newton_arguments,
        second_order.cmd_newton,
    ),
    Subcommand(
        "modes",
        "forward vs reverse mode: why backprop is reverse mode",
        second_order.modes_arguments,
        second_order.cmd_modes,
    ),
    Subcommand(
        "graph",
        "draw the classifier's computation graph (PNG, SVG, PDF)",
        graphs.graph_arguments,
        graphs.cmd_graph,
    ),
    Subcommand(
        "animate",
        "one picture per backward step, and an animated GIF",
        graphs.animate_arguments,
        graphs.cmd_animate,
    ),
    Subcommand(
        "explore",
        "step through the backward pass in a browser (one HTML file)",
        graphs.explore_arguments,
        graphs.cmd_explore,
    ),
    Subcommand(
        "explain", "the chain-rule ledger, step by step", graphs.explain_arguments, graphs.cmd_explain
    ),
    Subcommand(
        "compile",
        "the NumPy program the engine writes, dZ = (P − Y)/N marked",
        speed.compile_arguments,
        speed.cmd_compile,
    ),
    Subcommand(
        "exercise",
        "students write the backward rules; an autograder grades them",
        exercise.exercise_arguments,
        exercise.cmd_exercise,
    ),
    Subcommand(
        "slides",
        "the 50-minute lecture as an offline HTML deck with speaker notes (and a PDF)",
        presenting.slides_arguments,
        presenting.cmd_slides,
    ),
    Subcommand(
        "doctor",
        "which optional parts this machine has, what each enables, how to install them",
        presenting.doctor_arguments,
        presenting.cmd_doctor,
    ),
    Subcommand(
        "bench",
        "the benchmark (writes docs/benchmarks.md with --write)",
        speed.bench_arguments,
        speed.cmd_bench,
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
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:  # said here, the error names this subcommand and its --help, not the top level's
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

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
        with unwind_on_sigterm():
            return int(args.run(args))
    except ValueError as error:  # a bad value the parser could not see (epochs, sizes, a file name, ...)
        print(f"tinygrad-softmax {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every file is whole (old or new), so one line is all there is to say
        print(f"tinygrad-softmax {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:  # SIGTERM: unwound like Ctrl-C, so no temporary file or folder is left
        print(f"tinygrad-softmax {args.command}: terminated", file=sys.stderr)
        return 143
