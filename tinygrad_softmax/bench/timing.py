"""Timing: one step of every implementation, interleaved; and long chains, each in its own process."""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import orientation
from ..analytic import Layout
from ..tensor import Tensor
from .contenders import COLLECTOR_PAUSED, Implementation, check_gradients, implementations
from .machine import in_subprocess, installed, limit_threads, thread_facts
from .problem import LAYOUTS, SIZES, BenchmarkError, StepFn, make_problem


@dataclass(frozen=True)
class Timing:
    """Seconds per step: the median and the quartiles over the repeats."""

    median: float
    p25: float
    p75: float

    @staticmethod
    def of(samples: Sequence[float]) -> Timing:
        p25, median, p75 = np.percentile(samples, [25, 50, 75])
        return Timing(float(median), float(p25), float(p75))


def interleaved_timings(steps: dict[str, StepFn], repeats: int, sample_seconds: float) -> dict[str, Timing]:
    """Time every step in turn, round after round, so that all of them see the same machine.

    A warm-up call of each measures how many calls fill ``sample_seconds``;
    then each round times that many calls of every step, starting with a
    different one each round.
    """
    calls = {}
    for name, step in steps.items():
        step()
        start = time.perf_counter()
        step()
        calls[name] = max(1, math.ceil(sample_seconds / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            step, n = steps[name], calls[name]
            start = time.perf_counter()
            for _ in range(n):
                step()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: Timing.of(values) for name, values in samples.items()}


@dataclass
class SizeResult:
    """The timings of every implementation on one size and layout, with ``threads`` BLAS threads."""

    size: str
    layout: Layout
    timings: dict[str, Timing]
    kinds: dict[str, str]
    threads: int = 1

    def to_json(self) -> dict[str, Any]:
        timings = {name: [t.median, t.p25, t.p75] for name, t in self.timings.items()}
        return {
            "size": self.size,
            "layout": self.layout,
            "threads": self.threads,
            "timings": timings,
            "kinds": self.kinds,
        }

    @staticmethod
    def from_json(found: dict[str, Any]) -> SizeResult:
        timings = {name: Timing(*values) for name, values in found["timings"].items()}
        return SizeResult(found["size"], found["layout"], timings, found["kinds"], found["threads"])

    @property
    def baseline(self) -> str:
        """The fastest hand-written NumPy formulation."""
        numpy_names = [name for name, kind in self.kinds.items() if kind == "numpy"]
        return min(numpy_names, key=lambda name: self.timings[name].median)

    def ratio(self, name: str) -> float:
        return self.timings[name].median / self.timings[self.baseline].median


def time_size(
    size: str,
    layout: Layout,
    impls: Sequence[Implementation],
    repeats: int,
    sample_seconds: float,
    threads: int = 1,
) -> SizeResult:
    """Check every implementation's gradients on one problem, then time them interleaved.

    ``threads`` only labels the result: the process's threads are set by :func:`step_child`.
    """
    problem = make_problem(size, layout)
    steps: dict[str, StepFn] = {}
    kinds: dict[str, str] = {}
    for impl in impls:
        if size not in impl.sizes:
            continue
        # Each implementation gets arrays of its own: one that shared the arrays another
        # had just read would find them warm in the cache, and one that copied them
        # (the engine's Tensor does) would not.
        step = impl.make(problem.copy())
        check_gradients(impl, step, problem)
        steps[impl.name], kinds[impl.name] = step, impl.kind
    return SizeResult(size, layout, interleaved_timings(steps, repeats, sample_seconds), kinds, threads)


def step_child(threads: int, repeats: dict[str, int], sample_seconds: float) -> dict[str, Any]:
    """Run in a fresh interpreter pinned to ``threads`` CPUs: every size (with its rounds) and layout.

    Returns the timings and what the process really ran with (CPUs, BLAS, PyTorch
    and JAX threads), or the error of an implementation that failed its gradient check.
    """
    how = limit_threads(threads)
    orientation.measure_afresh()  # this process's BLAS and threads, measured now (and cached)
    impls = implementations()
    results = []
    try:
        for size, rounds in repeats.items():
            for layout in LAYOUTS:
                print(
                    f"bench: {size} {SIZES[size]}, {layout} layout, {_threads(threads)}",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(time_size(size, layout, impls, rounds, sample_seconds, threads).to_json())
    except BenchmarkError as error:
        return {"error": str(error)}
    choices = [{"key": key, "why": choice.why()} for key, choice in orientation.chosen().items()]
    for choice in choices:
        print(f"bench: matmul {choice['key']}: {choice['why']}", file=sys.stderr, flush=True)
    return {"threads": threads, "facts": thread_facts(threads, how), "sizes": results, "choices": choices}


def _threads(threads: int) -> str:
    return f"{threads} BLAS thread{'' if threads == 1 else 's'}"


# ---------------------------------------------------------------- long chains


def _engine_chain(n: int) -> float:
    """Seconds to build a chain of ``n`` elementwise ops (× and + in turn) and run its backward."""
    start = time.perf_counter()
    x = Tensor(np.ones(8), requires_grad=True)
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 2 == 0 else y + 0.001
    y.backward(np.ones(8))
    seconds = time.perf_counter() - start
    assert x.grad is not None
    if not np.allclose(x.grad, 1.0001 ** ((n + 1) // 2)):
        raise BenchmarkError(f"bench: the engine's gradient through a chain of {n} ops is wrong: {x.grad[0]}")
    return seconds


def _engine_chain_paused(n: int) -> float:
    """The same, with Python's cycle collector paused: shows what the collector costs (not a target)."""
    gc.disable()
    try:
        return _engine_chain(n)
    finally:
        gc.enable()


def _torch_chain(n: int) -> float:
    import torch

    start = time.perf_counter()
    x = torch.ones(8, dtype=torch.float64, requires_grad=True)
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 2 == 0 else y + 0.001
    y.backward(torch.ones(8, dtype=torch.float64))
    seconds = time.perf_counter() - start
    assert x.grad is not None
    if not np.allclose(x.grad.numpy(), 1.0001 ** ((n + 1) // 2)):
        raise BenchmarkError(f"bench: PyTorch's gradient through a chain of {n} ops is wrong")
    return seconds


def _micrograd_chain(n: int) -> float:
    from micrograd.engine import Value

    start = time.perf_counter()
    x = Value(1.0)
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 2 == 0 else y + 0.001
    y.backward()
    return time.perf_counter() - start


@dataclass
class ChainResult:
    """Median seconds of graph build + backward for a chain of ``length`` ops, or why it failed."""

    name: str
    length: int
    seconds: float | None
    failure: str = ""


def chain_child(
    name: str, lengths: Sequence[int], repeats: dict[int, int], threads: int
) -> list[dict[str, Any]]:
    """Run in a fresh interpreter: the median seconds of ``name``'s chains of each length.

    A process of its own for each implementation, because Python's cycle
    collector scans every object in the process: PyTorch's own Python objects,
    once imported, would slow down the engine's graph build, and the other way round.
    """
    limit_threads(threads, with_torch=name == "PyTorch")
    runners: dict[str, Callable[[int], float]] = {
        "engine": _engine_chain,
        COLLECTOR_PAUSED: _engine_chain_paused,
        "PyTorch": _torch_chain,
        "micrograd": _micrograd_chain,
    }
    run = runners[name]
    results = []
    for length in lengths:
        samples = []
        try:
            for _ in range(repeats[length]):
                samples.append(run(length))
                gc.collect()  # free the last graph now, outside the next measurement
        except RecursionError as error:
            results.append(
                {"name": name, "length": length, "seconds": None, "failure": f"RecursionError: {error}"}
            )
            break
        results.append({"name": name, "length": length, "seconds": float(np.median(samples)), "failure": ""})
    return results


def time_chains(lengths: Sequence[int], repeats: dict[int, int], threads: int = 1) -> list[ChainResult]:
    """The engine against PyTorch, and micrograd on the shortest chain; each in its own process."""
    jobs: list[tuple[str, Sequence[int], dict[int, int]]] = [
        ("engine", lengths, repeats),
        (COLLECTOR_PAUSED, lengths, repeats),
    ]
    if installed("torch"):
        jobs.append(("PyTorch", lengths, repeats))
    if installed("micrograd"):
        shortest = min(lengths)
        jobs.append(("micrograd", [shortest], {shortest: 1}))
    results = []
    for name, job_lengths, job_repeats in jobs:
        for found in in_subprocess(
            __name__, "chain_child", threads, name, list(job_lengths), job_repeats, threads
        ):
            results.append(ChainResult(found["name"], found["length"], found["seconds"], found["failure"]))
    return sorted(results, key=lambda c: c.length)
