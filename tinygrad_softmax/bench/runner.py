"""One run of the benchmark: its settings, and everything it measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import timing
from .contenders import implementations
from .machine import blas_kernel, in_subprocess, machine_facts, older_kernel
from .memory import measure_memory
from .problem import SIZES, BenchmarkError
from .timing import ChainResult, SizeResult, time_chains

# The BLAS thread counts the step is measured with, each in a process of its own.
THREADS = (1, 2)


@dataclass
class Settings:
    quick: bool = False
    threads: tuple[int, ...] = THREADS
    sizes: tuple[str, ...] = tuple(SIZES)
    repeats: int = 41
    # Fewer rounds where one step lasts tens of milliseconds: the whole run stays within a few minutes.
    fewer_repeats: dict[str, int] = field(default_factory=lambda: {"cifar-like": 21})
    sample_seconds: float = 0.002
    chain_lengths: tuple[int, int] = (1_000, 100_000)
    chain_repeats: dict[int, int] = field(default_factory=lambda: {1_000: 21, 100_000: 3})
    memory_size: str = "cifar-like"
    memory_steps: int = 10_000
    # The step also with an older OpenBLAS kernel forced (Haswell, or Sandybridge where Haswell is native).
    older_kernel: bool = True

    def repeats_for(self, size: str) -> int:
        """The rounds of interleaved timing at ``size``."""
        return min(self.repeats, self.fewer_repeats.get(size, self.repeats))

    @property
    def side_threads(self) -> int:
        """The threads of the long chains and the memory runs (Python work, not BLAS): the fewest."""
        return min(self.threads)

    @staticmethod
    def for_mode(quick: bool, threads: tuple[int, ...] = THREADS) -> Settings:
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
    # What each thread count's processes ran with: their CPUs, BLAS, PyTorch and JAX threads.
    thread_facts: dict[int, dict[str, str]] = field(default_factory=dict)
    # The way round of each product the engine chose with each thread count, and why (orientation.py).
    choices: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    # The OpenBLAS kernel the steps ran with, and how it was chosen ("native" or "forced").
    kernel: str = ""
    # The same steps with the older kernel forced (chains and memory are measured once, natively).
    forced: Report | None = None


def run(settings: Settings, log: Callable[[str], None] = print) -> Report:
    """Everything the report needs: timings per kernel, thread count, size and layout; chains; memory."""
    facts = machine_facts()
    native = blas_kernel()
    facts["OpenBLAS kernel"] = (
        f"{native or 'unknown'} (its own choice for this CPU: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
        "unset for the benchmark)"
    )
    sizes, thread_facts, choices = _kernel_steps(settings, None, log)
    forced = None
    if settings.older_kernel and native:
        older = older_kernel(native)
        log(f"bench: the step again with OPENBLAS_CORETYPE={older}")
        older_sizes, older_facts, older_choices = _kernel_steps(settings, older, log)
        ran = _ran_with(older_facts)
        forced = Report(
            settings, facts, older_sizes, [], [], older_facts, older_choices, f"{ran or older}, forced"
        )
        if ran and ran != older:
            forced.kernel = f"{ran} (asked for {older}: this OpenBLAS cannot run it here)"
    side = settings.side_threads
    log(f"bench: chains of {settings.chain_lengths[0]:,} and {settings.chain_lengths[1]:,} ops")
    chains = time_chains(settings.chain_lengths, settings.chain_repeats, side)
    log(
        f"bench: memory, {settings.memory_size} step and {settings.memory_steps:,} tiny steps, "
        "each implementation in its own process"
    )
    memory = measure_memory(
        [i for i in implementations() if i.kind not in ("micrograd", "jax")],
        settings.memory_size,
        "row",
        settings.memory_steps,
        side,
    )
    return Report(
        settings,
        facts,
        sizes,
        chains,
        memory,
        thread_facts,
        choices,
        f"{native or 'unknown'}, native",
        forced,
    )


def _ran_with(thread_facts: dict[int, dict[str, str]]) -> str:
    """The kernel the step processes report (threadpoolctl), or "" where none was reported."""
    for facts in thread_facts.values():
        found = facts.get("OpenBLAS kernel", "")
        if found:
            return found
    return ""


def _kernel_steps(
    settings: Settings, kernel: str | None, log: Callable[[str], None]
) -> tuple[list[SizeResult], dict[int, dict[str, str]], dict[int, list[dict[str, str]]]]:
    sizes: list[SizeResult] = []
    thread_facts: dict[int, dict[str, str]] = {}
    choices: dict[int, list[dict[str, str]]] = {}
    for threads in settings.threads:
        found, thread_facts[threads], choices[threads] = _steps(settings, threads, kernel)
        sizes += found
    return sizes, thread_facts, choices


def _steps(
    settings: Settings, threads: int, kernel: str | None = None
) -> tuple[list[SizeResult], dict[str, str], list[dict[str, str]]]:
    """Every contender timed in a fresh process pinned to ``threads`` CPUs; and what that process ran with."""
    found = in_subprocess(
        timing.__name__,
        "step_child",
        threads,
        threads,
        {size: settings.repeats_for(size) for size in settings.sizes},
        settings.sample_seconds,
        show_progress=True,
        kernel=kernel,
    )
    if "error" in found:
        raise BenchmarkError(found["error"])
    return [SizeResult.from_json(result) for result in found["sizes"]], found["facts"], found["choices"]
