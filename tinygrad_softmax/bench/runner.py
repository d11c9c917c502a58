"""One run of the benchmark: its settings, and everything it measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import timing
from .contenders import implementations
from .machine import in_subprocess, machine_facts
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


def run(settings: Settings, log: Callable[[str], None] = print) -> Report:
    """Everything the report needs: timings per thread count, size and layout; chains; memory."""
    facts = machine_facts()
    sizes: list[SizeResult] = []
    thread_facts: dict[int, dict[str, str]] = {}
    for threads in settings.threads:
        found, thread_facts[threads] = _steps(settings, threads)
        sizes += found
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
    return Report(settings, facts, sizes, chains, memory, thread_facts)


def _steps(settings: Settings, threads: int) -> tuple[list[SizeResult], dict[str, str]]:
    """Every contender timed in a fresh process pinned to ``threads`` CPUs; and what that process ran with."""
    found = in_subprocess(
        timing.__name__,
        "step_child",
        threads,
        threads,
        {size: settings.repeats_for(size) for size in settings.sizes},
        settings.sample_seconds,
        show_progress=True,
    )
    if "error" in found:
        raise BenchmarkError(found["error"])
    return [SizeResult.from_json(result) for result in found["sizes"]], found["facts"]
