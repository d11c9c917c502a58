"""orientation: the way round of a product measured once, kept for the process and cached on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_softmax import orientation
from tinygrad_softmax.matmul import product


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "choices.json"
    monkeypatch.setenv(orientation.ENV, str(path))
    # An earlier test in this process may have run the benchmark's step in-process (measure_afresh:
    # the cache is written but not read); these tests start from a process that reads it.
    monkeypatch.setattr(orientation, "_afresh", [])
    orientation.forget()
    yield path
    orientation.forget()


def _operands(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, k)), rng.standard_normal((k, n))


def test_small_products_are_not_measured(cache: Path) -> None:
    a, b = _operands(3, 4, 5)
    assert not orientation.turned(a, b)
    assert orientation.chosen() == {} and not cache.exists()


def test_a_product_is_measured_once_and_cached_on_disk(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _operands(10, 784, 256)
    first = orientation.turned(a, b)
    ((name, choice),) = orientation.chosen().items()
    assert name == orientation.key(a, b) and choice.turned == first and choice.shape == (10, 784, 256)
    assert choice.as_written_ms > 0 and choice.turned_ms > 0 and "ms" in choice.why()
    stored = json.loads(cache.read_text())["choices"]
    assert stored[name]["turned"] == first
    # The next process reads the file instead of measuring (a measurement here would fail).
    orientation.forget()
    monkeypatch.setattr(orientation, "measure", lambda a, b: pytest.fail("measured again"))
    assert orientation.turned(a, b) == first
    # A nearby shape is of the same size class: the same choice, no new measurement.
    c, d = _operands(10, 800, 250)
    assert orientation.turned(c, d) == first


def test_the_key_names_blas_kernel_threads_dtype_layouts_and_size_class() -> None:
    a, b = _operands(10, 784, 256)
    library, kernel, threads = orientation.blas().split("/")
    assert library and kernel and threads
    assert orientation.key(a, b) == f"{orientation.blas()}|float64|CC|8x1024x256"
    assert orientation.key(b.T, a.T).split("|")[2] == "FF"
    assert orientation.key(a.astype(np.float32), b.astype(np.float32)).split("|")[1] == "float32"


def test_the_choice_follows_the_measurement(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _operands(10, 784, 256)
    for turned_ms, expected in ((0.5, True), (0.99, False)):
        orientation.forget()
        cache.unlink(missing_ok=True)
        monkeypatch.setattr(orientation, "_fastest_runs", lambda x, y, t=turned_ms: (1e-3, t * 1e-3))
        assert orientation.turned(a, b) is expected
        assert orientation.chosen()[orientation.key(a, b)].turned_ms == pytest.approx(turned_ms)


def test_a_corrupt_cache_is_ignored_and_rewritten(cache: Path) -> None:
    cache.write_text("{not json")
    a, b = _operands(10, 784, 256)
    orientation.turned(a, b)
    assert orientation.key(a, b) in json.loads(cache.read_text())["choices"]
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temporary file left


def test_off_neither_reads_nor_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(orientation.ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    orientation.forget()
    a, b = _operands(10, 784, 256)
    orientation.turned(a, b)
    assert orientation.cache_path() is None and list(tmp_path.iterdir()) == []
    orientation.forget()


def test_the_cache_lives_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(orientation.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert orientation.cache_path() == tmp_path / "tinygrad-softmax" / "matmul-choices.json"


def test_clear_deletes_the_file_and_forgets(cache: Path) -> None:
    a, b = _operands(10, 784, 256)
    orientation.turned(a, b)
    assert orientation.clear() == cache and not cache.exists() and orientation.chosen() == {}
    assert orientation.clear() is None


@pytest.mark.parametrize("shape", [(10, 784, 256), (256, 784, 10), (100, 3072, 10)])
def test_both_ways_round_agree_to_rounding(shape: tuple[int, int, int]) -> None:
    a, b = _operands(*shape)
    with orientation.forced(False):
        written = product(a, b)
    with orientation.forced(True):
        turned = product(a, b)
    assert turned.flags.f_contiguous and written.flags.c_contiguous
    np.testing.assert_allclose(turned, written, rtol=1e-12, atol=1e-12)


def test_bench_clear_choices_deletes_the_cache(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinygrad_softmax.cli import main

    a, b = _operands(10, 784, 256)
    orientation.turned(a, b)
    assert cache.exists()
    assert main(["bench", "--clear-choices"]) == 0
    assert not cache.exists() and f"deleted the measured matmul choices, {cache}" in capsys.readouterr().out
    assert main(["bench", "--clear-choices"]) == 0
    assert "no measured matmul choices to delete" in capsys.readouterr().out
