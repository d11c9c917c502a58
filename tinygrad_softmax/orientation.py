"""Which way round a matrix product is computed here: measured once on this machine's BLAS.

``A B`` and ``(Bᵀ Aᵀ)ᵀ`` are the same product, handed to the same BLAS routine
(gemm) with the roles of rows and columns swapped; which of the two is faster
depends on the BLAS library, its kernel (OpenBLAS picks one for the CPU: Haswell,
SkylakeX, ...), its thread count, the operands' memory layouts and the shape.
So nothing here is a rule from someone else's machine: the first time a
product of a given *kind* (dtype and the operands' layouts) and *size class*
(each of m, k, n rounded to a power of two) is needed, :func:`turned` times
both ways on arrays of that shape (after a first untimed call of each, at least 3
and at most 7 runs each, interleaved, stopping after about 0.1 s) and keeps ``(Bᵀ Aᵀ)ᵀ`` only where its
fastest run beats ``A B``'s by more than 5 %. Products under a million
multiply-adds are never measured: there the call costs more than either way
round could save, and ``A B`` keeps its bits.

The choice is kept for the process and cached on disk, keyed by the BLAS
library, kernel, thread count, kind and size class, so that a lecture does not
pay for it twice: ``$XDG_CACHE_HOME/tinygrad-softmax/matmul-choices.json``
(``~/.cache/...`` without XDG_CACHE_HOME). ``TINYGRAD_SOFTMAX_CHOICES`` names
another file, or ``off`` to neither read nor write one. The file is written
atomically (a temporary file, then a rename); one that cannot be read is
ignored and rewritten. ``tinygrad-softmax bench --clear-choices`` deletes it.

Both ways compute the same product; they can differ in the last bit of a sum
(the order of the additions), so results agree to rounding whichever way is
chosen; within one process the choice never changes (unless :func:`forget` or
:func:`forced` is called), so a computation repeated in a process repeats its
bits. The BLAS is read once per process (threadpoolctl): a thread count changed
later inside the process is seen after :func:`forget`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENV = "TINYGRAD_SOFTMAX_CHOICES"
SMALL = 1 << 20  # multiply-adds below which A B is kept without measuring
MARGIN = 0.95  # turned only where it takes less than 95 % of A B's time
BUDGET = 0.1  # seconds: the measurement stops after this (each way has run at least MIN_RUNS times)
MIN_RUNS, MAX_RUNS = 3, 7
VERSION = 1


@dataclass(frozen=True)
class Choice:
    """One measured choice: which way round, and the times it was chosen by (the fastest run, in ms)."""

    turned: bool
    as_written_ms: float
    turned_ms: float
    shape: tuple[int, int, int]
    blas: str

    def why(self) -> str:
        m, k, n = self.shape
        way = "(Bᵀ Aᵀ)ᵀ" if self.turned else "A B"
        return (
            f"{way}: A B {self.as_written_ms:.3f} ms, (Bᵀ Aᵀ)ᵀ {self.turned_ms:.3f} ms "
            f"(×{self.turned_ms / self.as_written_ms:.2f}) at {m}×{k} by {k}×{n}"
        )


_choices: dict[str, Choice] = {}  # this process's choices, by key
_blas: list[str] = []  # the BLAS, read once per process
_forced: list[bool] = []
_afresh: list[bool] = []  # set by measure_afresh(): the cache file is written but not read


def blas() -> str:
    """This process's BLAS: ``library/kernel/threads``, e.g. ``openblas/Haswell/2`` (read once)."""
    if not _blas:
        _blas.append(_read_blas())
    return _blas[0]


def _read_blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "?"
        return f"unknown/unknown/{threads}"
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            kernel = info.get("architecture") or "unknown"
            return f"{info.get('internal_api', 'unknown')}/{kernel}/{info.get('num_threads', '?')}"
    return "unknown/unknown/1"


def cache_path() -> Path | None:
    """The cache file, or None where ``TINYGRAD_SOFTMAX_CHOICES=off``."""
    configured = os.environ.get(ENV)
    if configured:
        return None if configured.lower() == "off" else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinygrad-softmax" / "matmul-choices.json"


def _layout(a: Any) -> str:
    flags = a.flags
    return "C" if flags.c_contiguous else "F" if flags.f_contiguous else "S"


def _size_class(n: int) -> int:
    return 1 << max(0, round(math.log2(n)))


def key(a: Any, b: Any) -> str:
    """The key a product's choice is kept under: BLAS, dtype, layouts and size class."""
    m, k = a.shape
    n = b.shape[1]
    size = "x".join(str(_size_class(d)) for d in (m, k, n))
    return f"{blas()}|{np.result_type(a.dtype, b.dtype).name}|{_layout(a)}{_layout(b)}|{size}"


