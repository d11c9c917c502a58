"""The targets of the performance work, judged on one run's medians, and why a missed one is missed.

Each :class:`Target` carries its ``kind`` and what it compares (size, layout,
the two implementations), so an explanation is chosen by what was missed,
never by matching the words of its claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from .. import functional as F
from ..analytic import Layout
from .contenders import (
    AUTOGRAD,
    COLLECTOR_PAUSED,
    COMPILED,
    COMPILED_STEPS,
    ENGINE,
    ENGINE_FUSED,
    JAX_JIT,
    MICROGRAD,
    NUMPY_PREFIX,
    TORCH,
    TORCH_FUSED,
)
from .runner import Report
from .timing import SizeResult

TargetKind = Literal[
    "step-time",  # the engine's step ≤ a multiple of the fastest closed form
    "compiled-step-time",  # the compiled step ≤ a (smaller) multiple of the fastest closed form
    "compiled-peer",  # the compiled step against JAX's jit: reported, not judged
    "faster",  # one implementation's step faster than another's
    "chain-speed",  # a long chain's build + backward faster than PyTorch's
    "time-per-node",  # a long chain costs no more per node than a short one
    "peak-memory",  # the peak resident memory of one step ≤ a multiple of the closed form's
    "memory-growth",  # nothing kept step after step
]
LARGE = ("mnist-like", "cifar-like")  # the sizes where the arithmetic should dominate


@dataclass(frozen=True)
class Target:
    """One claim, what this run measured, and whether it holds."""

    kind: TargetKind
    claim: str
    measured: str
    met: bool | None  # None: could not be measured here (a library is missing)
    size: str = ""  # the size and layout of a step target
    layout: Layout | None = None
    ours: str = ""  # the implementation judged ...
    theirs: str = ""  # ... and the one it is compared with
    threads: int = 0  # the BLAS threads of a step target (0: not a step target)


def threads_label(threads: int) -> str:
    """``1 thread``, ``2 threads``: the BLAS (and PyTorch, and JAX) threads a step was measured with."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def where(result: SizeResult) -> str:
    """The size, layout and thread count of a row group: the start of each step target's claim."""
    return f"{result.size}, {result.layout}, {threads_label(result.threads)}"


def _step_limit(size: str) -> float:
    """How many times the closed form's step the engine may take at ``size``."""
    return 1.10 if size in LARGE else 3.0


def _step_time(result: SizeResult) -> Target:
    limit, ratio = _step_limit(result.size), result.ratio(ENGINE)
    claim = f"{where(result)}: {ENGINE} ≤ {limit:g} × closed form"
    return Target(
        "step-time",
        claim,
        f"{ratio:.2f}×",
        ratio <= limit,
        result.size,
        result.layout,
        ENGINE,
        "",
        result.threads,
    )


# How many times the fastest closed form's step the compiled step (the derived program, where it is the
# faster) may take, at every size: within 1.05×, and within 1.02×, the stricter target. Both are judged.
COMPILED_LIMITS = (1.05, 1.02)


def _compiled_step_time(result: SizeResult, limit: float) -> Target:
    claim = f"{where(result)}: {COMPILED} ≤ {limit:g} × closed form"
    ratio = result.ratio(COMPILED)
    return Target(
        "compiled-step-time",
        claim,
        f"{ratio:.2f}×",
        ratio <= limit,
        result.size,
        result.layout,
        COMPILED,
        "",
        result.threads,
    )


def _compiled_peer(result: SizeResult) -> Target | None:
    """The gap to JAX's jit, where JAX is installed (the report says so where it is not)."""
    claim = f"{where(result)}: {COMPILED} against {JAX_JIT} (the gap, not judged)"
    if JAX_JIT not in result.timings or COMPILED not in result.timings:
        return None
    ratio = result.timings[COMPILED].median / result.timings[JAX_JIT].median
    return Target(
        "compiled-peer",
        claim,
        f"{ratio:.2f}× its time",
        None,
        result.size,
        result.layout,
        COMPILED,
        JAX_JIT,
        result.threads,
    )


