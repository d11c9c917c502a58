"""``make bench``: what one training step costs, here and elsewhere.

The workload is one step of the seed's softmax classifier in float64: the
forward pass (``Z = X W + b`` in the row layout, ``Z = W X + b`` in the column
layout, then the mean cross-entropy with the max subtracted) and the backward
pass (the gradients of ``W`` and ``b``). It runs side by side in one process,
interleaved, after a warm-up, for

- this engine, with the loss composed from the primitive ops (the lecture's
  ``functional.cross_entropy``) and with the fused ``softmax_cross_entropy``;
- the NumPy closed form ``dZ = (P − Y)/N``, ``dW``, ``db`` written by hand, in a
  few formulations; the fastest one is the baseline, so the ratios are honest;
- PyTorch CPU autograd (from the same primitives, and its fused
  ``F.cross_entropy``), HIPS ``autograd`` and ``micrograd`` (tiny size only),
  when they are installed.

Every implementation's gradients are checked against the closed form before
anything is timed. Also measured: the peak memory of one cifar-like step (each
implementation in a fresh subprocess), the memory after 10,000 tiny steps, and
graph build + backward for long chains of elementwise ops.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import analytic
from .. import functional as F
from ..analytic import CLASS_AXIS, Layout
from ..lecture.classifier import logits
from ..tensor import Tensor

SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (4, 3, 3),
    "small": (64, 32, 10),
    "mnist-like": (256, 784, 10),
    "cifar-like": (1024, 3072, 100),
}
LAYOUTS: tuple[Layout, ...] = ("row", "column")

# The names the report and the targets use.
ENGINE = "engine (primitives)"
ENGINE_FUSED = "engine (fused op)"
TORCH = "PyTorch (primitives)"
TORCH_FUSED = "PyTorch F.cross_entropy"
AUTOGRAD = "HIPS autograd"
MICROGRAD = "micrograd"
NUMPY_PREFIX = "NumPy closed form"
COLLECTOR_PAUSED = "engine, cycle collector paused (diagnostic)"


class BenchmarkError(RuntimeError):
    """An implementation computed the wrong gradients, so its time would mean nothing."""


# ---------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Problem:
    """One batch of the classifier, with the closed-form gradients to check against."""

    size: str
    layout: Layout
    X: np.ndarray
    W: np.ndarray
    b: np.ndarray
    labels: np.ndarray
    dW: np.ndarray
    db: np.ndarray

    @property
    def axis(self) -> int:
        """The class axis of the logits: 1 in the row layout, 0 in the column layout."""
        return CLASS_AXIS[self.layout]

    @property
    def samples(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> int:
        return int(self.W.shape[1] if self.layout == "row" else self.W.shape[0])


def make_problem(size: str, layout: Layout, seed: int = 0) -> Problem:
    """Random float64 data of the named size; W small enough that the logits are O(1)."""
    N, D, C = SIZES[size]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=N)
    X = rng.normal(size=(N, D))
    W = rng.normal(scale=1 / math.sqrt(D), size=(D, C))
    b = rng.normal(scale=0.1, size=C)
    if layout == "column":
        X, W, b = np.ascontiguousarray(X.T), np.ascontiguousarray(W.T), b[:, None].copy()
    reference = analytic.linear_classifier(W, b, X, labels, layout)
    return Problem(size, layout, X, W, b, labels, reference.dW, reference.db)


StepFn = Callable[[], tuple[Any, Any]]  # one training step; returns (dW, db)


@dataclass(frozen=True)
class Implementation:
    """A way to run one step: ``make(problem)`` sets up parameters and returns the step."""

    name: str
    kind: str  # "engine", "numpy", "torch", "autograd" or "micrograd"
    make: Callable[[Problem], StepFn]
    sizes: tuple[str, ...] = tuple(SIZES)


# ---------------------------------------------------------------- this engine


def _engine(loss_fn: Callable[..., Tensor]) -> Callable[[Problem], StepFn]:
    def make(p: Problem) -> StepFn:
        X = Tensor(p.X, name="X")
        W = Tensor(p.W, requires_grad=True, name="W")
        b = Tensor(p.b, requires_grad=True, name="b")
        labels, axis, layout = p.labels, p.axis, p.layout

        def step() -> tuple[Any, Any]:
            W.grad = b.grad = None
            Z = logits(W, b, X, layout)
            loss_fn(Z, labels, axis=axis).backward()
            return W.grad, b.grad

        return step

    return make


# ---------------------------------------------------------------- NumPy, by hand


def _numpy_one_hot(p: Problem) -> StepFn:
    """The seed's formulas as written: P − Y with a one-hot Y (made once, like the data)."""
    X, W, b, axis, N = p.X, p.W, p.b, p.axis, p.samples
    Y = analytic.one_hot(p.labels, p.classes, axis)
    layout = p.layout
    column = layout == "column"

    def step() -> tuple[Any, Any]:
        Z = logits(W, b, X, layout)
        Z = Z - Z.max(axis=axis, keepdims=True)
        E = np.exp(Z)
        total = E.sum(axis=axis, keepdims=True)
        loss = -np.sum(Y * (Z - np.log(total))) / N  # noqa: F841  (the forward pass computes it)
        dZ = (E / total - Y) / N
        dW = dZ @ X.T if column else X.T @ dZ
        db = dZ.sum(axis=1, keepdims=True) if column else dZ.sum(axis=0)
        return dW, db

    return step


