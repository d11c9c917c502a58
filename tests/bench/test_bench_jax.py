"""JAX's jit is the compiled peer: measured where JAX is installed, its absence said plainly where not."""

import numpy as np
import pytest
from test_bench import fake_report

from tinygrad_softmax import bench
from tinygrad_softmax.bench import contenders, machine, timing
from tinygrad_softmax.bench.judging import _step_targets


def hide_jax(monkeypatch):
    real = machine.installed

    def installed(module):
        return module != "jax" and real(module)

    for where in (machine, contenders, timing):
        monkeypatch.setattr(where, "installed", installed)


def closed_form_as_jax(problem):
    return lambda: (problem.dW.copy(), problem.db.copy())


def with_sizes(results):
    report = fake_report({"tiny": 1.0}, (0.001, 0.1), 1000.0, 0.0)
    report.sizes = results
    return report


def test_without_jax_the_bench_runs_and_says_how_to_get_it(monkeypatch):
    hide_jax(monkeypatch)
    monkeypatch.setattr(timing, "limit_threads", lambda threads: "the test")  # this process keeps its threads
    assert bench.JAX_JIT not in [i.name for i in bench.implementations()]
    found = timing.step_child(1, {"tiny": 1}, 0.0)
    results = [bench.SizeResult.from_json(r) for r in found["sizes"]]
    assert [(r.size, r.layout) for r in results] == [("tiny", "row"), ("tiny", "column")]
    assert all(bench.JAX_JIT not in r.timings and bench.COMPILED in r.timings for r in results)
    facts = machine.machine_facts()
    assert facts["JAX"].startswith("not installed") and "pip install -e '.[bench]'" in facts["JAX"]
    report = with_sizes(results)
    report.facts = facts
    assert not [t for t in bench.targets(report) if t.kind == "compiled-peer"]
    text = bench.render(report)
    section = text.split(f"## {bench.COMPILED} against {bench.JAX_JIT}\n")[1].split("\n## ")[0]
    assert "is not installed here" in section and "`make bench` installs it" in section
    assert f"| {bench.JAX_JIT} |" not in text


def fake_jax_result(threads=1):
    impls = [i for i in bench.implementations() if i.kind in ("numpy", "engine", "compiled")]
    impls.append(bench.Implementation(bench.JAX_JIT, "jax", closed_form_as_jax))
    return timing.time_size("tiny", "row", impls, 3, 0.0, threads)


def test_a_jax_row_gets_its_gap_to_the_compiled_step_stated_not_judged():
    results = [fake_jax_result(threads) for threads in (1, 2)]
    peers = [t for r in results for t in _step_targets(r) if t.kind == "compiled-peer"]
    assert [(t.met, t.threads, t.ours, t.theirs) for t in peers] == [
        (None, 1, bench.COMPILED, bench.JAX_JIT),
        (None, 2, bench.COMPILED, bench.JAX_JIT),
    ]
    text = bench.render(with_sizes(results))
    section = text.split(f"## {bench.COMPILED} against {bench.JAX_JIT}\n")[1].split("\n## ")[0]
    for r in results:
        gap = r.timings[bench.COMPILED].median / r.timings[bench.JAX_JIT].median
        assert f"| tiny | row | {r.threads} | " in section and f" | {gap:.2f} |" in section
    assert "JAX" not in text.split("## Targets")[1]  # the gap is not a target
    assert text.count(f"| {bench.JAX_JIT} |") == 2  # a row in each thread count's step table


def test_a_wrong_jax_is_refused_before_timing_like_every_contender():
    def forgot_the_mean(problem):
        return lambda: (problem.dW * problem.samples, problem.db * problem.samples)

    impls = [bench.Implementation(bench.JAX_JIT, "jax", forgot_the_mean)]
    with pytest.raises(bench.BenchmarkError, match=r"JAX jit gives the wrong dW \(tiny, row layout\)"):
        timing.time_size("tiny", "row", impls, 3, 0.0)


@pytest.mark.parametrize("layout", bench.LAYOUTS)
def test_real_jax_differentiates_the_same_loss_in_float64(layout):
    pytest.importorskip("jax")
    jax_jit = next(i for i in bench.implementations() if i.name == bench.JAX_JIT)
    problem = bench.make_problem("small", layout)
    step = jax_jit.make(problem)
    bench.check_gradients(jax_jit, step, problem, rtol=1e-12)
    dW, db = step()
    assert np.asarray(dW).dtype == np.float64 and np.asarray(db).shape == problem.db.shape