def _faster(result: SizeResult, ours: str, theirs: str) -> Target:
    claim = f"{where(result)}: {ours} faster than {theirs}"
    if theirs not in result.timings:
        measured, met = f"{theirs} not installed", None
    else:
        ratio = result.timings[ours].median / result.timings[theirs].median
        measured, met = f"{ratio:.3f}× its time", ratio < 1
    return Target("faster", claim, measured, met, result.size, result.layout, ours, theirs, result.threads)


def _step_targets(result: SizeResult) -> list[Target]:
    found = [
        _step_time(result),
        _faster(result, ENGINE, TORCH),
        _faster(result, ENGINE, TORCH_FUSED),
        _faster(result, ENGINE, AUTOGRAD),
    ]
    if result.size not in LARGE:
        if result.size == "tiny":
            found.append(_faster(result, ENGINE, MICROGRAD))
        found.append(_faster(result, ENGINE_FUSED, TORCH_FUSED))
    if COMPILED in result.timings:  # (a report made by hand for a test may leave it out)
        found += [_compiled_step_time(result, limit) for limit in COMPILED_LIMITS]
        if result.size not in LARGE:
            found.append(_faster(result, COMPILED, TORCH_FUSED))
    peer = _compiled_peer(result)
    return found if peer is None else [*found, peer]


def _chain_targets(report: Report) -> list[Target]:
    if not report.chains:  # a run of the steps only (an older kernel forced): chains measured once
        return []
    chains = {(c.name, c.length): c for c in report.chains}
    short, long = report.settings.chain_lengths
    ours_long, ours_short = chains[("engine", long)], chains[("engine", short)]
    assert ours_long.seconds is not None and ours_short.seconds is not None
    torch_long = chains.get(("PyTorch", long))
    claim = f"chain of {long:,} ops: build + backward faster than PyTorch"
    if torch_long is None or torch_long.seconds is None:
        found = [Target("chain-speed", claim, "PyTorch not installed", None)]
    else:
        ratio = ours_long.seconds / torch_long.seconds
        measured = f"{ours_long.seconds:.3f} s vs {torch_long.seconds:.3f} s ({ratio:.3f}×)"
        found = [Target("chain-speed", claim, measured, ratio < 1)]
    per_node = (ours_long.seconds / long) / (ours_short.seconds / short)
    claim = f"time per node, {long:,}-op chain ≤ 1.5 × {short:,}-op chain"
    return [*found, Target("time-per-node", claim, f"{per_node:.2f}×", per_node <= 1.5)]


def _smallest_closed_form(report: Report) -> dict[str, Any]:
    return min((m for m in report.memory if m["kind"] == "numpy"), key=lambda m: m["peak_rss_kib"])


def _memory_targets(report: Report) -> list[Target]:
    if not report.memory:  # a run of the steps only: memory measured once, with the native kernel
        return []
    memory = {m["name"]: m for m in report.memory}
    closed = _smallest_closed_form(report)
    counted = report.settings.memory_steps
    found = []
    # Peak memory is judged only at the large sizes: at a small one the step's arrays are a few
    # pages, below what page rounding and the allocator's reuse of freed memory already move.
    judged = report.settings.memory_size in LARGE
    for name in (ENGINE, ENGINE_FUSED):
        ours = memory[name]["peak_rss_kib"]
        ratio = ours / max(closed["peak_rss_kib"], 1.0)
        sizes = f"{ours / 1024:.1f} MiB vs {closed['peak_rss_kib'] / 1024:.1f} MiB"
        found.append(
            Target(
                "peak-memory",
                f"peak resident memory of a {report.settings.memory_size} step: {name} ≤ 1.15 × closed form",
                f"{ratio:.2f}× ({sizes}, {closed['name'].removeprefix(NUMPY_PREFIX + ': ')})"
                if judged
                else f"{sizes}: not judged at this size (only {' and '.join(LARGE)})",
                ratio <= 1.15 if judged else None,
                ours=name,
            )
        )
        growth = memory[name]["growth_traced_kib"]
        found.append(
            Target(
                "memory-growth",
                f"{name}: no memory growth over {counted:,} tiny steps",
                f"{growth:+.1f} KiB live after {counted:,} steps more",
                growth * 1024 < counted,  # less than a byte per step: nothing kept step after step
                ours=name,
            )
        )
    return found


