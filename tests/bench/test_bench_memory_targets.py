"""The peak-memory targets are judged only at the sizes where they mean something."""

from test_bench import fake_report

from tinygrad_softmax import bench


def peak_memory(report):
    return [t for t in bench.targets(report) if t.kind == "peak-memory"]


def test_quick_mode_does_not_judge_peak_memory_at_the_small_size():
    settings = bench.Settings.for_mode(quick=True)
    assert settings.memory_size == "small"
    report = fake_report({"small": 1.0}, (0.001, 0.1), 7000.0, 0.0, settings)  # 7× the closed form
    targets = peak_memory(report)
    assert len(targets) == 2 and all(t.met is None for t in targets)
    assert all("not judged at this size" in t.measured and "missed" not in t.measured for t in targets)
    text = bench.render(report)
    assert "| not judged at this size |" in text and "**Peak memory.**" not in text
    assert all(t.met is not None for t in bench.targets(report) if t.kind == "memory-growth")


def test_the_large_size_still_judges_peak_memory():
    report = fake_report({"cifar-like": 1.0}, (0.001, 0.1), 7000.0, 0.0)
    assert [t.met for t in peak_memory(report)] == [False, True]  # engine 7×, fused op 1×
    assert peak_memory(report)[0].measured.startswith("7.00× (6.8 MiB vs 1.0 MiB")
