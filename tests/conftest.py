"""Shared test settings: hypothesis, the PyTorch oracle, fixtures made once per run, NumPy's BLAS kernel,
the skipped-tests summary."""

import atexit
import contextlib
import functools
import importlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from unittest import mock

import numpy as np
import pytest
from filelock import FileLock
from hypothesis import HealthCheck, settings

# The measured way round of a product (orientation.py): never the user's cache file from a test, but
# one file for the whole run, which the xdist workers and every command a test starts inherit (set
# here, before the workers start): each product is measured once per run, not once per process, and
# every process of the run computes it the same way round.
if "TINYGRAD_SOFTMAX_CHOICES" not in os.environ:
    _choices_dir = tempfile.mkdtemp(prefix="tinygrad-softmax-test-choices-")
    os.environ["TINYGRAD_SOFTMAX_CHOICES"] = os.path.join(_choices_dir, "matmul-choices.json")
    atexit.register(shutil.rmtree, _choices_dir, ignore_errors=True)

# Hypothesis: enough examples to find shape bugs, with no deadline on a shared machine.
settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an oracle: skipped where it is not installed, required where CI asks for it.

    ``.ci/run`` installs the ``torch`` extra and sets TINYGRAD_SOFTMAX_REQUIRE_TORCH=1, so
    there a missing PyTorch fails the oracle tests instead of skipping them.
    """
    if os.environ.get("TINYGRAD_SOFTMAX_REQUIRE_TORCH"):
        return importlib.import_module("torch")
    return pytest.importorskip("torch")


ROOT = Path(__file__).resolve().parents[1]


def _source_copy(where: Path) -> Path:
    """The project as a clean clone would have it: pyproject, README, LICENSE and the package."""
    source = where / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "tinygrad_softmax", source / "tinygrad_softmax", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built once per test run by pyproject's build backend, offline, from a copy."""
    where = tmp_path_factory.mktemp("wheel")
    source = _source_copy(where)
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(where / 'dist')!r}))"
    done = subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]  # the build backend is pyproject's setuptools>=77
    return where / "dist" / done.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- made once per test run

T = TypeVar("T")


def make_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """``make(folder)``, run once per test run however many pytest-xdist workers ask for it.

    Some fixtures take tens of seconds (the demo, the quick benchmark, the executed notebook); each
    xdist worker is a process of its own, so a session fixture alone runs once per worker. The
    workers of one run share the parent of their temporary folders: the first to ask makes the
    value there, in ``folder``, under a file lock, and pickles it; the others wait for the lock and
    read it. Which worker runs which test stays up to the scheduler. If ``make`` raises, nothing is
    kept and the next worker to ask tries again (and fails the same way).
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    kept = root / f"made-once-{name}.pickle"
    with FileLock(str(root / f"made-once-{name}.lock")):
        if kept.is_file():
            return cast(T, pickle.loads(kept.read_bytes()))
        folder = root / f"made-once-{name}"
        shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
        folder.mkdir()
        value = make(folder)
        kept.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def made_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[Path], T]], T]:
    """:func:`make_once` for a test module's own fixtures: ``made_once(name, make)``."""
    return functools.partial(make_once, tmp_path_factory)


# ---------------------------------------------------------------- the lecture demo, run once


@dataclass
class DemoRun:
    """`tinygrad-softmax demo --out OUT`, run once: its result, its folder, what it printed, its status."""

    result: Any  # the DemoResult run_demo returned
    out: Path
    lines: list[str]
    status: int


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The whole demo through the command line, once for every test that reads its output.

    It takes a good part of a minute, so the tests that read it share one run, across every
    pytest-xdist worker (see :func:`make_once`).
    """
    return make_once(tmp_path_factory, "demo", _run_the_demo)


def _run_the_demo(folder: Path) -> DemoRun:
    from tinygrad_softmax.cli import main
    from tinygrad_softmax.lecture import demo

    out = folder / "demo-output"
    returned = []
    run_demo = demo.run_demo

    def recorded(*args: Any, **kwargs: Any) -> Any:
        returned.append(run_demo(*args, **kwargs))
        return returned[-1]

    printed = io.StringIO()
    with mock.patch.object(demo, "run_demo", recorded), contextlib.redirect_stdout(printed):
        status = main(["demo", "--out", str(out)])
    (result,) = returned
    return DemoRun(result, out, printed.getvalue().splitlines(), status)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's own marker, named here too for a run without pytest-xdist.
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker as its group")
    # Under pytest-xdist each core runs a worker of its own; BLAS threads on top of that only wait for
    # each other (OpenBLAS spins while it waits), which made the matrix products of two workers on two
    # cores about 1.7 times slower. So the workers, and every command a test starts, run one BLAS
    # thread, unless the environment says otherwise (.ci/run asks for 2 in its numerics run). Set
    # here, before the workers start, as the choices file above.
    controller = getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER")
    if controller and not any(os.environ.get(name) for name in BLAS_THREADS):
        os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")  # OpenBLAS reads either; PyTorch the second


# The fixtures made once per run (make_once), the longest to make first.
MADE_ONCE = ("quick_report", "demo_run", "executed", "default_deck")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist: the first test that reads each of MADE_ONCE runs first, the others that
    read one after half of the rest.

    The workers take the tests in this order, one or two at a time. So the long fixtures are made at
    the start, side by side on different workers, while the other workers go on with other tests;
    by the time the tests that read them come up, they are made, and no worker waits for another.
    The order within a module is kept; a run without xdist keeps the order of the files.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    first: list[pytest.Item] = []
    readers: list[pytest.Item] = []
    rest: list[pytest.Item] = []
    made: set[str] = set()
    for item in items:
        reads = {name for name in MADE_ONCE if name in getattr(item, "fixturenames", ())}
        if reads - made:
            first.append(item)
            made |= reads
        elif reads:
            readers.append(item)
        else:
            rest.append(item)
    first.sort(key=lambda item: min(MADE_ONCE.index(n) for n in MADE_ONCE if n in item.fixturenames))
    half = len(rest) // 2
    while 0 < half < len(rest) and rest[half].path == rest[half - 1].path:  # not in the middle of a file
        half += 1
    items[:] = [*first, *rest[:half], *readers, *rest[half:]]


# ---------------------------------------------------------------- NumPy's BLAS kernel

# OpenBLAS picks a kernel for the CPU it runs on (Haswell, SkylakeX, Zen, ...) and each sums a matrix
# product in an order of its own: results differ in the last bits from CPU to CPU. The tests marked
# `numerics` are those whose comparisons that could touch: stored references, printouts quoted in the
# docs, tight tolerances, bit-for-bit comparisons of two computations. `.ci/run` runs them a second
# time under another kernel (OPENBLAS_CORETYPE) and another number of BLAS threads, with
# TINYGRAD_SOFTMAX_REQUIRE_BLAS=1, which makes this check that the kernel and threads asked for are
# the ones NumPy's OpenBLAS runs.


def numpy_blas() -> dict[str, Any]:
    """threadpoolctl's description of the BLAS that NumPy uses (empty where threadpoolctl is missing)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    infos = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    numpy_dir = str(Path(np.__file__).parent.parent)  # site-packages: numpy/ and numpy.libs/
    own = [info for info in infos if str(info.get("filepath", "")).startswith(numpy_dir)]
    return (own or infos or [{}])[0]