def targets(report: Report) -> list[Target]:
    """The targets of the performance work, each judged on this run's medians (and the gap to JAX)."""
    steps = [target for result in report.sizes for target in _step_targets(result)]
    return steps + _chain_targets(report) + _memory_targets(report)


def us(seconds: float) -> str:
    """Microseconds, with one decimal below 100."""
    micro = seconds * 1e6
    return f"{micro:,.1f}" if micro < 100 else f"{micro:,.0f}"


# ---------------------------------------------------------------- why a target is missed


def _graph_nodes() -> int:
    """How many nodes the backward walk visits for one step of the composed loss."""
    from ..engine import topological_order
    from ..lecture.training.classifier import build_classifier

    return len(topological_order(build_classifier("row", backward=False).loss))


def _group(report: Report, target: Target, threads: int | None = None) -> SizeResult | None:
    """The row group a step target was judged on (or the same size and layout with other ``threads``)."""
    want = target.threads if threads is None else threads
    for result in report.sizes:
        if (result.size, result.layout, result.threads) == (target.size, target.layout, want):
            return result
    return None


def _beyond(result: SizeResult, name: str) -> float:
    """Seconds ``name``'s step takes beyond the closed form's."""
    return result.timings[name].median - result.timings[result.baseline].median


def _by_threads(missed: list[Target]) -> dict[int, list[Target]]:
    found: dict[int, list[Target]] = {}
    for target in missed:
        found.setdefault(target.threads, []).append(target)
    return dict(sorted(found.items()))


def _second_thread(report: Report, result: SizeResult, name: str) -> str:
    """With more threads: how much the closed form gained, and how little ``name``'s extra time changed."""
    fewest = min(r.threads for r in report.sizes)
    one = next(
        (r for r in report.sizes if (r.size, r.layout, r.threads) == (result.size, result.layout, fewest)),
        None,
    )
    if result.threads == fewest or one is None or name not in one.timings:
        return ""
    if result.timings[result.baseline].median >= one.timings[one.baseline].median:
        return (
            f" With {threads_label(result.threads)} the closed form's step there took no less time than "
            f"with {threads_label(fewest)} ({us(result.timings[result.baseline].median)} µs against "
            f"{us(one.timings[one.baseline].median)} µs): the extra thread found no free CPU (see the "
            "load at the start), so this row measures the machine's other work more than the code."
        )
    return (
        f" With {threads_label(result.threads)} the closed form's step there takes "
        f"{us(result.timings[result.baseline].median)} µs against {us(one.timings[one.baseline].median)} µs "
        f"with {threads_label(fewest)} (BLAS shares the matrix products among the threads), while {name} "
        f"takes {us(_beyond(result, name))} µs beyond it against {us(_beyond(one, name))} µs: its Python "
        "work and NumPy's elementwise ops run on one thread whatever BLAS does, so they weigh more the "
        "faster the products get."
    )


def _why_step_time(report: Report, missed: list[Target]) -> list[str]:
    """The engine's fixed Python cost per node, and the closed form's faster orientation."""
    groups = _by_threads(missed)
    fixed = {}
    for threads in groups:
        first = next(r for r in report.sizes if r.threads == threads)
        fixed[threads] = (first, _beyond(first, ENGINE))
    first = next(iter(fixed.values()))[0]
    per_step = " and ".join(f"{us(cost)} µs with {threads_label(t)}" for t, (_, cost) in fixed.items())
    text = (
        f"**Step time.** On top of the NumPy arithmetic, the engine does Python work for each of the "
        f"{_graph_nodes()} nodes of the composed loss, forward and backward (make the op, record it, "
        f"walk it, store each gradient): about {per_step} per step here (engine minus closed form at "
        f"the {first.size} size, {first.layout} layout). The closed form is a dozen NumPy calls in one "
        "function."
    )
    for threads, lost in groups.items():
        large = next((t for t in lost if t.size in LARGE), None)
        result = None if large is None else _group(report, large)
        if result is not None:
            share = fixed[threads][1] / result.timings[result.baseline].median
            text += (
                f" At {result.size} ({result.layout}, {threads_label(threads)}) that fixed cost alone is "
                f"{share:.0%} of the closed form's step."
            ) + _second_thread(report, result, ENGINE)
    notes = [text]
    plain, transposed = f"{NUMPY_PREFIX}: in place", f"{NUMPY_PREFIX}: in place, transposed"
    for lost in groups.values():
        for target in lost:
            result = _group(report, target)
            if (
                result is not None
                and result.layout == "column"
                and result.baseline == transposed
                and plain in result.timings
            ):
                notes.append(
                    f"**Column layout, {where(result)}.** The fastest closed form there ({result.baseline}) "
                    f"multiplies Xᵀ Wᵀ instead of W X: the same numbers, but OpenBLAS is faster in that "
                    f"orientation ({us(result.timings[result.baseline].median)} µs against "
                    f"{us(result.timings[plain].median)} µs for the same code computing W X). The engine "
                    "turns a product that way where it measured faster on this machine (orientation.py; "
                    "the chosen way and its times are in the table above)."
                )
                break
    return notes


