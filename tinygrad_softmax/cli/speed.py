"""The engine's speed: compile (the straight-line NumPy program the engine writes for one step) and
bench (the benchmark that times it against the hand-written closed form and other libraries)."""

from __future__ import annotations

import argparse

from .options import add_layout, integer, integers, output_file


def cmd_compile(args: argparse.Namespace) -> int:
    """The program the engine writes for one step of the classifier: straight-line NumPy, forward and
    backward, from compile(), one line per rule (--optimized: the program that runs, lines simplified
    and arrays reused). The lines that make dZ = (P − Y)/N are marked ▶, found by reading the
    program; run, they give the derivation's closed form (checked)."""
    from ..lecture.views.program import MarkedProgram

    program = MarkedProgram.for_classifier(args.layout, optimized=args.optimized)
    print(program.render())
    return 0 if program.difference < 1e-12 else 1


def compile_arguments(parser: argparse.ArgumentParser) -> None:
    add_layout(parser)
    parser.add_argument(
        "--optimized",
        action="store_true",
        help="show the program that runs: lines simplified, dead arrays reused (out=); "
        "the default is the plain listing, one line per rule",
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """One training step of the softmax classifier, timed against the hand-written NumPy closed form,
    PyTorch, HIPS autograd, micrograd and JAX's jit (those installed), with 1 and with 2 BLAS threads;
    plus long chains and memory. Prints a Markdown report; --write also saves it."""
    if args.clear_choices:
        from ..bench import clear_choices

        print(clear_choices())
        return 0
    from ..bench import main as run_bench

    return run_bench(
        quick=args.quick, write=args.write, threads=args.threads, rounds=args.rounds, readme=args.readme
    )


def bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clear-choices",
        action="store_true",
        help="delete the cached way round of matrix products measured on this machine, and stop",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: only proves it runs")
    parser.add_argument(
        "--readme",
        metavar="FILE",
        help="also rewrite the cost table between the markers in FILE (the README) from this run",
    )
    parser.add_argument(
        "--rounds",
        type=integer(1, 1000),
        metavar="N",
        help="at most N rounds of interleaved timing per size (default: 41, 21 at cifar-like); "
        "the report says how many ran",
    )
    parser.add_argument(
        "--write", metavar="FILE", type=output_file(), help="also write the Markdown report to FILE"
    )
    parser.add_argument(
        "--threads",
        type=integers(1, 256),
        default=(1, 2),
        metavar="N[,N...]",
        help="the thread counts (NumPy's BLAS, PyTorch, JAX) to time the step with, each in a process "
        "of its own pinned to that many CPUs (default: 1,2)",
    )
