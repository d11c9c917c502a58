"""The benchmark runs end to end, checks gradients before timing, and judges its targets right.

No timing is asserted here: the figures depend on the machine.
"""

import dataclasses
import os
from unittest import mock

import numpy as np
import pytest

from tinygrad_softmax import analytic, bench, ops
from tinygrad_softmax.bench import contenders, judging, machine, runner, timing
from tinygrad_softmax.cli import main

# The memory runs of the report the tests read take 200 tiny steps, not quick mode's 2,000: the tests
# read which parts and rows the report has, not the growth it measured (nine processes of 2 × 2,000
# steps, under tracemalloc, were most of its time).
MEMORY_STEPS = 200


def _quick_report(folder):
    quick_settings = runner.Settings.for_mode

    def fewer_memory_steps(quick, threads=runner.THREADS):
        settings = quick_settings(quick, threads)
        assert settings.quick and settings.memory_steps > MEMORY_STEPS
        return dataclasses.replace(settings, memory_steps=MEMORY_STEPS)

    path = folder / "benchmarks.md"
    with mock.patch.object(runner.Settings, "for_mode", staticmethod(fewer_memory_steps)):
        assert main(["bench", "--quick", "--write", str(path)]) == 0
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def quick_report(made_once):
    """`tinygrad-softmax bench --quick --write FILE`, run once for every test that reads the report."""
    return made_once("bench-quick", _quick_report)


def test_quick_mode_writes_the_whole_report(quick_report):
    for heading in ("## Machine", "## One training step", "## Long chains", "## Memory", "## Targets"):
        assert heading in quick_report
    assert "the ratios between implementations measured in the same run" in quick_report
    for name in (bench.ENGINE, bench.ENGINE_FUSED, bench.AUTOGRAD, bench.MICROGRAD):
        assert f"| {name} |" in quick_report, name
    facts = ("| CPU |", "| load |", "| BLAS |", "| step, 1 thread |", "| step, 2 threads |", "| NumPy |")
    for fact in (*facts, "| PyTorch |"):
        assert fact in quick_report
    assert f"{os.cpu_count()} logical CPUs" in quick_report
    targets = quick_report.split("## Targets")[1]
    assert targets.count("| met |") + targets.count("| **missed** |") >= 10
    assert f"no memory growth over {MEMORY_STEPS:,} tiny steps" in targets


def test_quick_mode_measures_pytorch_too(quick_report, torch):
    for name in (bench.TORCH, bench.TORCH_FUSED):
        assert f"| {name} |" in quick_report, name
    assert f"| PyTorch | {torch.__version__} |" in quick_report
    assert "not measured" not in quick_report.split("## Targets")[1]  # every competitor was there


def test_the_step_table_lists_every_size_and_layout(quick_report):
    rows = [
        line for line in quick_report.splitlines() if line.startswith("| tiny") or line.startswith("| small")
    ]
    for size in ("tiny (4, 3, 3)", "small (64, 32, 10)"):
        for layout in ("row", "column"):
            group = [row for row in rows if row.startswith(f"| {size} | {layout} |")]
            assert any(f"**{bench.NUMPY_PREFIX}" in row and row.endswith("| 1.00 |") for row in group)
            assert any(f"| {bench.ENGINE} |" in row for row in group)


@pytest.mark.parametrize("layout", bench.LAYOUTS)
@pytest.mark.parametrize("size", ["tiny", "small"])
def test_every_implementation_passes_the_gradient_check(size, layout):
    problem = bench.make_problem(size, layout)
    for impl in bench.implementations():
        if size in impl.sizes:
            bench.check_gradients(impl, impl.make(problem), problem)


def test_the_problem_carries_the_closed_form(rng):
    p = bench.make_problem("small", "column")
    assert p.X.shape == (32, 64) and p.W.shape == (10, 32) and p.b.shape == (10, 1) and p.axis == 0
    ref = analytic.linear_classifier(p.W, p.b, p.X, p.labels, "column")
    np.testing.assert_array_equal(p.dW, ref.dW)
    np.testing.assert_array_equal(p.db, ref.db)


def wrong_closed_form(problem):
    """The closed form, forgetting the 1/N of the mean."""
    axis = problem.axis

    def step():
        Z = analytic.logits(problem.W, problem.b, problem.X, problem.layout)
        dZ = analytic.softmax(Z, axis) - analytic.one_hot(problem.labels, problem.classes, axis)
        return analytic.weights_grad(dZ, problem.X, problem.layout), analytic.bias_grad(dZ, problem.layout)

    return step