def _torch_column(report: Report, target: Target) -> bool:
    """A loss to PyTorch in the column layout, where the row layout's figures are there to compare."""
    if not (
        target.kind == "faster"
        and target.layout == "column"
        and target.ours == ENGINE
        and target.theirs == TORCH
    ):
        return False
    column, row = _group(report, target), _group(report, replace(target, layout="row"))
    if column is None or row is None or TORCH not in row.timings:
        return False
    # The reason holds only where the figures show it: PyTorch faster in the column layout, the engine slower.
    return (
        column.timings[TORCH].median < row.timings[TORCH].median
        and column.timings[ENGINE].median > row.timings[ENGINE].median
    )


def _why_torch_column(report: Report, missed: list[Target]) -> list[str]:
    """PyTorch's BLAS prefers the column layout where NumPy's prefers the row layout."""
    notes = []
    for target in missed:
        result, row = _group(report, target), _group(report, replace(target, layout="row"))
        assert result is not None and row is not None
        notes.append(
            f"**Against PyTorch in the column layout, {where(result)}.** The step is mostly the two "
            "matrix products, and PyTorch's BLAS has the opposite preference to NumPy's OpenBLAS: "
            f"{TORCH} takes {us(result.timings[TORCH].median)} µs in the column layout against "
            f"{us(row.timings[TORCH].median)} µs in the row layout, while the engine takes "
            f"{us(result.timings[ENGINE].median)} µs against {us(row.timings[ENGINE].median)} µs."
        )
    return notes


def _why_faster(report: Report, missed: list[Target]) -> list[str]:
    """Any other lost comparison: where each step's time goes beyond the closed form's arithmetic."""
    notes = []
    for target in missed:
        result = _group(report, target)
        if result is None or target.theirs not in result.timings:
            continue
        ours, theirs = target.ours, target.theirs
        text = (
            f"**{ours} against {theirs}, {where(result)}.** The closed form's step takes "
            f"{us(result.timings[result.baseline].median)} µs; {ours} takes "
            f"{us(result.timings[ours].median)} µs ({us(_beyond(result, ours))} µs beyond it), {theirs} "
            f"{us(result.timings[theirs].median)} µs ({us(_beyond(result, theirs))} µs beyond it)."
        )
        if theirs in (TORCH, TORCH_FUSED):
            text += " PyTorch builds its graph and runs its backward in C++" + (
                f", and splits elementwise ops over large arrays among its {result.threads} threads; "
                "the engine's Python work and NumPy's elementwise ops run on one."
                if result.threads > 1 and result.size in LARGE
                else "; the engine does that work in Python, op by op."
            )
        elif theirs == AUTOGRAD:
            text += (
                " HIPS autograd calls the same NumPy functions, so the difference is the work beyond the "
                "arithmetic: the engine's is its Python bookkeeping per node and a stored gradient for "
                "each node."
            )
        notes.append(text + _second_thread(report, result, ours))
    return notes


