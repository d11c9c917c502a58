"""The Markdown report of a run: machine, step table, chains, memory, targets and why any is missed."""

from __future__ import annotations

from .contenders import AUTOGRAD, COMPILED, ENGINE, ENGINE_FUSED, JAX_JIT, TORCH
from .judging import explanations, targets, threads_label, us
from .machine import JAX_HINT
from .problem import SIZES
from .runner import Report, Settings


def _fewer(s: Settings) -> str:
    """Where the run times fewer rounds (the sizes whose steps are the longest)."""
    fewer = [f"{s.repeats_for(size)} at {size}" for size in s.sizes if s.repeats_for(size) < s.repeats]
    return f" ({', '.join(fewer)}, whose steps are the longest)" if fewer else ""


def _choices(report: Report) -> list[str]:
    """Which way round the engine computed each product, with each thread count, and the times why."""
    lines = [
        "",
        "## Which way round the products are computed",
        "",
        "`A B` or `(Bᵀ Aᵀ)ᵀ`: the same product, measured on this machine the first time the engine (eager "
        "or compiled) needs a product of its kind and size class (orientation.py), in each step process "
        "afresh; the fastest of at most 7 runs each, interleaved; turned only where that is more than "
        "5 % faster. Products under a million multiply-adds are not measured and stay `A B`.",
        "",
        "| threads | product: BLAS/kernel/threads · dtype · layouts · size class | chosen, and why |",
        "|---:|---|---|",
    ]
    for threads, choices in sorted(report.choices.items()):
        for choice in choices:
            lines.append(f"| {threads} | `{choice['key'].replace('|', ' · ')}` | {choice['why']} |")
        if not choices:
            lines.append(f"| {threads} | (none: every product was under a million multiply-adds) | `A B` |")
    return lines


def _facts(facts: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in facts.items())


def _runs(report: Report) -> list[Report]:
    """The run with OpenBLAS's own kernel and, where it was measured, the one with an older kernel forced."""
    return [report] if report.forced is None else [report, report.forced]


def _suffix(run: Report) -> str:
    """Nothing for the native run (its kernel is in the machine facts); the kernel of a forced one."""
    return f", {run.kernel.split(',')[0]} kernel forced" if run.kernel.endswith("forced") else ""


def _step_tables(run: Report) -> list[str]:
    lines: list[str] = []
    for threads in run.settings.threads:
        lines += [
            "",
            f"## One training step, {threads_label(threads)}{_suffix(run)}",
            "",
            "| size (N, D, C) | layout | implementation | median µs | p25–p75 µs | × closed form |",
            "|---|---|---|---:|---:|---:|",
        ]
        for result in run.sizes:
            if result.threads != threads:
                continue
            for name, timing in sorted(result.timings.items(), key=lambda item: item[1].median):
                label = f"**{name}**" if name == result.baseline else name
                lines.append(
                    f"| {result.size} {SIZES[result.size]} | {result.layout} | {label} | "
                    f"{us(timing.median)} | {us(timing.p25)}–{us(timing.p75)} | {result.ratio(name):.2f} |"
                )
    if run.choices:
        lines += _choices(run)
    return lines


def _targets(run: Report) -> list[str]:
    kernel = f" ({run.kernel} kernel)" if run.kernel else ""
    lines = ["", f"## Targets{kernel}", "", "| target | this run | |", "|---|---|---|"]
    for target in targets(run):
        verdict = {True: "met", False: "**missed**", None: "not measured"}[target.met]
        if target.kind == "compiled-peer":
            continue  # the gap to JAX has its own table above
        if target.kind == "peak-memory" and target.met is None:
            verdict = "not judged at this size"
        lines.append(f"| {target.claim} | {target.measured} | {verdict} |")
    why = explanations(run)
    if why:
        lines += ["", f"## Why the missed targets are missed{kernel}", "", *[f"- {note}" for note in why]]
    return lines