def test_a_wrong_implementation_is_refused_before_timing(monkeypatch):
    timed = []
    monkeypatch.setattr(timing, "interleaved_timings", lambda *args: timed.append(args))
    impls = [
        bench.Implementation("NumPy right", "numpy", contenders._numpy_in_place),
        bench.Implementation("forgot 1/N", "numpy", wrong_closed_form),
    ]
    with pytest.raises(bench.BenchmarkError, match=r"forgot 1/N gives the wrong dW \(tiny, row layout\)"):
        bench.time_size("tiny", "row", impls, repeats=3, sample_seconds=1e-4)
    assert timed == []


def test_a_wrong_engine_rule_is_caught(monkeypatch):
    monkeypatch.setattr(ops.Exp, "backward", lambda self, grad, x, out: (grad * out * 1.001,))
    engine = next(i for i in bench.implementations() if i.name == bench.ENGINE)
    fused = next(i for i in bench.implementations() if i.name == bench.ENGINE_FUSED)
    problem = bench.make_problem("tiny", "column")
    with pytest.raises(bench.BenchmarkError, match=r"engine \(primitives\) gives the wrong dW"):
        bench.check_gradients(engine, engine.make(problem), problem)
    bench.check_gradients(fused, fused.make(problem), problem)  # the fused op does not use exp's rule


def test_a_wrong_shape_is_caught():
    problem = bench.make_problem("tiny", "column")
    impl = bench.Implementation("row-shaped db", "numpy", lambda p: lambda: (p.dW, p.db.ravel()))
    with pytest.raises(
        bench.BenchmarkError, match=r"row-shaped db gives db of shape \(3,\), the closed form \(3, 1\)"
    ):
        bench.check_gradients(impl, impl.make(problem), problem)


def test_timings_interleave_the_implementations():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    timings = bench.interleaved_timings(steps, repeats=4, sample_seconds=0.0)
    assert set(timings) == {"a", "b", "c"}
    for measured in timings.values():
        assert measured.p25 <= measured.median <= measured.p75
    measured = calls[6:]  # after two warm-up calls each
    assert measured == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]


def fake_report(ratios, chain_seconds, memory_kib, growth_kib, settings=None):
    """A report whose numbers are given, to check how the targets are judged."""
    settings = settings or bench.Settings()
    sizes = []
    for size, ratio in ratios.items():
        timings = {
            f"{bench.NUMPY_PREFIX}: a": bench.Timing(1.0, 1.0, 1.0),
            f"{bench.NUMPY_PREFIX}: b": bench.Timing(2.0, 2.0, 2.0),
            bench.ENGINE: bench.Timing(ratio, ratio, ratio),
            bench.ENGINE_FUSED: bench.Timing(ratio / 2, ratio / 2, ratio / 2),
            bench.TORCH: bench.Timing(5.0, 5.0, 5.0),
            bench.TORCH_FUSED: bench.Timing(ratio / 3, ratio / 3, ratio / 3),
        }
        kinds = {name: ("numpy" if name.startswith(bench.NUMPY_PREFIX) else "other") for name in timings}
        sizes.append(bench.SizeResult(size, "row", timings, kinds))
    short, long = settings.chain_lengths
    chains = [
        bench.ChainResult("engine", short, chain_seconds[0]),
        bench.ChainResult("engine", long, chain_seconds[1]),
        bench.ChainResult("PyTorch", long, 2.0),
    ]
    memory = [
        {
            "name": f"{bench.NUMPY_PREFIX}: a",
            "kind": "numpy",
            "peak_rss_kib": 1000.0,
            "growth_traced_kib": 0.0,
        },
        {
            "name": f"{bench.NUMPY_PREFIX}: b",
            "kind": "numpy",
            "peak_rss_kib": 3000.0,
            "growth_traced_kib": 0.0,
        },
        {"name": bench.ENGINE, "kind": "engine", "peak_rss_kib": memory_kib, "growth_traced_kib": growth_kib},
        {"name": bench.ENGINE_FUSED, "kind": "engine", "peak_rss_kib": 1000.0, "growth_traced_kib": 0.0},
    ]
    for m in memory:
        m.update(traced_peak_kib=None, warmup_traced_kib=None, growth_rss_kib=None)
    return bench.Report(settings, {}, sizes, chains, memory)


def verdicts(report):
    return {t.claim: t.met for t in bench.targets(report)}