def _in_place_rows(X: np.ndarray, W: np.ndarray, b: np.ndarray, labels: np.ndarray) -> StepFn:
    """Z = X W + b (N×C) worked on in place: P, then P − Y, then (P − Y)/N in Z's own array."""
    N = len(labels)
    pick = (np.arange(N), labels)

    def step() -> tuple[Any, Any]:
        Z = X @ W
        Z += b
        Z -= Z.max(axis=1, keepdims=True)
        picked = Z[pick]
        np.exp(Z, out=Z)
        total = Z.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) - picked)  # noqa: F841
        Z /= total
        Z[pick] -= 1.0
        Z *= 1.0 / N
        return X.T @ Z, Z.sum(axis=0)

    return step


def _in_place_columns(X: np.ndarray, W: np.ndarray, b: np.ndarray, labels: np.ndarray) -> StepFn:
    """Z = W X + b (C×N) worked on in place, the seed's orientation."""
    N = len(labels)
    pick = (labels, np.arange(N))

    def step() -> tuple[Any, Any]:
        Z = W @ X
        Z += b
        Z -= Z.max(axis=0, keepdims=True)
        picked = Z[pick]
        np.exp(Z, out=Z)
        total = Z.sum(axis=0, keepdims=True)
        loss = np.mean(np.log(total[0]) - picked)  # noqa: F841
        Z /= total
        Z[pick] -= 1.0
        Z *= 1.0 / N
        return Z @ X.T, Z.sum(axis=1, keepdims=True)

    return step


def _numpy_in_place(p: Problem) -> StepFn:
    """In place, in the problem's own orientation."""
    if p.layout == "row":
        return _in_place_rows(p.X, p.W, p.b, p.labels)
    return _in_place_columns(p.X, p.W, p.b, p.labels)


def _numpy_in_place_transposed(p: Problem) -> StepFn:
    """In place, in the other orientation (operands passed as transposed views), results transposed back."""
    if p.layout == "row":
        inner = _in_place_columns(p.X.T, p.W.T, p.b[:, None], p.labels)

        def row_step() -> tuple[Any, Any]:
            dW, db = inner()
            return dW.T, db[:, 0]

        return row_step
    inner = _in_place_rows(p.X.T, p.W.T, p.b[:, 0], p.labels)

    def column_step() -> tuple[Any, Any]:
        dW, db = inner()
        return dW.T, db[:, None]

    return column_step


# ---------------------------------------------------------------- other engines


def _torch(fused: bool) -> Callable[[Problem], StepFn]:
    def make(p: Problem) -> StepFn:
        import torch
        import torch.nn.functional as TF

        X = torch.from_numpy(p.X)
        W = torch.from_numpy(p.W.copy()).requires_grad_()
        b = torch.from_numpy(p.b.copy()).requires_grad_()
        labels = torch.from_numpy(p.labels)
        index = labels.unsqueeze(p.axis)
        axis, layout = p.axis, p.layout
        column = layout == "column"

        def step() -> tuple[Any, Any]:
            W.grad = b.grad = None
            Z = logits(W, b, X, layout)
            if fused:
                loss = TF.cross_entropy(Z.T if column else Z, labels)
            else:
                shifted = Z - Z.detach().amax(dim=axis, keepdim=True)
                log_p = shifted - shifted.exp().sum(dim=axis, keepdim=True).log()
                loss = -log_p.gather(axis, index).mean()
            loss.backward()
            assert W.grad is not None and b.grad is not None
            return W.grad.numpy(), b.grad.numpy()

        return step

    return make