def render(report: Report) -> str:
    """The Markdown report: machine, step table, chains, memory, targets."""
    s = report.settings
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`tinygrad-softmax bench{' --quick' if s.quick else ''}`). "
        "The absolute times depend on the machine below and on what else ran on it (its load at the "
        "start is listed); **the ratios between implementations measured in the same run, not the "
        "absolute times, are the claim.**",
        "",
        "Workload: one training step of the softmax classifier in float64: forward "
        "(`Z = X W + b` in the row layout, `Z = W X + b` in the column layout, then the mean "
        "cross-entropy with the row max subtracted) and backward (the gradients of `W` and `b`). "
        f"The step is measured with {' and with '.join(threads_label(t) for t in s.threads)} "
        "(NumPy's BLAS, PyTorch and JAX alike), each thread count in a fresh process of its own "
        "pinned to that many CPUs; within it all implementations run interleaved round by round "
        f"after a warm-up: {s.repeats} rounds{_fewer(s)}, each timing enough calls to last "
        f"≥ {s.sample_seconds * 1e3:g} ms. "
        "Every implementation's gradients were checked against the closed form before timing. "
        "The closed form (×1.00) is the fastest of the hand-written NumPy formulations in that row "
        "group, measured with the same threads in the same process."
        + (
            f" The step is measured twice: with the OpenBLAS kernel the library picks for this CPU "
            f"({report.kernel.split(',')[0]}), and with an older one forced ({report.forced.kernel}); "
            "each has its own tables and targets. The long chains and the memory are measured once, with "
            "the CPU's own kernel."
            if report.forced is not None
            else ""
        ),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in report.facts.items()],
        *[
            f"| step, {threads_label(threads)} | {'; '.join(f'{k}: {v}' for k, v in facts.items())} |"
            for threads, facts in sorted(report.thread_facts.items())
        ],
        *[
            f"| step, {threads_label(threads)}{_suffix(run)} | {_facts(facts)} |"
            for run in _runs(report)[1:]
            for threads, facts in sorted(run.thread_facts.items())
        ],
        f"| long chains, memory | {threads_label(s.side_threads)} |",
    ]
    for run in _runs(report):
        lines += _step_tables(run)
    lines += ["", f"## {COMPILED} against {JAX_JIT}", ""]
    gaps = [t for t in targets(report) if t.kind == "compiled-peer"]
    if gaps:
        lines += [
            f"{JAX_JIT} (`jax.jit` of `jax.value_and_grad` of the same loss, float64, each step waited "
            "for with `block_until_ready`, JAX's CPU dispatch synchronous) is the compiled peer: it "
            "too traces the step once and runs a program written for it. Not a target; the gap:",
            "",
            f"| size | layout | threads | {COMPILED} µs | {JAX_JIT} µs | {COMPILED} ÷ {JAX_JIT} |",
            "|---|---|---:|---:|---:|---:|",
        ]
        groups = {(r.size, r.layout, r.threads): r for r in report.sizes}
        for t in gaps:
            r = groups[(t.size, t.layout or "row", t.threads)]
            ours, theirs = r.timings[COMPILED].median, r.timings[JAX_JIT].median
            lines.append(
                f"| {t.size} | {t.layout} | {t.threads} | {us(ours)} | {us(theirs)} | {ours / theirs:.2f} |"
            )
    else:
        lines.append(
            f"{JAX_JIT}, the compiled peer of `{COMPILED}`, is not installed here, so it has no rows "
            f"and its gap is not stated. JAX is optional: {JAX_HINT}."
        )
    lines += [
        "",
        "## Long chains of elementwise ops",
        "",
        "Graph build + backward of `y = y * 1.0001` and `y = y + 0.001` in turn, on a vector of 8, "
        "its backward started from ones; "
        f"median of {s.chain_repeats[s.chain_lengths[0]]} runs of the shorter chain "
        f"and {s.chain_repeats[s.chain_lengths[1]]} of the longer. Each implementation runs in a fresh "
        "process of its own: Python's cycle collector scans every object in a process, so one "
        "library's objects would slow down another's graph build.",
        "",
        "**The cycle collector and a long graph.** The graph holds no reference cycles (a node refers "
        "to its inputs, never the other way), so reference counting frees it; but the collector's full "
        "passes rescan every object alive, and a graph being built grows by a few objects per op. So "
        "every 10,000 tensors recorded the engine collects the young generations (the garbage the "
        "user's code just made, cycles included, is freed) and freezes what is alive (`gc.freeze`): "
        "the full passes no longer rescan it. The next `backward()` (or `gradients()`) unfreezes it "
        "(`gc.unfreeze`), back into the oldest generation, where the next full pass sees it again, and "
        "the backward walk itself runs with the collector paused (it makes no cycles). The collector "
        "keeps running throughout for everything made since the last freeze; the user's objects frozen "
        "with a graph are only looked at again after that backward. Where the collector is disabled, "
        "or the program has frozen objects itself, the engine freezes nothing. The diagnostic row "
        "runs the same chain with the collector disabled throughout.",
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
        f"## Memory ({s.memory_size}, row layout, {threads_label(s.side_threads)})",
        "",
        "Each implementation in a fresh subprocess. *Peak RSS*: the process's peak resident set "
        "(`VmHWM`; `ru_maxrss` where there is no /proc) after one step minus its resident set before "
        "it, measured after the imports, the data, a tiny warm-up step, `malloc_trim` and a reset of "
        "the peak (`/proc/self/clear_refs`). "
        "*Peak allocated*: tracemalloc's peak of the bytes allocated during a second step (exact for "
        "NumPy arrays and Python objects; not available for PyTorch). The peak-memory targets are "
        "judged on peak RSS against the smallest closed form, at the large sizes only (at a small "
        "one a step's arrays are a few pages, within the allocator's own noise). "
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
    for run in _runs(report):
        lines += _targets(run)
    return "\n".join(lines) + "\n"


# The README's cost table lies between these lines; `make bench` rewrites what is between them.
README_START = "<!-- cost table: written by make bench (tinygrad-softmax bench --readme README.md) -->"
README_END = "<!-- end of the cost table -->"
README_COLUMNS = {
    "engine, from primitives": ENGINE,
    "engine, fused op": ENGINE_FUSED,
    "engine, compiled": COMPILED,
    "PyTorch, from primitives": TORCH,
    "HIPS autograd": AUTOGRAD,
}
README_SIZES = ("tiny", "mnist-like", "cifar-like")


def readme_table(report: Report) -> str:
    """The README's cost table: the row layout, 1 thread (the fewest), the kernel OpenBLAS picks here."""
    threads = min(report.settings.threads)
    rows = {r.size: r for r in report.sizes if r.layout == "row" and r.threads == threads}
    kernel = report.kernel.split(",")[0] or "unknown"
    date = report.facts.get("date", "an unknown date")
    lines = [
        f"From [docs/benchmarks.md](docs/benchmarks.md), measured on {date} "
        f"with OpenBLAS's {kernel} kernel (the one it picks for this machine's CPU) and "
        f"{threads_label(threads).replace('thread', 'BLAS thread')}, row layout (medians, × the fastest "
        "closed form; the ratios between implementations measured in one run are the claim, not the "
        "absolute times; the page also has 2 threads, the column layout and an older kernel):",
        "",
        "| size (N, D, C) | " + " | ".join(README_COLUMNS) + " |",
        "|---|" + "---:|" * len(README_COLUMNS),
    ]
    for size in README_SIZES:
        result = rows.get(size)
        if result is None:
            continue
        cells = [
            f"{result.ratio(name):.2f}×" if name in result.timings else "—"
            for name in README_COLUMNS.values()
        ]
        lines.append(f"| {size} {SIZES[size]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def with_readme_table(readme: str, report: Report) -> str:
    """``readme`` with the text between its cost-table markers replaced by this run's table."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"bench: the README has no cost-table markers ({README_START} ... {README_END})")
    return readme[: start + len(README_START)] + "\n" + readme_table(report) + "\n\n" + readme[end:]