def _why_peak_memory(report: Report, missed: list[Target]) -> list[str]:
    """What the composed loss keeps for the backward, against the in-place closed form."""
    memory = {m["name"]: m for m in report.memory}
    if not any(t.kind == "peak-memory" for t in missed) or ENGINE not in memory:
        return []
    closed = _smallest_closed_form(report)
    allocated = ", ".join(
        f"{name} {memory[name]['traced_peak_kib'] / 1024:.1f} MiB"
        for name in (ENGINE, ENGINE_FUSED, closed["name"])
        if name in memory and memory[name]["traced_peak_kib"] is not None
    )
    return [
        "**Peak memory.** The composed loss keeps every intermediate of the forward pass for "
        "the backward (the matmul output, Z, Z − max, exp, log-softmax: five N×C arrays) and, "
        "as the specification requires so that Z.grad can be shown next to P − Y, stores the "
        "gradient of each one: about ten N×C arrays plus dW. The in-place closed form reuses one "
        "N×C array for Z, P and dZ. The fused op keeps the matmul output, Z and P and two "
        f"gradients. Allocated at peak (tracemalloc): {allocated}."
    ]


def _why_time_per_node(report: Report, missed: list[Target]) -> list[str]:
    """Python's cycle collector rescans a growing graph; the paused run shows its cost."""
    chains = {(c.name, c.length): c.seconds for c in report.chains}
    short, long = report.settings.chain_lengths
    paused_short, paused_long = chains.get((COLLECTOR_PAUSED, short)), chains.get((COLLECTOR_PAUSED, long))
    if not any(t.kind == "time-per-node" for t in missed) or not (paused_short and paused_long):
        return []
    return [
        "**Time per node on long chains.** Every op makes a few Python objects that Python's cycle "
        "collector tracks; as the graph grows, the collector's full passes rescan all of it. With "
        f"the collector paused (the diagnostic row), a node of the {long:,}-op chain costs "
        f"{(paused_long / long) / (paused_short / short):.2f} × a node of the {short:,}-op chain. "
        "The backward walk pauses the collector (it makes no cycles), and every 10,000 tensors the "
        "engine freezes the graph out of the full passes' way; the young-generation passes remain."
    ]


def _why_chain_speed(report: Report, missed: list[Target]) -> list[str]:
    """PyTorch records its graph in C++, the engine in Python."""
    chains = {(c.name, c.length): c.seconds for c in report.chains}
    long = report.settings.chain_lengths[1]
    ours, theirs = chains.get(("engine", long)), chains.get(("PyTorch", long))
    if not any(t.kind == "chain-speed" for t in missed) or not (ours and theirs):
        return []
    return [
        f"**Long chain against PyTorch.** PyTorch records its graph in C++; here each op is Python: "
        f"{ours / long * 1e6:.2f} µs per op against PyTorch's {theirs / long * 1e6:.2f} µs."
    ]


def _why_growth(report: Report, missed: list[Target]) -> list[str]:
    """Live memory that grows step after step: something is kept."""
    memory = {m["name"]: m for m in report.memory}
    steps = report.settings.memory_steps
    return [
        f"**Memory growth, {t.ours}.** {memory[t.ours]['growth_traced_kib']:.1f} KiB more are live after "
        f"{steps:,} more tiny steps, once a first {steps:,} had filled the caches of NumPy and Python: "
        "the step keeps something from one call to the next (an unbounded cache, or a graph kept "
        "alive), which tracemalloc in a run of memory.memory_child shows by line."
        for t in missed
        if t.ours in memory
    ]


def _classifier_programs() -> tuple[str, str]:
    """The step program and the derived program compile writes for one step of the classifier."""
    from ..compiler import compile
    from ..lecture.training.classifier import build_classifier, logits

    model = build_classifier("column", backward=False)

    def step(W: Any, b: Any, X: Any, y: Any) -> Any:
        Z = logits(W, b, X, "column")
        Z.name = "Z"
        return F.cross_entropy(Z, y, axis=0)

    compiled = compile(step, simplify=True)
    args = (model.W, model.b, model.X, model.labels)
    return compiled.source(*args, optimized=True), compiled.source(*args, simplified=True)


def _statements(source: str) -> int:
    """The assignments run at every call (some lines run once, above the function)."""
    body = source.split("\ndef ", 1)[-1]
    return sum(" = " in line.split("#")[0] for line in body.splitlines())