def _autograd(p: Problem) -> StepFn:
    import autograd
    import autograd.numpy as anp
    from autograd.tracer import getval

    X, labels, axis, column = p.X, p.labels, p.axis, p.layout == "column"
    pick = (labels, np.arange(p.samples)) if column else (np.arange(p.samples), labels)

    def loss(params: tuple[Any, Any]) -> Any:
        W, b = params
        Z = anp.dot(W, X) + b if column else anp.dot(X, W) + b
        shifted = Z - np.max(getval(Z), axis=axis, keepdims=True)  # a constant: the max is not differentiated
        log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=axis, keepdims=True))
        return -anp.mean(log_p[pick])

    gradient = autograd.grad(loss)
    params = (p.W.copy(), p.b.copy())

    def step() -> tuple[Any, Any]:
        dW, db = gradient(params)
        return dW, db

    return step


def _micrograd(p: Problem) -> StepFn:
    """micrograd has no exp or log, so they are added the way its own ops are written."""
    from micrograd.engine import Value

    def exp(v: Any) -> Any:
        out = Value(math.exp(v.data), (v,), "exp")

        def _backward() -> None:
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(v: Any) -> Any:
        out = Value(math.log(v.data), (v,), "log")

        def _backward() -> None:
            v.grad += out.grad / v.data

        out._backward = _backward
        return out

    row = p.layout == "row"
    X = (p.X if row else p.X.T).tolist()  # N×D
    W_rows = p.W if row else p.W.T  # D×C
    W = [[Value(float(w)) for w in line] for line in W_rows]
    b = [Value(float(v)) for v in p.b.ravel()]
    labels = [int(y) for y in p.labels]
    params = [v for line in W for v in line] + b
    N, C = p.samples, p.classes

    def step() -> tuple[Any, Any]:
        for v in params:
            v.grad = 0.0
        total_loss: Any = 0.0
        for i in range(N):
            z = [sum((x * line[c] for x, line in zip(X[i], W)), b[c]) for c in range(C)]
            top = max(zc.data for zc in z)
            shifted = [zc - top for zc in z]
            total_loss = total_loss + (log(sum(exp(s) for s in shifted)) - shifted[labels[i]])
        (total_loss * (1.0 / N)).backward()
        dW = np.array([[v.grad for v in line] for line in W])
        db = np.array([v.grad for v in b])
        return (dW, db) if row else (dW.T, db[:, None])

    return step


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def implementations() -> list[Implementation]:
    """Everything that can run here: this engine and NumPy always, the others when installed."""
    found = [
        Implementation(ENGINE, "engine", _engine(F.cross_entropy)),
        Implementation(ENGINE_FUSED, "engine", _engine(F.softmax_cross_entropy)),
        Implementation(f"{NUMPY_PREFIX}: one-hot (P − Y)/N", "numpy", _numpy_one_hot),
        Implementation(f"{NUMPY_PREFIX}: in place", "numpy", _numpy_in_place),
        Implementation(f"{NUMPY_PREFIX}: in place, transposed", "numpy", _numpy_in_place_transposed),
    ]
    if _installed("torch"):
        found += [
            Implementation(TORCH, "torch", _torch(fused=False)),
            Implementation(TORCH_FUSED, "torch", _torch(fused=True)),
        ]
    if _installed("autograd"):
        found.append(Implementation(AUTOGRAD, "autograd", _autograd))
    if _installed("micrograd"):
        found.append(Implementation(MICROGRAD, "micrograd", _micrograd, sizes=("tiny",)))
    return found


def check_gradients(impl: Implementation, step: StepFn, problem: Problem, rtol: float = 1e-8) -> None:
    """Raise :class:`BenchmarkError` unless ``step`` gives the closed form's dW and db."""
    results = step()
    for what, got, want in (("dW", results[0], problem.dW), ("db", results[1], problem.db)):
        got = np.asarray(got)
        if got.shape != want.shape:
            raise BenchmarkError(
                f"bench: {impl.name} gives {what} of shape {got.shape}, the closed form {want.shape} "
                f"({problem.size}, {problem.layout} layout)"
            )
        error = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))
        if not error <= rtol:
            raise BenchmarkError(
                f"bench: {impl.name} gives the wrong {what} ({problem.size}, {problem.layout} layout): "
                f"max |error| / max |{what}| = {error:.2e} > {rtol:.0e}; refusing to time it"
            )


# ---------------------------------------------------------------- timing


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
    """The timings of every implementation on one size and layout."""

    size: str
    layout: Layout
    timings: dict[str, Timing]
    kinds: dict[str, str]

    @property
    def baseline(self) -> str:
        """The fastest hand-written NumPy formulation."""
        numpy_names = [name for name, kind in self.kinds.items() if kind == "numpy"]
        return min(numpy_names, key=lambda name: self.timings[name].median)

    def ratio(self, name: str) -> float:
        return self.timings[name].median / self.timings[self.baseline].median


