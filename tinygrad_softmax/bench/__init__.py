"""``make bench``: what one training step costs, here and elsewhere.

The workload is one step of the linear softmax classifier in float64: the
forward pass (``Z = X W + b`` in the row layout, ``Z = W X + b`` in the column
layout, then the mean cross-entropy with the max subtracted) and the backward
pass (the gradients of ``W`` and ``b``). It runs with 1 and with 2 threads
(NumPy's BLAS, PyTorch and JAX alike), each thread count in a fresh process
pinned to that many CPUs; in it, side by side, interleaved, after a warm-up:

- this engine, with the loss composed from the primitive ops (the lecture's
  ``functional.cross_entropy``) and with the fused ``softmax_cross_entropy``,
  eagerly and through ``compile`` (the NumPy program the engine writes);
- the NumPy closed form ``dZ = (P − Y)/N``, ``dW``, ``db`` written by hand, in a
  few formulations; the fastest one is the baseline, so the ratios are honest;
- PyTorch CPU autograd (from the same primitives, and its fused
  ``F.cross_entropy``), HIPS ``autograd``, ``micrograd`` (tiny size only) and
  JAX's ``jit`` (the compiled peer), when they are installed (the ``bench``
  extra, which ``make bench`` installs).

Every implementation's gradients are checked against the closed form before
anything is timed; each target is judged against the closed form measured
with the same threads in the same process. Also measured: the peak memory of one cifar-like step (each
implementation in a fresh subprocess), the memory after 10,000 tiny steps, and
graph build + backward for long chains of elementwise ops.

The rooms of the benchmark, by job:

    problem.py      the workload: sizes, one batch, its closed-form gradients
    contenders.py   the implementations of one step, and their gradient check
    timing.py       interleaved step timings; long chains, each in its own process
    memory.py       peak and growth of memory, each implementation in its own process
    machine.py      threads, versions, the machine's facts; running in a fresh interpreter
    runner.py       the settings of a run and everything it measured
    judging.py      the targets, each with its kind, and why a missed one is missed
    report.py       the Markdown report
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .contenders import (
    AUTOGRAD,
    COLLECTOR_PAUSED,
    COMPILED,
    COMPILED_FUSED,
    ENGINE,
    ENGINE_FUSED,
    JAX_JIT,
    MICROGRAD,
    NUMPY_PREFIX,
    TORCH,
    TORCH_FUSED,
    Implementation,
    check_gradients,
    implementations,
)
from .judging import Target, explanations, targets, unexplained
from .memory import measure_memory, memory_child
from .problem import LAYOUTS, SIZES, BenchmarkError, Problem, StepFn, make_problem
from .report import render, with_readme_table
from .runner import THREADS, Report, Settings, run
from .timing import (
    ChainResult,
    SizeResult,
    Timing,
    chain_child,
    interleaved_timings,
    step_child,
    time_chains,
    time_size,
)

__all__ = [
    "SIZES",
    "LAYOUTS",
    "ENGINE",
    "ENGINE_FUSED",
    "COMPILED",
    "COMPILED_FUSED",
    "JAX_JIT",
    "TORCH",
    "TORCH_FUSED",
    "AUTOGRAD",
    "MICROGRAD",
    "NUMPY_PREFIX",
    "COLLECTOR_PAUSED",
    "BenchmarkError",
    "Problem",
    "StepFn",
    "make_problem",
    "Implementation",
    "implementations",
    "check_gradients",
    "Timing",
    "interleaved_timings",
    "SizeResult",
    "time_size",
    "step_child",
    "ChainResult",
    "chain_child",
    "time_chains",
    "memory_child",
    "measure_memory",
    "Settings",
    "Report",
    "run",
    "Target",
    "targets",
    "render",
    "explanations",
    "unexplained",
    "THREADS",
    "clear_choices",
    "main",
]


def clear_choices() -> str:
    """Delete the cached way round of matrix products measured on this machine: what was done, one line."""
    from .. import orientation

    path = orientation.cache_path()
    deleted = orientation.clear()
    if deleted is not None:
        return f"bench: deleted the measured matmul choices, {deleted}"
    if path is None:
        return f"bench: no cache of matmul choices ({orientation.ENV}=off)"
    return f"bench: no measured matmul choices to delete at {path}"


def _write(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder and rename it into place: never a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as out:
        out.write(text)
    os.replace(out.name, path)


def main(
    quick: bool = False,
    write: str | None = None,
    threads: int | Sequence[int] = THREADS,
    rounds: int | None = None,
    readme: str | None = None,
) -> int:
    """Run the benchmark, print the Markdown report, and write it to ``write`` if given.

    ``threads``: the BLAS thread counts to measure the step with (1 and 2 by default).
    """
    counts = (threads,) if isinstance(threads, int) else tuple(dict.fromkeys(threads))
    settings = Settings.for_mode(quick, counts)
    if rounds is not None:
        settings.repeats = min(settings.repeats, rounds)  # (the report states the rounds run)
    start = time.monotonic()
    try:
        report = run(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchmarkError as error:
        print(error, file=sys.stderr)
        return 1
    minutes, seconds = divmod(round(time.monotonic() - start), 60)
    print(f"bench: measured in {minutes} min {seconds} s", file=sys.stderr)
    text = render(report)
    print(text)
    if write:
        _write(Path(write), text)
        print(f"bench: wrote {write}", file=sys.stderr)
    if readme:
        path = Path(readme)
        try:
            updated = with_readme_table(path.read_text(encoding="utf-8"), report)
        except (OSError, ValueError) as error:
            print(f"bench: {readme}: {error}", file=sys.stderr)
            return 1
        _write(path, updated)
        print(f"bench: wrote the cost table into {readme}", file=sys.stderr)
    return 0