def pytest_report_header(config: pytest.Config) -> str:
    blas = numpy_blas()
    if not blas:
        return "NumPy's BLAS: unknown (threadpoolctl is not installed)"
    # Under pytest-xdist the workers start after this process and read the environment set above.
    workers = getattr(config.option, "numprocesses", None)
    threads = os.environ.get("OPENBLAS_NUM_THREADS") if workers else None
    return (
        f"NumPy's BLAS: {blas.get('internal_api')} {blas.get('version')}, "
        f"{blas.get('architecture')} kernel, {threads or blas.get('num_threads')} threads"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("TINYGRAD_SOFTMAX_REQUIRE_BLAS"):
        return
    blas = numpy_blas()
    asked = os.environ.get("OPENBLAS_CORETYPE", "")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "")
    problems = []
    if blas.get("internal_api") != "openblas":
        problems.append(f"NumPy's BLAS is {blas.get('internal_api', 'unknown')}, not OpenBLAS")
    elif not asked or str(blas.get("architecture", "")).lower() != asked.lower():
        problems.append(
            f"OPENBLAS_CORETYPE={asked!r} but OpenBLAS runs its {blas.get('architecture')} kernel"
        )
    if threads and str(blas.get("num_threads")) != threads:
        problems.append(f"OPENBLAS_NUM_THREADS={threads} but OpenBLAS runs {blas.get('num_threads')} threads")
    if problems:
        raise pytest.UsageError("TINYGRAD_SOFTMAX_REQUIRE_BLAS: " + "; ".join(problems))


# ---------------------------------------------------------------- what was skipped, and how to run it

# Each optional part whose tests skip without it: how to tell its skips, and how to get them to run.
OPTIONAL = {
    "PyTorch": (("torch",), "make test EXTRAS=dev,torch runs them"),
    "the browser": (
        ("chromium", "playwright"),
        "make browser installs Chromium (or set TINYGRAD_SOFTMAX_CHROMIUM to one) and runs them",
    ),
    "Graphviz's dot": (("graphviz",), "make system-deps installs it and runs them"),
    "JAX": (("jax",), "make install EXTRAS=dev,bench runs them"),
    "SymPy": (("sympy",), "make install (SymPy is in the demo extra, which dev includes) runs them"),
}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line per optional part whose tests were skipped, whether or not a test failed."""
    counts: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        part = next((p for p, (words, _) in OPTIONAL.items() if any(w in reason.lower() for w in words)), "")
        counts[part or "other"] += 1
    if not counts:
        return
    terminalreporter.write_sep("-", "skipped tests")
    for part, (_, how) in OPTIONAL.items():
        if counts[part]:
            terminalreporter.write_line(f"{counts[part]} skipped because {part} is not installed: {how}")
    if counts["other"]:
        terminalreporter.write_line(f"{counts['other']} skipped for other reasons")
    terminalreporter.write_line("pytest -rs lists every reason")


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and a kernel that lets this process mount): skipped where impossible;
    tests/lecture/test_outputs.py covers the same code everywhere by monkeypatching."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if getattr(os, "geteuid", lambda: 1)() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile, for the explorer's and the deck's pages: skipped where
    none is installed, required in CI (``.ci/run`` sets TINYGRAD_SOFTMAX_REQUIRE_BROWSER=1, so there a
    missing browser or Playwright fails these tests instead of skipping them)."""
    from browser import chromium, chromium_executable

    required = bool(os.environ.get("TINYGRAD_SOFTMAX_REQUIRE_BROWSER"))
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if required:
            raise
        pytest.skip("Playwright is not installed: pip install 'tinygrad_softmax[dev]'")
    executable = chromium_executable()
    if executable is None:
        if required:
            pytest.fail("TINYGRAD_SOFTMAX_REQUIRE_BROWSER is set but no Chromium is on PATH")
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set TINYGRAD_SOFTMAX_CHROMIUM)")
    with chromium(executable) as context:
        yield context