def _why_compiled_step(report: Report, missed: list[Target]) -> list[str]:
    """What the compiled program still does that the closed form does not."""
    steps, derived = _classifier_programs()
    text = (
        f"**Compiled step.** `compile` runs the faster of two programs proven equal, timed once when it "
        f"compiles: the step program ({COMPILED_STEPS} in the tables, {_statements(steps)} NumPy "
        "statements per step, the composed loss's ops and the lines its backward rules write, bit for "
        "bit the eager engine) or the program derived from it, where the backward is "
        f"P = softmax(Z), dZ = (P − onehot(y))/N, dW, db ({_statements(derived)} statements in all, the "
        "forward included). The closed form does less per call: it computes no separate loss "
        "terms it does not return, writes P − Y into the one N×C array it reuses, and takes the "
        "labels' positions as given (its one-hot Y is made once, like the data), where every compiled "
        "call compares the labels with the classes for the one-hot and checks them; and each compiled "
        "call tests that its arguments are of the kinds, shapes, dtypes and memory layouts the "
        "program was traced for (so that it never runs a program traced for others) and hands back "
        "the loss as a Python float."
    )
    small_costs, fused, large_notes = [], "", ""
    for threads, lost in _by_threads(missed).items():
        small = next((t for t in lost if t.size not in LARGE), None)
        if small is not None and (result := _group(report, small)) is not None:
            at = f"{result.size} ({result.layout}, {threads_label(threads)})"
            small_costs.append(f"{us(_beyond(result, COMPILED))} µs at {at}")
        lost_to_torch = next((t for t in lost if t.theirs == TORCH_FUSED), None)
        if not fused and lost_to_torch is not None and (result := _group(report, lost_to_torch)) is not None:
            fused = (
                f" {TORCH_FUSED} is one C++ kernel forward and one backward: at {where(result)} it takes "
                f"{us(result.timings[TORCH_FUSED].median)} µs against the program's "
                f"{us(result.timings[COMPILED].median)} µs."
            )
        large = next((t for t in lost if t.size in LARGE), None)
        if large is not None and (result := _group(report, large)) is not None:
            large_notes += (
                f" At {result.size} ({result.layout}, {threads_label(threads)}) it takes "
                f"{us(_beyond(result, COMPILED))} µs more than the closed form's "
                f"{us(result.timings[result.baseline].median)} µs: it makes more passes over the N×C arrays "
                "(the log-softmax for the loss, then P and P − Y; the closed form writes P − Y at once)."
            ) + _second_thread(report, result, COMPILED)
    if small_costs:
        text += (
            " Each NumPy call costs about a microsecond at lecture sizes: the program takes "
            f"{' and '.join(small_costs)} more than the closed form."
        )
    text += fused + large_notes
    return [text]


Explain = Callable[[Report, list[Target]], list[str]]
Covers = Callable[[Report, Target], bool]

# Each missed target goes to the first explanation that covers it, chosen by its kind (and, for a
# lost comparison, by what it compares), never by the words of its claim.
EXPLANATIONS: list[tuple[Covers, Explain]] = [
    (lambda r, t: t.kind == "step-time", _why_step_time),
    (
        lambda r, t: t.kind == "compiled-step-time" or (t.kind == "faster" and t.ours == COMPILED),
        _why_compiled_step,
    ),
    (_torch_column, _why_torch_column),
    (lambda r, t: t.kind == "faster", _why_faster),
    (lambda r, t: t.kind == "peak-memory", _why_peak_memory),
    (lambda r, t: t.kind == "memory-growth", _why_growth),
    (lambda r, t: t.kind == "time-per-node", _why_time_per_node),
    (lambda r, t: t.kind == "chain-speed", _why_chain_speed),
]


def _assigned(report: Report) -> tuple[list[tuple[Explain, list[Target]]], list[Target]]:
    """The missed targets, given each to its explanation; and those no explanation covers."""
    missed = [t for t in targets(report) if t.met is False]
    given: dict[int, list[Target]] = {}
    left = []
    for target in missed:
        k = next((k for k, (covers, _) in enumerate(EXPLANATIONS) if covers(report, target)), None)
        if k is None:
            left.append(target)
        else:
            given.setdefault(k, []).append(target)
    return [(EXPLANATIONS[k][1], given[k]) for k in sorted(given)], left


def explanations(report: Report) -> list[str]:
    """For each kind of missed target, the reason, with this run's own figures."""
    return [note for explain, lost in _assigned(report)[0] for note in explain(report, lost)]


def unexplained(report: Report) -> list[Target]:
    """Missed targets that no explanation covers (a test keeps this empty)."""
    return _assigned(report)[1]
