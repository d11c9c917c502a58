"""Grad mode, per thread: whether the ops made now record a graph, and who watches them.

Three blocks make an op do more than run its forward and record itself:
``no_grad()`` (record nothing), ``detect_anomaly()`` (check every output) and
``compile``'s trace (see every op). Each is per thread, like PyTorch's. Each
counts the threads it is open in into :data:`watched_threads`; while that
count is 0 (nearly always) ``Tensor._apply`` takes its fast path, which asks
no per-thread question at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

# How many threads have a no_grad(), detect_anomaly() or trace block open now.
watched_threads = 0
_lock = threading.Lock()


def watch(threads: int) -> None:
    """Add ``threads`` (+1 or -1) to :data:`watched_threads`."""
    global watched_threads
    with _lock:
        watched_threads += threads


class _ThisThread(threading.local):
    """This thread's open ``no_grad()`` / ``enable_grad()`` blocks, innermost last, and its trace.

    Each block removes its own entry when it is left, so blocks left in any
    order (two generators, say) still leave the right mode: the innermost
    block still open decides, and with none open, ops record.
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[object, bool]] = []  # (the block, does it record?)
        self.enabled = True
        self.trace: Any = None  # what compile is tracing (compiler/trace.py), or None


_this_thread = _ThisThread()


def _update() -> None:
    """Recompute this thread's mode from its innermost open block."""
    before = _this_thread.enabled
    blocks = _this_thread.blocks
    _this_thread.enabled = blocks[-1][1] if blocks else True
    watch((before and not _this_thread.enabled) - (_this_thread.enabled and not before))


@contextmanager
def _grad_block(enabled: bool) -> Iterator[None]:
    entry = (object(), enabled)
    _this_thread.blocks.append(entry)
    _update()
    try:
        yield
    finally:
        _this_thread.blocks.remove(entry)
        _update()


def no_grad() -> AbstractContextManager[None]:
    """Inside this block, ops record no graph (results never require grad).

    Per thread, like PyTorch: another thread keeps recording.
    """
    return _grad_block(False)


def enable_grad() -> AbstractContextManager[None]:
    """Inside this block, ops record a graph again, even within ``no_grad()`` (in this thread).

    ``grad(..., create_graph=True)`` runs the backward walk in it, so that the
    ops of the backward rules are recorded and can be differentiated.
    """
    return _grad_block(True)


def is_grad_enabled() -> bool:
    """False inside ``no_grad()`` (in this thread): ops made now record no graph."""
    return _this_thread.enabled


def tracing() -> Any:
    """What ``compile`` traces in this thread: an object whose ``record(op, inputs, out)`` sees every op."""
    return _this_thread.trace


@contextmanager
def traced_by(trace: Any) -> Iterator[None]:
    """Inside this block, ``trace.record(op, inputs, out)`` sees every op this thread makes."""
    before = _this_thread.trace
    watch(+1)
    _this_thread.trace = trace
    try:
        yield
    finally:
        _this_thread.trace = before
        watch(-1)
