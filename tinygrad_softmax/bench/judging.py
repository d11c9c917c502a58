"""The targets of the performance work, judged on one run's medians, and why a missed one is missed.

Each :class:`Target` carries its ``kind`` and what it compares (size, layout,
the two implementations), so an explanation is chosen by what was missed,
never by matching the words of its claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .. import functional as F
from ..analytic import Layout
from .contenders import (
    AUTOGRAD,
    COLLECTOR_PAUSED,
    COMPILED,
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


def _step_limit(size: str) -> float:
    """How many times the closed form's step the engine may take at ``size``."""
    return 1.05 if size in LARGE else 3.0


def _step_time(result: SizeResult) -> Target:
    limit, ratio = _step_limit(result.size), result.ratio(ENGINE)
    claim = f"{result.size}, {result.layout}: {ENGINE} ≤ {limit:g} × closed form"
    return Target("step-time", claim, f"{ratio:.2f}×", ratio <= limit, result.size, result.layout, ENGINE)


# How many times the closed form's step the compiled step may take, by size.
COMPILED_LIMITS = {"tiny": 1.6, "small": 1.3, "mnist-like": 1.03, "cifar-like": 1.03}


def _compiled_step_time(result: SizeResult) -> Target:
    limit = COMPILED_LIMITS.get(result.size, 1.03)
    claim = f"{result.size}, {result.layout}: {COMPILED} ≤ {limit:g} × closed form"
    ratio = result.ratio(COMPILED)
    return Target(
        "compiled-step-time", claim, f"{ratio:.2f}×", ratio <= limit, result.size, result.layout, COMPILED
    )


def _compiled_peer(result: SizeResult) -> Target | None:
    """The gap to JAX's jit, where JAX is installed (the report says so where it is not)."""
    claim = f"{result.size}, {result.layout}: {COMPILED} against {JAX_JIT} (the gap, not judged)"
    if JAX_JIT not in result.timings or COMPILED not in result.timings:
        return None
    ratio = result.timings[COMPILED].median / result.timings[JAX_JIT].median
    return Target(
        "compiled-peer", claim, f"{ratio:.2f}× its time", None, result.size, result.layout, COMPILED, JAX_JIT
    )


def _faster(result: SizeResult, ours: str, theirs: str) -> Target:
    claim = f"{result.size}, {result.layout}: {ours} faster than {theirs}"
    if theirs not in result.timings:
        measured, met = f"{theirs} not installed", None
    else:
        ratio = result.timings[ours].median / result.timings[theirs].median
        measured, met = f"{ratio:.3f}× its time", ratio < 1
    return Target("faster", claim, measured, met, result.size, result.layout, ours, theirs)


def _step_targets(result: SizeResult) -> list[Target]:
    found = [_step_time(result), _faster(result, ENGINE, TORCH), _faster(result, ENGINE, AUTOGRAD)]
    if result.size not in LARGE:
        if result.size == "tiny":
            found.append(_faster(result, ENGINE, MICROGRAD))
        found.append(_faster(result, ENGINE_FUSED, TORCH_FUSED))
    if COMPILED in result.timings:  # (a report made by hand for a test may leave it out)
        found.append(_compiled_step_time(result))
        if result.size not in LARGE:
            found.append(_faster(result, COMPILED, TORCH_FUSED))
    peer = _compiled_peer(result)
    return found if peer is None else [*found, peer]


def _chain_targets(report: Report) -> list[Target]:
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
    """The targets of the performance work, each judged on this run's medians."""
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
    from ..lecture.classifier import build_classifier

    return len(topological_order(build_classifier("row", backward=False).loss))


