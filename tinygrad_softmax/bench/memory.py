"""Memory: the peak of one step and the growth over many, each implementation in a fresh process."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..analytic import Layout
from .contenders import Implementation, implementations
from .machine import in_subprocess, limit_threads
from .problem import make_problem


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
    numpy_based = impl.kind in ("engine", "compiled", "numpy", "autograd")
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
            **in_subprocess(__name__, "memory_child", threads, impl.name, size, layout, steps, threads),
            "kind": impl.kind,
        }
        for impl in impls
        if size in impl.sizes
    ]