def test_targets_are_judged_against_the_fastest_closed_form():
    report = fake_report({"cifar-like": 1.09, "mnist-like": 1.12, "tiny": 2.9}, (0.001, 0.2), 1100.0, 0.5)
    got = verdicts(report)
    assert got[f"cifar-like, row, 1 thread: {bench.ENGINE} ≤ 1.1 × closed form"] is True
    assert got[f"mnist-like, row, 1 thread: {bench.ENGINE} ≤ 1.1 × closed form"] is False
    assert got[f"tiny, row, 1 thread: {bench.ENGINE} ≤ 3 × closed form"] is True
    assert got[f"tiny, row, 1 thread: {bench.ENGINE} faster than {bench.TORCH}"] is True
    assert got[f"tiny, row, 1 thread: {bench.ENGINE_FUSED} faster than {bench.TORCH_FUSED}"] is False
    assert got[f"tiny, row, 1 thread: {bench.ENGINE} faster than {bench.AUTOGRAD}"] is None  # not in this run
    assert got["chain of 100,000 ops: build + backward faster than PyTorch"] is True
    assert got["time per node, 100,000-op chain ≤ 1.5 × 1,000-op chain"] is False  # 2 µs per node against 1
    memory_claim = f"peak resident memory of a cifar-like step: {bench.ENGINE} ≤ 1.15 × closed form"
    assert got[memory_claim] is True  # 1100 KiB against the smaller closed form's 1000 KiB
    assert got[f"{bench.ENGINE}: no memory growth over 10,000 tiny steps"] is True


def test_growth_and_memory_misses_are_reported():
    report = fake_report({"small": 3.5}, (0.001, 0.1), 1200.0, 64.0)
    assert verdicts(report)["time per node, 100,000-op chain ≤ 1.5 × 1,000-op chain"] is True
    got = verdicts(report)
    assert got[f"small, row, 1 thread: {bench.ENGINE} ≤ 3 × closed form"] is False
    assert got[f"peak resident memory of a cifar-like step: {bench.ENGINE} ≤ 1.15 × closed form"] is False
    assert got[f"{bench.ENGINE}: no memory growth over 10,000 tiny steps"] is False
    text = bench.render(report)
    assert "**missed**" in text and "## Why the missed targets are missed" in text
    notes = bench.explanations(report)
    assert any(note.startswith("**Step time.**") for note in notes)
    assert any(note.startswith("**Peak memory.**") for note in notes)


def test_nothing_to_explain_when_every_target_is_met():
    report = fake_report({"cifar-like": 1.01}, (0.001, 0.1), 1000.0, 0.0)
    report.sizes[0].timings[bench.AUTOGRAD] = bench.Timing(9.0, 9.0, 9.0)
    report.sizes[0].timings[bench.TORCH_FUSED] = bench.Timing(9.0, 9.0, 9.0)
    assert all(t.met for t in bench.targets(report))
    assert bench.explanations(report) == []
    assert "## Why" not in bench.render(report)


def test_the_report_states_the_machine_it_ran_on_not_a_fixed_one():
    report = fake_report({"tiny": 1.0}, (0.001, 0.1), 1000.0, 0.0)
    report.facts = {"CPU": "Imaginary 9000, 64 logical CPUs", "load": "0.50, 0.40, 0.30"}
    text = bench.render(report)
    assert "| CPU | Imaginary 9000, 64 logical CPUs |" in text and "| load | 0.50, 0.40, 0.30 |" in text
    assert "2-core" not in text and "shared" not in text