def _why_step_time(report: Report, missed: list[Target]) -> list[str]:
    """The engine's fixed Python cost per node, and the closed form's faster orientation."""
    if not any(t.kind == "step-time" for t in missed):
        return []
    first = report.sizes[0]
    fixed = first.timings[ENGINE].median - first.timings[first.baseline].median
    text = (
        f"**Step time.** On top of the NumPy arithmetic, the engine does Python work for each of the "
        f"{_graph_nodes()} nodes of the composed loss, forward and backward (make the op, record it, "
        f"walk it, store each gradient): about {us(fixed)} µs per step here (engine minus closed form "
        f"at the {first.size} size). The closed form is a dozen NumPy calls in one function."
    )
    for result in report.sizes:
        if result.size in LARGE and result.ratio(ENGINE) > _step_limit(result.size):
            share = fixed / result.timings[result.baseline].median
            text += (
                f" At {result.size} ({result.layout}) that fixed cost alone is {share:.0%} of the closed "
                f"form's step."
            )
            break
    notes = [text]
    plain, transposed = f"{NUMPY_PREFIX}: in place", f"{NUMPY_PREFIX}: in place, transposed"
    for result in report.sizes:
        if (
            result.layout == "column"
            and result.baseline == transposed
            and plain in result.timings
            and result.ratio(ENGINE) > _step_limit(result.size)
        ):
            notes.append(
                f"**Column layout, {result.size}.** The fastest closed form there ({result.baseline}) "
                f"multiplies Xᵀ Wᵀ instead of W X: the same numbers, but OpenBLAS is faster in that "
                f"orientation ({us(result.timings[result.baseline].median)} µs against "
                f"{us(result.timings[plain].median)} µs for the same code computing W X). The engine "
                "turns a product that way only where it measured faster (ops.rows_first_is_slow)."
            )
            break
    return notes


def _why_torch_column(report: Report, missed: list[Target]) -> list[str]:
    """PyTorch's BLAS prefers the column layout where NumPy's prefers the row layout."""
    rows = {(r.size, r.layout): r for r in report.sizes}
    lost = {
        t.size
        for t in missed
        if t.kind == "faster" and t.layout == "column" and t.ours == ENGINE and t.theirs == TORCH
    }
    notes = []
    for result in report.sizes:
        row = rows.get((result.size, "row"))
        if (
            result.layout == "column"
            and result.size in lost
            and row is not None
            and TORCH in result.timings
            and TORCH in row.timings
        ):
            notes.append(
                f"**Against PyTorch in the column layout, {result.size}.** The step is mostly the two "
                "matrix products, and PyTorch's BLAS has the opposite preference to NumPy's OpenBLAS: "
                f"{TORCH} takes {us(result.timings[TORCH].median)} µs in the column layout against "
                f"{us(row.timings[TORCH].median)} µs in the row layout, while the engine takes "
                f"{us(result.timings[ENGINE].median)} µs against {us(row.timings[ENGINE].median)} µs."
            )
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
        "The backward walk already pauses the collector (it makes no cycles); the graph is built by "
        "the user's own code, where the engine does not switch it off."
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


def _classifier_program() -> str:
    """The program compile writes for one step of the classifier (column layout, the lecture's sizes)."""
    from ..compiler import compile
    from ..lecture.classifier import build_classifier, logits

    model = build_classifier("column", backward=False)

    def step(W: Any, b: Any, X: Any, y: Any) -> Any:
        Z = logits(W, b, X, "column")
        Z.name = "Z"
        return F.cross_entropy(Z, y, axis=0)

    return compile(step).source(model.W, model.b, model.X, model.labels)


def _why_compiled_step(report: Report, missed: list[Target]) -> list[str]:
    """What the compiled program still does that the closed form does not."""
    lost = [
        t for t in missed if t.kind == "compiled-step-time" or (t.kind == "faster" and t.ours == COMPILED)
    ]
    if not lost:
        return []
    source = _classifier_program()
    lines = [line for line in source.splitlines() if " = " in line]
    backward = source.split("# backward")[1].split("    dZ = ")[0]
    for_dz = sum(" = " in line for line in backward.splitlines()) + 1
    first = next(r for r in report.sizes if r.size == lost[0].size and r.layout == lost[0].layout)
    extra = first.timings[COMPILED].median - first.timings[first.baseline].median
    return [
        f"**Compiled step.** The program the engine writes keeps every op of the composed loss and every "
        f"line its backward rules write: {len(lines)} NumPy statements per step, {for_dz} of "
        "them for dZ alone, where the closed form computes (P − Y)/N in three (it knows the answer; the "
        "chain rule does not simplify it). Each NumPy call costs about a microsecond at lecture sizes, "
        f"so at {first.size} ({first.layout}) the program takes {us(extra)} µs more than the closed form. "
        "It computes exactly the eager engine's numbers, bit for bit, so it cannot merge lines the way "
        "the closed form does."
    ]


EXPLANATIONS: list[Callable[[Report, list[Target]], list[str]]] = [
    _why_step_time,
    _why_compiled_step,
    _why_torch_column,
    _why_peak_memory,
    _why_time_per_node,
    _why_chain_speed,
]


def explanations(report: Report) -> list[str]:
    """For each kind of missed target, the reason, with this run's own figures."""
    missed = [t for t in targets(report) if t.met is False]
    return [note for explain in EXPLANATIONS for note in explain(report, missed)]
