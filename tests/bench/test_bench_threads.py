"""The step is measured with 1 and with 2 threads, each in a process of its own, and judged per thread count.

No timing is asserted here: the figures depend on the machine.
"""

import os
import re
import subprocess
import sys

import pytest

from tinygrad_softmax import bench
from tinygrad_softmax.bench import judging, machine
from tinygrad_softmax.cli import main


@pytest.mark.parametrize("threads", [1, 2])
def test_a_measuring_process_is_pinned_to_its_cpus_and_its_blas_threads(threads):
    """What the child process itself reports: the CPUs it may run on, and threadpoolctl's BLAS threads."""
    facts = machine.in_subprocess(machine.__name__, "thread_facts", threads, threads, "the environment")
    usable = threads
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        assert facts["CPUs the process may run on"] == ", ".join(map(str, cpus))
        usable = len(cpus)
    if machine.installed("threadpoolctl"):  # OpenBLAS starts no more threads than the CPUs it may use
        assert facts["NumPy's BLAS threads"] == f"{usable} (set via the environment)"


def test_limit_threads_is_what_threadpoolctl_then_reports():
    code = (
        "from tinygrad_softmax.bench import machine; import sys; "
        "how = machine.limit_threads(int(sys.argv[1])); "
        "print(how, machine.thread_facts(0, 'x')[\"NumPy's BLAS threads\"])"
    )
    pytest.importorskip("threadpoolctl")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    for threads in (1, 2):
        done = subprocess.run(
            [sys.executable, "-c", code, str(threads)], capture_output=True, text=True, env=env, check=True
        )
        assert done.stdout.split() == ["threadpoolctl", str(threads), "(set", "via", "x)"]


def result(size, layout, threads, engine, compiled, torch=9.0, closed=1.0):
    timings = {
        f"{bench.NUMPY_PREFIX}: a": bench.Timing(closed, closed, closed),
        f"{bench.NUMPY_PREFIX}: b": bench.Timing(2 * closed, 2 * closed, 2 * closed),
        bench.ENGINE: bench.Timing(engine, engine, engine),
        bench.ENGINE_FUSED: bench.Timing(engine, engine, engine),
        bench.COMPILED: bench.Timing(compiled, compiled, compiled),
        bench.TORCH: bench.Timing(torch, torch, torch),
        bench.TORCH_FUSED: bench.Timing(torch, torch, torch),
        bench.AUTOGRAD: bench.Timing(torch, torch, torch),
    }
    kinds = {name: "numpy" if name.startswith(bench.NUMPY_PREFIX) else "other" for name in timings}
    return bench.SizeResult(size, layout, timings, kinds, threads)


def two_thread_report(sizes, settings=None):
    from test_bench import fake_report

    report = fake_report({"tiny": 1.0}, (0.001, 0.1), 1000.0, 0.0, settings)
    report.sizes = sizes
    return report


def test_the_targets_are_judged_per_thread_count_against_that_thread_counts_closed_form():
    report = two_thread_report(
        [
            result("mnist-like", "row", 1, engine=1.04, compiled=1.02),
            # With 2 threads the closed form is faster (0.6), so the same engine time misses.
            result("mnist-like", "row", 2, engine=1.04, compiled=0.61, closed=0.6),
        ]
    )
    got = {t.claim: t for t in bench.targets(report)}
    one = got[f"mnist-like, row, 1 thread: {bench.ENGINE} ≤ 1.1 × closed form"]
    two = got[f"mnist-like, row, 2 threads: {bench.ENGINE} ≤ 1.1 × closed form"]
    assert (one.met, one.measured, one.threads) == (True, "1.04×", 1)
    assert (two.met, two.measured, two.threads) == (False, "1.73×", 2)
    assert got[f"mnist-like, row, 2 threads: {bench.COMPILED} ≤ 1.02 × closed form"].met is True
    assert got[f"mnist-like, row, 1 thread: {bench.COMPILED} ≤ 1.02 × closed form"].met is True


