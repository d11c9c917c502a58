"""One run of the benchmark: its settings, and everything it measured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .contenders import Implementation, implementations
from .machine import limit_threads, machine_facts
from .memory import measure_memory
from .problem import LAYOUTS, SIZES
from .timing import ChainResult, SizeResult, time_chains, time_size


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