def turned(a: Any, b: Any) -> bool:
    """Whether to compute the 2-d product ``a @ b`` as ``(b.T @ a.T).T`` here (measured once, kept)."""
    if _forced:
        return _forced[-1]
    a, b = _values(a), _values(b)
    if a.ndim != 2 or b.ndim != 2:  # a value with no array behind it (a formula of derive): as written
        return False
    m, k = a.shape
    n = b.shape[1]
    if m * k * n < SMALL or np.result_type(a.dtype, b.dtype).kind not in "fc":  # not BLAS: as written
        return False
    name = key(a, b)
    choice = _choices.get(name)
    if choice is None:
        choice = None if _afresh else _load().get(name)
        if choice is None:
            choice = measure(a, b)
            _store(name, choice)
        _choices[name] = choice
    return choice.turned


def _values(x: Any) -> Any:
    """The array behind ``x`` (a traced value of ``compile`` keeps one as ``.value``)."""
    return x if isinstance(x, np.ndarray) else np.asarray(getattr(x, "value", x))


def _like(x: np.ndarray, rng: np.random.Generator, dtype: np.dtype[Any]) -> np.ndarray:
    made = rng.standard_normal(x.shape).astype(dtype)
    return np.asfortranarray(made) if _layout(x) == "F" else made


def measure(a: Any, b: Any) -> Choice:
    """Time ``a @ b`` and ``(b.T @ a.T).T`` on random arrays of the same shapes and layouts."""
    a, b = _values(a), _values(b)
    dtype = np.result_type(a.dtype, b.dtype)
    rng = np.random.default_rng(0)
    written, turned_ = _fastest_runs(_like(a, rng, dtype), _like(b, rng, dtype))
    return Choice(
        turned=turned_ < MARGIN * written,
        as_written_ms=written * 1e3,
        turned_ms=turned_ * 1e3,
        shape=(a.shape[0], a.shape[1], b.shape[1]),
        blas=blas(),
    )


def _fastest_runs(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The fastest run of ``x @ y`` and of ``(y.T @ x.T).T``, in seconds, the two interleaved."""
    ways = [lambda: x @ y, lambda: (y.T @ x.T).T]
    best = [math.inf, math.inf]
    for way in ways:  # a first call of each, untimed: the BLAS threads start, the arrays get cached
        way()
    start = time.perf_counter()
    for run in range(MAX_RUNS):
        for i in (0, 1) if run % 2 == 0 else (1, 0):  # each way goes first every other run
            t0 = time.perf_counter()
            ways[i]()
            best[i] = min(best[i], time.perf_counter() - t0)
        if run + 1 >= MIN_RUNS and time.perf_counter() - start > BUDGET:
            break
    return best[0], best[1]


def _load() -> dict[str, Choice]:
    import json  # here, not at the top: the core's import loads no more than it needs

    path = cache_path()
    if path is None:
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("version") != VERSION:
            return {}
        return {
            name: Choice(
                turned=bool(c["turned"]),
                as_written_ms=float(c["as_written_ms"]),
                turned_ms=float(c["turned_ms"]),
                shape=(int(c["shape"][0]), int(c["shape"][1]), int(c["shape"][2])),
                blas=str(c["blas"]),
            )
            for name, c in stored["choices"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return {}  # missing or unreadable: measured again, and the file rewritten


def _store(name: str, choice: Choice) -> None:
    import json
    import tempfile

    path = cache_path()
    if path is None:
        return
    choices = _load()
    choices[name] = choice
    text = json.dumps(
        {"version": VERSION, "choices": {n: asdict(c) for n, c in sorted(choices.items())}}, indent=1
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".matmul-choices-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError:
        pass  # a cache that cannot be written costs a measurement next time, nothing else


def measure_afresh() -> None:
    """From now on in this process, measure every choice again (the benchmark does), updating the cache."""
    forget()
    _afresh.append(True)


def chosen() -> dict[str, Choice]:
    """This process's choices so far, by key."""
    return dict(_choices)


def forget() -> None:
    """Forget this process's choices and the BLAS read (the cache file stays)."""
    _choices.clear()
    _blas.clear()


def clear() -> Path | None:
    """Delete the cache file and forget this process's choices; the file deleted, or None."""
    forget()
    path = cache_path()
    if path is None or not path.exists():
        return None
    path.unlink()
    return path


@contextlib.contextmanager
def forced(turned_: bool) -> Iterator[None]:
    """Inside: every 2-d product of at least SMALL multiply-adds taken one way round (tests, comparisons)."""
    _forced.append(turned_)
    try:
        yield
    finally:
        _forced.pop()