def time_size(
    size: str, layout: Layout, impls: Sequence[Implementation], repeats: int, sample_seconds: float
) -> SizeResult:
    """Check every implementation's gradients on one problem, then time them interleaved."""
    problem = make_problem(size, layout)
    steps: dict[str, StepFn] = {}
    kinds: dict[str, str] = {}
    for impl in impls:
        if size not in impl.sizes:
            continue
        step = impl.make(problem)
        check_gradients(impl, step, problem)
        steps[impl.name], kinds[impl.name] = step, impl.kind
    return SizeResult(size, layout, interleaved_timings(steps, repeats, sample_seconds), kinds)


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
    if _installed("torch"):
        jobs.append(("PyTorch", lengths, repeats))
    if _installed("micrograd"):
        shortest = min(lengths)
        jobs.append(("micrograd", [shortest], {shortest: 1}))
    results = []
    for name, job_lengths, job_repeats in jobs:
        for found in _in_subprocess("chain_child", threads, name, list(job_lengths), job_repeats, threads):
            results.append(ChainResult(found["name"], found["length"], found["seconds"], found["failure"]))
    return sorted(results, key=lambda c: c.length)


def _in_subprocess(function: str, threads: int, *args: Any) -> Any:
    """``function(*args)`` from this module, run in a fresh interpreter; its result comes back as JSON."""
    env = {**os.environ, **_thread_env(threads)}
    code = (
        f"import json; from tinygrad_softmax.bench import {function}; "
        f"print(json.dumps({function}(*{args!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"bench: {function}{args!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- memory


def _peak_rss_kib() -> float:
    """The peak resident set so far: VmHWM on Linux (which ``_reset_peak_rss`` resets), else ru_maxrss."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return float(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else float(peak)  # bytes on macOS, KiB elsewhere


def _current_rss_kib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc), so the step's peak is not hidden in it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> None:
    """Start the peak resident set afresh (Linux), so a peak from the imports cannot hide the step's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def memory_child(name: str, size: str, layout: Layout, steps: int, threads: int) -> dict[str, Any]:
    """Run in a fresh interpreter: peak memory of one step of ``size``, then growth over tiny steps.

    Peak: the process's peak resident set (``ru_maxrss``) after the step minus
    the resident set before it, taken after the imports, the data, a tiny
    warm-up step (which runs the library's lazy set-up), ``malloc_trim`` and a
    reset of the peak (``/proc/self/clear_refs``). For implementations
    whose arrays NumPy allocates, also tracemalloc's exact peak of the bytes
    allocated during a second step. Growth: the live bytes tracemalloc sees
    appear over ``steps`` tiny steps, after ``steps`` more have filled the caches.
    """
    impl = next(i for i in implementations() if i.name == name)
    limit_threads(threads, with_torch=impl.kind == "torch")
    impl.make(make_problem("tiny", layout))()
    problem = make_problem(size, layout)
    step = impl.make(problem)
    gc.collect()
    _release_free_memory()
    _reset_peak_rss()
    before = _current_rss_kib() or _peak_rss_kib()
    step()
    peak_rss = _peak_rss_kib() - before
    numpy_based = impl.kind in ("engine", "numpy", "autograd")
    traced_peak = None
    if numpy_based:
        tracemalloc.start()
        step()
        traced_peak = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
    del step, problem
    tiny = impl.make(make_problem("tiny", layout))
    # Two rounds of `steps` steps. In the first, the caches that NumPy, Python and
    # the libraries keep fill up (bounded, once per process); a leak goes on
    # growing in the second, which is the one judged.
    tracemalloc.start()
    live_start = tracemalloc.get_traced_memory()[0]
    for _ in range(steps):
        tiny()
    gc.collect()
    rss_middle = _current_rss_kib()
    live_middle = tracemalloc.get_traced_memory()[0]
    for _ in range(steps):
        tiny()
    gc.collect()
    live_end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_end = _current_rss_kib()
    return {
        "name": name,
        "peak_rss_kib": peak_rss,
        "traced_peak_kib": traced_peak,
        "warmup_traced_kib": (live_middle - live_start) / 1024 if numpy_based else None,
        "growth_traced_kib": (live_end - live_middle) / 1024 if numpy_based else None,
        "growth_rss_kib": None if rss_middle is None or rss_end is None else rss_end - rss_middle,
        "steps": steps,
    }


def measure_memory(
    impls: Sequence[Implementation], size: str, layout: Layout, steps: int, threads: int
) -> list[dict[str, Any]]:
    """:func:`memory_child` for each implementation, each in its own subprocess."""
    return [
        {
            **_in_subprocess("memory_child", threads, impl.name, size, layout, steps, threads),
            "kind": impl.kind,
        }
        for impl in impls
        if size in impl.sizes
    ]


# ---------------------------------------------------------------- the machine


def _thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


_thread_limits: list[Any] = []  # keeps threadpoolctl's limit in force for the whole run


def limit_threads(threads: int, with_torch: bool = True) -> str:
    """Make NumPy's BLAS (and PyTorch, if ``with_torch``) use ``threads`` threads; say how that was done."""
    if with_torch and _installed("torch"):
        import torch

        torch.set_num_threads(threads)
    if _installed("threadpoolctl"):
        from threadpoolctl import threadpool_limits

        _thread_limits.append(threadpool_limits(limits=threads, user_api="blas"))
        return "threadpoolctl"
    configured = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return f"environment (OPENBLAS_NUM_THREADS={configured}; threadpoolctl is not installed)"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(threads: int, how: str) -> dict[str, str]:
    """CPU, BLAS, threads and versions, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    blas_threads = "unknown"
    if _installed("threadpoolctl"):
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            blas = f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            blas_threads = ", ".join(str(i["num_threads"]) for i in infos)
    else:
        try:
            config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            blas = f"{config['name']} {config['version']}"
        except (TypeError, KeyError):
            pass
    facts = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{cpu}, {os.cpu_count()} logical CPUs (shared with other work)",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "NumPy": np.__version__,
        "BLAS": blas,
        "threads": f"{threads} requested; NumPy BLAS threads in use: {blas_threads} (set via {how})",
    }
    if _installed("torch"):
        import torch

        facts["threads"] += f"; PyTorch threads: {torch.get_num_threads()}"
    facts["PyTorch"] = _version("torch")
    facts["HIPS autograd"] = _version("autograd")
    facts["micrograd"] = _version("micrograd")
    return facts


# ---------------------------------------------------------------- the run


@dataclass
class Settings:
    quick: bool = False
    threads: int = 1
    sizes: tuple[str, ...] = tuple(SIZES)
    repeats: int = 41
    sample_seconds: float = 0.002
    chain_lengths: tuple[int, int] = (1_000, 100_000)
    chain_repeats: dict[int, int] = field(default_factory=lambda: {1_000: 21, 100_000: 3})
    memory_size: str = "cifar-like"
    memory_steps: int = 10_000

    @staticmethod
    def for_mode(quick: bool, threads: int = 1) -> Settings:
        if not quick:
            return Settings(threads=threads)
        return Settings(
            quick=True,
            threads=threads,
            sizes=("tiny", "small"),
            repeats=5,
            sample_seconds=0.0002,
            chain_lengths=(100, 1_000),
            chain_repeats={100: 3, 1_000: 3},
            memory_size="small",
            memory_steps=2_000,
        )


@dataclass
class Report:
    settings: Settings
    facts: dict[str, str]
    sizes: list[SizeResult]
    chains: list[ChainResult]
    memory: list[dict[str, Any]]


def run(
    settings: Settings, impls: Sequence[Implementation] | None = None, log: Callable[[str], None] = print
) -> Report:
    """Everything the report needs: timings per size and layout, chains, memory."""
    how = limit_threads(settings.threads)
    impls = list(implementations() if impls is None else impls)
    facts = machine_facts(settings.threads, how)
    sizes = []
    for size in settings.sizes:
        for layout in LAYOUTS:
            log(f"bench: {size} {SIZES[size]}, {layout} layout")
            sizes.append(time_size(size, layout, impls, settings.repeats, settings.sample_seconds))
    log(f"bench: chains of {settings.chain_lengths[0]:,} and {settings.chain_lengths[1]:,} ops")
    chains = time_chains(settings.chain_lengths, settings.chain_repeats, settings.threads)
    log(
        f"bench: memory, {settings.memory_size} step and {settings.memory_steps:,} tiny steps, "
        "each implementation in its own process"
    )
    memory = measure_memory(
        [i for i in impls if i.kind != "micrograd"],
        settings.memory_size,
        "row",
        settings.memory_steps,
        settings.threads,
    )
    return Report(settings, facts, sizes, chains, memory)


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class Target:
    claim: str
    measured: str
    met: bool | None  # None: could not be measured here (a library is missing)


def _faster(result: SizeResult, ours: str, theirs: str) -> Target:
    claim = f"{result.size}, {result.layout}: {ours} faster than {theirs}"
    if theirs not in result.timings:
        return Target(claim, f"{theirs} not installed", None)
    ratio = result.timings[ours].median / result.timings[theirs].median
    return Target(claim, f"{ratio:.3f}× its time", ratio < 1)


def targets(report: Report) -> list[Target]:
    """The targets of the performance work, each judged on this run's medians."""
    found = []
    for result in report.sizes:
        large = result.size in ("mnist-like", "cifar-like")
        limit = 1.05 if large else 3.0
        ratio = result.ratio(ENGINE)
        found.append(
            Target(
                f"{result.size}, {result.layout}: {ENGINE} ≤ {limit:g} × closed form",
                f"{ratio:.2f}×",
                ratio <= limit,
            )
        )
        found += [_faster(result, ENGINE, TORCH), _faster(result, ENGINE, AUTOGRAD)]
        if not large:
            if result.size == "tiny":
                found.append(_faster(result, ENGINE, MICROGRAD))
            found.append(_faster(result, ENGINE_FUSED, TORCH_FUSED))
    chains = {(c.name, c.length): c for c in report.chains}
    short, long = report.settings.chain_lengths
    ours_long, ours_short = chains[("engine", long)], chains[("engine", short)]
    assert ours_long.seconds is not None and ours_short.seconds is not None
    torch_long = chains.get(("PyTorch", long))
    claim = f"chain of {long:,} ops: build + backward faster than PyTorch"
    if torch_long is None or torch_long.seconds is None:
        found.append(Target(claim, "PyTorch not installed", None))
    else:
        ratio = ours_long.seconds / torch_long.seconds
        found.append(
            Target(
                claim, f"{ours_long.seconds:.3f} s vs {torch_long.seconds:.3f} s ({ratio:.3f}×)", ratio < 1
            )
        )
    per_node = (ours_long.seconds / long) / (ours_short.seconds / short)
    found.append(
        Target(
            f"time per node, {long:,}-op chain ≤ 1.5 × {short:,}-op chain",
            f"{per_node:.2f}×",
            per_node <= 1.5,
        )
    )
    memory = {m["name"]: m for m in report.memory}
    closed = min((m for m in report.memory if m["kind"] == "numpy"), key=lambda m: m["peak_rss_kib"])
    for name in (ENGINE, ENGINE_FUSED):
        ours = memory[name]["peak_rss_kib"]
        ratio = ours / max(closed["peak_rss_kib"], 1.0)
        found.append(
            Target(
                f"peak resident memory of a {report.settings.memory_size} step: {name} ≤ 1.15 × closed form",
                f"{ratio:.2f}× ({ours / 1024:.1f} MiB vs {closed['peak_rss_kib'] / 1024:.1f} MiB, "
                f"{closed['name'].removeprefix(NUMPY_PREFIX + ': ')})",
                ratio <= 1.15,
            )
        )
        growth = memory[name]["growth_traced_kib"]
        counted = report.settings.memory_steps
        found.append(
            Target(
                f"{name}: no memory growth over {counted:,} tiny steps",
                f"{growth:+.1f} KiB live after {counted:,} steps more",
                growth * 1024 < counted,  # less than a byte per step: nothing kept step after step
            )
        )
    return found


def _us(seconds: float) -> str:
    micro = seconds * 1e6
    return f"{micro:,.1f}" if micro < 100 else f"{micro:,.0f}"


def render(report: Report) -> str:
    """The Markdown report: machine, step table, chains, memory, targets."""
    s = report.settings
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`tinygrad-softmax bench{' --quick' if s.quick else ''}`). "
        "**These figures come from a shared 2-core machine, with other work running; the ratios "
        "between implementations measured in the same run, not the absolute times, are the claim.**",
        "",
        "Workload: one training step of the softmax classifier in float64: forward "
        "(`Z = X W + b` in the row layout, `Z = W X + b` in the column layout, then the mean "
        "cross-entropy with the row max subtracted) and backward (the gradients of `W` and `b`). "
        "All implementations run in one process, interleaved round by round after a warm-up; "
        f"{s.repeats} rounds, each timing enough calls to last ≥ {s.sample_seconds * 1e3:g} ms. "
        "Every implementation's gradients were checked against the closed form before timing. "
        "The closed form (×1.00) is the fastest of the hand-written NumPy formulations in that row group.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in report.facts.items()],
        "",
        "## One training step",
        "",
        "| size (N, D, C) | layout | implementation | median µs | p25–p75 µs | × closed form |",
        "|---|---|---|---:|---:|---:|",
    ]
    for result in report.sizes:
        for name, timing in sorted(result.timings.items(), key=lambda item: item[1].median):
            label = f"**{name}**" if name == result.baseline else name
            lines.append(
                f"| {result.size} {SIZES[result.size]} | {result.layout} | {label} | {_us(timing.median)} | "
                f"{_us(timing.p25)}–{_us(timing.p75)} | {result.ratio(name):.2f} |"
            )
    lines += [
        "",
        "## Long chains of elementwise ops",
        "",
        "Graph build + backward of `y = y * 1.0001` and `y = y + 0.001` in turn, on a vector of 8, "
        f"seeded with ones; median of {s.chain_repeats[s.chain_lengths[0]]} runs of the shorter chain "
        f"and {s.chain_repeats[s.chain_lengths[1]]} of the longer. Each implementation runs in a fresh "
        "process of its own: Python's cycle collector scans every object in a process, so one "
        "library's objects would slow down another's graph build.",
        "",
        "| implementation | ops | median s | µs per op |",
        "|---|---:|---:|---:|",
    ]
    for chain in report.chains:
        if chain.seconds is None:
            lines.append(f"| {chain.name} | {chain.length:,} | fails: {chain.failure.split(':')[0]} | |")
        else:
            lines.append(
                f"| {chain.name} | {chain.length:,} | {chain.seconds:.3f} | "
                f"{chain.seconds / chain.length * 1e6:.2f} |"
            )
    lines += [
        "",
        f"## Memory ({s.memory_size}, row layout)",
        "",
        "Each implementation in a fresh subprocess. *Peak RSS*: the process's peak resident set "
        "(`VmHWM`; `ru_maxrss` where there is no /proc) after one step minus its resident set before "
        "it, measured after the imports, the data, a tiny warm-up step, `malloc_trim` and a reset of "
        "the peak (`/proc/self/clear_refs`). "
        "*Peak allocated*: tracemalloc's peak of the bytes allocated during a second step (exact for "
        "NumPy arrays and Python objects; not available for PyTorch). The peak-memory targets are "
        "judged on peak RSS against the smallest closed form. "
        f"*Growth*: live bytes (tracemalloc) added over a first round of {s.memory_steps:,} tiny steps, "
        "in which the bounded caches of NumPy and Python fill up, and over a second round of as many, "
        "which is judged (a leak keeps growing); and the resident set added in the second round.",
        "",
        "| implementation | peak RSS MiB | peak allocated MiB | live KiB, first round | "
        "live KiB, second round | RSS KiB, second round |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in sorted(report.memory, key=lambda m: m["peak_rss_kib"]):

        def fmt(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
            return "—" if value is None else f"{value / scale:,.{digits}f}"

        lines.append(
            f"| {m['name']} | {fmt(m['peak_rss_kib'], 1024)} | {fmt(m['traced_peak_kib'], 1024)} | "
            f"{fmt(m['warmup_traced_kib'], 1, 1)} | {fmt(m['growth_traced_kib'], 1, 1)} | "
            f"{fmt(m['growth_rss_kib'], 1, 0)} |"
        )
    lines += ["", "## Targets", "", "| target | this run | |", "|---|---|---|"]
    for target in targets(report):
        verdict = {True: "met", False: "**missed**", None: "not measured"}[target.met]
        lines.append(f"| {target.claim} | {target.measured} | {verdict} |")
    why = explanations(report)
    if why:
        lines += ["", "## Why the missed targets are missed", "", *[f"- {note}" for note in why]]
    return "\n".join(lines) + "\n"


def _graph_nodes() -> int:
    """How many nodes the backward walk visits for one step of the composed loss."""
    from ..engine import topological_order
    from ..lecture.classifier import build_classifier

    return len(topological_order(build_classifier("row", backward=False).loss))


def explanations(report: Report) -> list[str]:
    """For each kind of missed target, the reason, with this run's own figures."""
    missed = [t.claim for t in targets(report) if t.met is False]
    notes = []
    first = report.sizes[0]
    fixed = first.timings[ENGINE].median - first.timings[first.baseline].median
    if any("× closed form" in claim and "memory" not in claim for claim in missed):
        text = (
            f"**Step time.** On top of the NumPy arithmetic, the engine does Python work for each of the "
            f"{_graph_nodes()} nodes of the composed loss, forward and backward (make the op, record it, "
            f"walk it, store each gradient): about {_us(fixed)} µs per step here (engine minus closed form "
            f"at the {first.size} size). The closed form is a dozen NumPy calls in one function."
        )
        for result in report.sizes:
            if result.size in ("mnist-like", "cifar-like") and result.ratio(ENGINE) > 1.05:
                share = fixed / result.timings[result.baseline].median
                text += (
                    f" At {result.size} ({result.layout}) that fixed cost alone is {share:.0%} of the closed "
                    f"form's step."
                )
                break
        notes.append(text)
        for result in report.sizes:
            plain, transposed = f"{NUMPY_PREFIX}: in place", f"{NUMPY_PREFIX}: in place, transposed"
            limit = 1.05 if result.size in ("mnist-like", "cifar-like") else 3.0
            if (
                result.layout == "column"
                and result.baseline == transposed
                and plain in result.timings
                and result.ratio(ENGINE) > limit
            ):
                notes.append(
                    f"**Column layout, {result.size}.** The fastest closed form there ({result.baseline}) "
                    f"multiplies Xᵀ Wᵀ instead of W X: the same numbers, but OpenBLAS is faster in that "
                    f"orientation ({_us(result.timings[result.baseline].median)} µs against "
                    f"{_us(result.timings[plain].median)} µs for the same code computing W X). The engine "
                    "multiplies W @ X as the lecture writes it."
                )
                break
    rows = {(r.size, r.layout): r for r in report.sizes}
    for result in report.sizes:
        row = rows.get((result.size, "row"))
        if (
            result.layout == "column"
            and row is not None
            and TORCH in result.timings
            and TORCH in row.timings
            and f"{result.size}, column: {ENGINE} faster than {TORCH}" in missed
        ):
            notes.append(
                f"**Against PyTorch in the column layout, {result.size}.** The step is mostly the two "
                "matrix products, and PyTorch's BLAS has the opposite preference to NumPy's OpenBLAS: "
                f"{TORCH} takes {_us(result.timings[TORCH].median)} µs in the column layout against "
                f"{_us(row.timings[TORCH].median)} µs in the row layout, while the engine takes "
                f"{_us(result.timings[ENGINE].median)} µs against {_us(row.timings[ENGINE].median)} µs."
            )
    memory = {m["name"]: m for m in report.memory}
    if any("memory of a" in claim for claim in missed) and ENGINE in memory:
        closed = min((m for m in report.memory if m["kind"] == "numpy"), key=lambda m: m["peak_rss_kib"])
        notes.append(
            "**Peak memory.** The composed loss keeps every intermediate of the forward pass for "
            "the backward (the matmul output, Z, Z − max, exp, log-softmax: five N×C arrays) and, "
            "as the specification requires so that Z.grad can be shown next to P − Y, stores the "
            "gradient of each one: about ten N×C arrays plus dW. The in-place closed form reuses one "
            "N×C array for Z, P and dZ. The fused op keeps the matmul output, Z and P and two "
            "gradients. Allocated at peak (tracemalloc): "
            + ", ".join(
                f"{name} {memory[name]['traced_peak_kib'] / 1024:.1f} MiB"
                for name in (ENGINE, ENGINE_FUSED, closed["name"])
                if name in memory and memory[name]["traced_peak_kib"] is not None
            )
            + "."
        )
    chains = {(c.name, c.length): c.seconds for c in report.chains}
    short, long = report.settings.chain_lengths
    if any("time per node" in claim for claim in missed):
        paused_short, paused_long = (
            chains.get((COLLECTOR_PAUSED, short)),
            chains.get((COLLECTOR_PAUSED, long)),
        )
        if paused_short and paused_long:
            notes.append(
                "**Time per node on long chains.** Every op makes a few Python objects that Python's cycle "
                "collector tracks; as the graph grows, the collector's full passes rescan all of it. With "
                f"the collector paused (the diagnostic row), a node of the {long:,}-op chain costs "
                f"{(paused_long / long) / (paused_short / short):.2f} × a node of the {short:,}-op chain. "
                "The backward walk already pauses the collector (it makes no cycles); the graph is built by "
                "the user's own code, where the engine does not switch it off."
            )
    ours, theirs = chains.get(("engine", long)), chains.get(("PyTorch", long))
    if any("faster than PyTorch" in claim and "chain" in claim for claim in missed) and ours and theirs:
        notes.append(
            f"**Long chain against PyTorch.** PyTorch records its graph in C++; here each op is Python: "
            f"{ours / long * 1e6:.2f} µs per op against PyTorch's {theirs / long * 1e6:.2f} µs."
        )
    return notes


def main(quick: bool = False, write: str | None = None, threads: int = 1) -> int:
    """Run the benchmark, print the Markdown report, and write it to ``write`` if given."""
    settings = Settings.for_mode(quick, threads)
    try:
        report = run(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchmarkError as error:
        print(error, file=sys.stderr)
        return 1
    text = render(report)
    print(text)
    if write:
        Path(write).parent.mkdir(parents=True, exist_ok=True)
        Path(write).write_text(text, encoding="utf-8")
        print(f"bench: wrote {write}", file=sys.stderr)
    return 0