def everything_missed():
    """A report in which every target is missed, with 1 and with 2 threads, at every size."""
    sizes = [
        result(
            size,
            layout,
            threads,
            engine=50.0 / threads,
            compiled=40.0 / threads,
            torch=2.0,
            closed=1 / threads,
        )
        for threads in (1, 2)
        for size in ("tiny", "small", "mnist-like", "cifar-like")
        for layout in ("row", "column")
    ]
    for r in sizes:
        r.timings[bench.MICROGRAD] = bench.Timing(1.5, 1.5, 1.5)
    report = two_thread_report(sizes)
    report.chains = [
        bench.ChainResult("engine", 1_000, 0.001),
        bench.ChainResult("engine", 100_000, 1.0),
        bench.ChainResult("PyTorch", 100_000, 0.5),
        bench.ChainResult(bench.COLLECTOR_PAUSED, 1_000, 0.001),
        bench.ChainResult(bench.COLLECTOR_PAUSED, 100_000, 0.2),
    ]
    for m in report.memory:
        if m["kind"] == "engine":
            m.update(peak_rss_kib=9000.0, growth_traced_kib=64.0)
    return report


def test_every_missed_target_is_explained_with_either_thread_count():
    report = everything_missed()
    missed = [t for t in bench.targets(report) if t.met is False]
    assert {t.threads for t in missed if t.kind in ("step-time", "compiled-step-time", "faster")} == {1, 2}
    assert {t.kind for t in missed} == {
        "step-time",
        "compiled-step-time",
        "faster",
        "chain-speed",
        "time-per-node",
        "peak-memory",
        "memory-growth",
    }
    assert bench.unexplained(report) == []
    notes = "\n".join(bench.explanations(report))
    # The 2-thread misses are explained with the 2-thread figures, against the 1-thread ones.
    assert "(row, 2 threads) that fixed cost alone is" in notes
    assert "With 2 threads the closed form's step there takes" in notes
    for heading in ("**Step time.**", "**Compiled step.**", "**Memory growth, ", "**Peak memory.**"):
        assert heading in notes
    # The compiled step's note names the two programs compile chooses between, counted from the listings.
    compiled_note = notes.split("**Compiled step.**")[1].split("\n")[0]
    assert bench.COMPILED_STEPS in compiled_note and "dZ = (P − onehot(y))/N" in compiled_note
    assert re.search(r"\(\d+ statements in all", compiled_note) and "bit for bit, so it cannot" not in notes
    assert f"**{bench.ENGINE} against {bench.AUTOGRAD}, mnist-like, row, 2 threads.**" in notes


def test_the_second_thread_sentence_uses_the_figures_of_both_runs():
    report = two_thread_report(
        [
            result("tiny", "row", 1, engine=6.0, compiled=1.5),
            result("tiny", "row", 2, engine=6.0, compiled=1.5),
            result("mnist-like", "row", 1, engine=430e-6, compiled=310e-6, closed=300e-6),
            result("mnist-like", "row", 2, engine=320e-6, compiled=210e-6, closed=200e-6),
        ]
    )
    notes = "\n".join(bench.explanations(report))
    assert (
        "With 2 threads the closed form's step there takes 200 µs against 300 µs with 1 thread (BLAS "
        f"shares the matrix products among the threads), while {bench.ENGINE} takes 120 µs beyond it "
        "against 130 µs" in notes
    )


def test_a_second_thread_that_found_no_free_cpu_is_called_noise_not_a_speed_up():
    report = two_thread_report(
        [
            result("tiny", "row", 1, engine=6.0, compiled=1.5),
            result("tiny", "row", 2, engine=6.0, compiled=1.5),
            result("mnist-like", "row", 1, engine=430e-6, compiled=310e-6, closed=300e-6),
            result("mnist-like", "row", 2, engine=900e-6, compiled=800e-6, closed=700e-6),
        ]
    )
    notes = "\n".join(bench.explanations(report))
    assert "BLAS shares the matrix products" not in notes
    assert (
        "With 2 threads the closed form's step there took no less time than with 1 thread (700 µs against "
        "300 µs): the extra thread found no free CPU" in notes
    )