def test_the_load_fact_is_the_machines_load_at_the_start(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (7.25, 3.5, 1.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (
        machine.machine_facts()["load"] == "7.25, 3.50, 1.00 (averages over 1, 5, 15 minutes, at the start)"
    )
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    busy = machine.machine_facts()["load"]
    assert busy.startswith("7.25, 3.50, 1.00") and "; more than the 4 CPUs: other work competed" in busy
    monkeypatch.delattr(os, "getloadavg")
    assert machine.machine_facts()["load"] == "unknown"


def test_a_missed_target_is_explained_by_its_kind_not_its_words(monkeypatch):
    report = fake_report({"small": 3.5}, (0.001, 0.1), 1000.0, 0.0)
    found = bench.targets(report)
    step = next(t for t in found if t.kind == "step-time")
    assert (step.size, step.layout, step.ours, step.met) == ("small", "row", bench.ENGINE, False)
    # Reword every claim: the explanation must still come, because it follows the kind.
    reworded = [dataclasses.replace(t, claim=f"claim {k}") for k, t in enumerate(found)]
    from tinygrad_softmax.bench import judging

    monkeypatch.setattr(judging, "targets", lambda _: reworded)
    assert any(note.startswith("**Step time.**") for note in bench.explanations(report))


def step_table(report_text, threads):
    """The rows of the step table measured with ``threads`` threads."""
    label = f"{threads} thread{'' if threads == 1 else 's'}"
    section = report_text.split(f"## One training step, {label}\n")[1].split("\n## ")[0]
    return [line for line in section.splitlines() if line.startswith(("| tiny", "| small"))]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_step_table_has_each_thread_count_with_its_own_closed_form(quick_report, threads):
    rows = step_table(quick_report, threads)
    for size in ("tiny (4, 3, 3)", "small (64, 32, 10)"):
        for layout in ("row", "column"):
            group = [row for row in rows if row.startswith(f"| {size} | {layout} |")]
            assert sum(f"**{bench.NUMPY_PREFIX}" in row and row.endswith("| 1.00 |") for row in group) == 1
            for name in (bench.ENGINE, bench.COMPILED):
                assert sum(f"| {name} |" in row for row in group) == 1, (threads, size, layout, name)
    targets = quick_report.split("## Targets")[1]
    label = f"{threads} thread{'' if threads == 1 else 's'}"
    for size in ("tiny", "small"):
        for limit in judging.COMPILED_LIMITS:
            assert f"| {size}, column, {label}: {bench.COMPILED} ≤ {limit:g} × closed form |" in targets


@pytest.mark.parametrize("threads", [1, 2])
def test_each_thread_count_really_ran_with_that_many_threads(quick_report, threads):
    """The machine section says what threadpoolctl, PyTorch and the CPU affinity reported in that process."""
    label = f"{threads} thread{'' if threads == 1 else 's'}"
    line = next(row for row in quick_report.splitlines() if row.startswith(f"| step, {label} |"))
    facts = dict(part.split(": ", 1) for part in line.split(" | ")[1].removesuffix(" |").split("; "))
    assert facts["NumPy's BLAS threads"] == f"{threads} (set via threadpoolctl)"
    if hasattr(os, "sched_getaffinity"):
        expected = sorted(os.sched_getaffinity(0))[:threads]
        assert facts["CPUs the process may run on"] == ", ".join(map(str, expected))
    if "PyTorch threads" in facts or machine.installed("torch"):
        assert facts["PyTorch threads"] == str(threads)
    if machine.installed("jax"):
        assert facts["JAX"].startswith("one XLA CPU thread per CPU")


def test_each_implementation_is_timed_on_arrays_of_its_own():
    """No contender finds X warm in the cache because another just read the same array."""
    seen = []

    def make(p):
        seen.append(p)
        return contenders._numpy_in_place(p)

    impls = [bench.Implementation(f"closed form {i}", "numpy", make) for i in range(2)]
    timing.time_size("tiny", "column", impls, repeats=1, sample_seconds=0.0001)
    first, second = seen
    for name in ("X", "W", "b", "labels"):
        a, b = getattr(first, name), getattr(second, name)
        assert not np.shares_memory(a, b), name
        assert np.array_equal(a, b) and a.strides == b.strides, name


def test_the_page_has_the_native_kernel_and_an_older_one_forced(quick_report):
    import re

    native = re.search(r"\| OpenBLAS kernel \| (\w+) \(its own choice", quick_report)
    assert native, "the page names the kernel OpenBLAS picked"
    older = "Sandybridge" if native.group(1) == "Haswell" else "Haswell"
    for threads in ("1 thread", "2 threads"):
        assert f"## One training step, {threads}, {older} kernel forced\n" in quick_report
    assert f"## Targets ({native.group(1)}, native kernel)" in quick_report
    assert f"## Targets ({older}, forced kernel)" in quick_report
    assert "## Which way round the products are computed" in quick_report


def test_the_readme_table_names_its_kernel_and_threads_and_stays_between_its_markers():
    from tinygrad_softmax.bench import report as page

    report = fake_report({"tiny": 2.0, "mnist-like": 1.05, "cifar-like": 1.01}, (0.001, 0.1), 1000.0, 0.0)
    report.kernel = "SkylakeX, native"
    readme = f"before\n{page.README_START}\nold table\n{page.README_END}\nafter\n"
    written = page.with_readme_table(readme, report)
    assert written.startswith("before\n") and written.endswith(f"{page.README_END}\nafter\n")
    assert (
        "old table" not in written and "OpenBLAS's SkylakeX kernel" in written and "1 BLAS thread" in written
    )
    assert "| mnist-like (256, 784, 10) | 1.05× | 0.53× |" in written
    with pytest.raises(ValueError, match="no cost-table markers"):
        page.with_readme_table("no markers", report)