def test_the_column_layout_reason_is_given_only_where_the_figures_show_it():
    def column_loss(torch_column, engine_column):
        report = two_thread_report(
            [
                result("small", "row", 1, engine=3.0, compiled=1.2, torch=4.0),
                result("small", "column", 1, engine=engine_column, compiled=1.2, torch=torch_column),
            ]
        )
        return "\n".join(bench.explanations(report))

    shown = column_loss(
        torch_column=2.0, engine_column=3.5
    )  # PyTorch gains in the column layout, the engine loses
    assert "**Against PyTorch in the column layout, small, column, 1 thread.**" in shown
    other = column_loss(torch_column=2.5, engine_column=2.9)  # both gain: not that reason
    assert "Against PyTorch in the column layout" not in other
    assert f"**{bench.ENGINE} against {bench.TORCH}, small, column, 1 thread.**" in other


def test_explanations_are_chosen_for_each_missed_target():
    """Take one explanation away: the targets it covered are left unexplained (the test above would fail)."""
    report = everything_missed()
    kept = [entry for entry in judging.EXPLANATIONS if entry[1] is not judging._why_growth]
    original = judging.EXPLANATIONS
    try:
        judging.EXPLANATIONS = kept
        assert {t.kind for t in bench.unexplained(report)} == {"memory-growth"}
    finally:
        judging.EXPLANATIONS = original


def test_a_size_result_survives_the_trip_from_its_process():
    r = result("small", "column", 2, engine=3.0, compiled=1.2)
    back = bench.SizeResult.from_json(r.to_json())
    assert back == r and back.threads == 2 and back.baseline == f"{bench.NUMPY_PREFIX}: a"


def test_the_report_has_a_table_per_thread_count_and_says_so():
    report = two_thread_report([result("tiny", "row", t, engine=6.0, compiled=1.5) for t in (1, 2)])
    report.thread_facts = {t: {"NumPy's BLAS threads": f"{t} (set via threadpoolctl)"} for t in (1, 2)}
    text = bench.render(report)
    assert "## One training step, 1 thread\n" in text and "## One training step, 2 threads\n" in text
    assert "| step, 2 threads | NumPy's BLAS threads: 2 (set via threadpoolctl) |" in text
    assert "measured with 1 thread and with 2 threads" in text
    assert "| long chains, memory | 1 thread |" in text


@pytest.mark.parametrize(
    ("given", "expected"), [(None, (1, 2)), ("1", (1,)), ("2,1", (2, 1)), ("1,1,2", (1, 2))]
)
def test_the_threads_option_takes_a_list(monkeypatch, given, expected):
    seen = {}
    monkeypatch.setattr(bench, "main", lambda **kwargs: seen.update(kwargs) or 0)
    assert main(["bench", "--quick"] + ([] if given is None else ["--threads", given])) == 0
    assert seen["threads"] == expected


def test_bench_main_takes_one_thread_count_or_several(monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run", lambda settings, log: seen.append(settings.threads) or None)
    monkeypatch.setattr(bench, "render", lambda report: "")
    bench.main(quick=True, threads=2)
    bench.main(quick=True, threads=[1, 2, 1])
    bench.main(quick=True)
    assert seen == [(2,), (1, 2), (1, 2)]


def test_the_longest_steps_get_fewer_rounds_and_the_report_says_so(monkeypatch):
    settings = bench.Settings()
    assert [settings.repeats_for(size) for size in settings.sizes] == [41, 41, 41, 21]
    assert bench.Settings.for_mode(quick=True).repeats_for("small") == 5
    calls = []
    monkeypatch.setattr(
        machine,
        "in_subprocess",
        lambda *args, **kwargs: calls.append(args) or {"sizes": [], "facts": {}, "choices": []},
    )
    from tinygrad_softmax.bench import runner

    monkeypatch.setattr(runner, "in_subprocess", machine.in_subprocess)
    runner._steps(settings, 2)
    assert calls[0][2:] == (2, 2, {"tiny": 41, "small": 41, "mnist-like": 41, "cifar-like": 21}, 0.002)
    report = two_thread_report([result("tiny", "row", 1, engine=6.0, compiled=1.5)], settings)
    assert "41 rounds (21 at cifar-like, whose steps are the longest)" in bench.render(report)
