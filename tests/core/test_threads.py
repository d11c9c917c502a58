"""Threads: grad mode and anomaly mode are per thread, and `.grad` accumulation never loses a sum.

Each test uses a `threading.Barrier` so that the overlap it is about happens
on every run, not only when the scheduler happens to switch threads there.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import pytest

from tinygrad_softmax import AnomalyError, Tensor, detect_anomaly, is_grad_enabled, no_grad, ops

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log")


def run_threads(*targets: Callable[[], Any], timeout: float = 60.0) -> list[Any]:
    """Run each target in its own thread; re-raise the first exception; return their results."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def wrap(i: int, target: Callable[[], Any]) -> None:
        try:
            results[i] = target()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish (a barrier was never reached)"
    if errors:
        raise errors[0]
    return results


@contextmanager
def frequent_switches() -> Iterator[None]:
    """Make CPython switch threads as often as it can, so a race shows up at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, done = threading.Barrier(2), threading.Barrier(2)

    def pauses() -> None:
        with no_grad():
            inside.wait()  # the other thread now runs its ops while this one is inside no_grad()
            done.wait()

    def records() -> Any:
        inside.wait()
        try:
            x = Tensor([1.0, 1.0], requires_grad=True)
            (x * 4.0).sum().backward()
        finally:
            done.wait()
        return x.grad

    _, grad = run_threads(pauses, records)
    np.testing.assert_array_equal(grad, [4.0, 4.0])


def test_no_grad_left_by_two_threads_in_interleaved_order_leaves_recording_on():
    # A enters, B enters, A leaves, B leaves: with one process-wide flag, B would restore
    # the "off" it saw when it entered, and recording would stay off everywhere.
    step = [threading.Barrier(2) for _ in range(3)]

    def first() -> bool:
        with no_grad():
            step[0].wait()  # B enters after this
            step[1].wait()
        step[2].wait()  # A has left; B leaves after this
        return is_grad_enabled()

    def second() -> bool:
        step[0].wait()
        with no_grad():
            step[1].wait()  # A leaves after this
            step[2].wait()
        return is_grad_enabled()

    assert run_threads(first, second) == [True, True]
    assert is_grad_enabled()
    x = Tensor([2.0], requires_grad=True)
    assert (x * x).requires_grad, "recording must be on again in the main thread"
    assert run_threads(lambda: is_grad_enabled()) == [True]


def test_no_grad_blocks_left_out_of_order_in_one_thread_leave_recording_on():
    outer, inner = no_grad(), no_grad()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # left first although entered first (two generators can do this)
    inner.__exit__(None, None, None)
    assert is_grad_enabled()


def test_detect_anomaly_in_one_thread_does_not_raise_in_another():
    inside, done = threading.Barrier(2), threading.Barrier(2)

    def checks() -> str:
        with detect_anomaly():
            inside.wait()
            done.wait()
            try:
                Tensor([0.0]).log()
            except AnomalyError as exc:
                return str(exc)
        return "no error"

    def unchecked() -> float:
        inside.wait()
        try:
            value = Tensor([0.0]).log().item()  # -inf, and nobody here asked for anomaly checks
        finally:
            done.wait()
        return value

    message, value = run_threads(checks, unchecked)
    assert value == -np.inf
    assert message.startswith("log: forward produced Inf"), message


def test_new_threads_start_with_recording_on_and_anomaly_off():
    def probe() -> tuple[bool, bool]:
        return is_grad_enabled(), bool(np.isneginf(Tensor([0.0]).log().item()))

    with no_grad(), detect_anomaly():
        assert run_threads(probe) == [(True, True)]


class _MeetingGradient(np.ndarray):
    """A gradient whose addition into `.grad` waits (up to a second) for the other thread to add too.

    Without a lock both threads are then inside `old .grad + g` at once, so both
    read the same old `.grad` and one sum is lost: the overlap is certain. With
    the lock the second thread cannot get there, and the wait times out.
    """

    meeting: threading.Barrier

    def __add__(self, other: Any) -> np.ndarray:
        with suppress(threading.BrokenBarrierError):
            self.meeting.wait(timeout=1.0)
        return np.asarray(self) + np.asarray(other)

    __radd__ = __add__


class _PassesAMeetingGradient(ops.Op):
    """y = x, whose backward hands x a `_MeetingGradient`."""

    __slots__ = ()
    name = "identity"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + 0.0

    def backward(self, grad: np.ndarray, x: np.ndarray, out: np.ndarray) -> tuple[np.ndarray | None, ...]:
        return (np.array(grad).view(_MeetingGradient),)


def test_two_backwards_adding_into_one_grad_at_the_same_moment_both_count():
    _MeetingGradient.meeting = threading.Barrier(2)
    W = Tensor([1.0, 2.0], requires_grad=True, name="W")
    W.grad = np.zeros(2)
    start = threading.Barrier(2)

    def work() -> None:
        y = Tensor._apply(_PassesAMeetingGradient(), W)
        start.wait()
        y.backward(np.ones(2))

    run_threads(work, work)
    np.testing.assert_array_equal(W.grad, [2.0, 2.0])


def test_concurrent_backward_into_one_leaf_loses_no_update():
    # Arrays large enough that NumPy lets go of the GIL while it adds: updates race for real.
    threads, calls = 4, 500
    W = Tensor(np.zeros(4096), requires_grad=True, name="W")
    start = threading.Barrier(threads)

    def work() -> None:
        x = Tensor(np.ones(4096))
        start.wait()
        for _ in range(calls):
            (W * x).sum().backward()

    with frequent_switches():
        run_threads(*[work] * threads)
    np.testing.assert_array_equal(W.grad, np.full(4096, threads * calls))


def test_concurrent_forward_and_backward_on_shared_weights_agree_with_one_thread(rng):
    # Several threads training on their own batches with the same W (as data-parallel
    # code would): each thread's gradient is exactly what it gets alone.
    W = Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W")
    batches = [rng.standard_normal((5, 4)) for _ in range(4)]

    def alone(X: np.ndarray) -> np.ndarray:
        W.grad = None
        (Tensor(X) @ W).relu().sum().backward()
        assert W.grad is not None
        return W.grad.copy()

    expected = sum(alone(X) for X in batches)
    W.grad = None
    start = threading.Barrier(len(batches))

    def work(X: np.ndarray) -> Callable[[], None]:
        def run() -> None:
            start.wait()
            (Tensor(X) @ W).relu().sum().backward()

        return run

    with frequent_switches():
        run_threads(*[work(X) for X in batches])
    np.testing.assert_allclose(W.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("mode", [no_grad, detect_anomaly])
def test_modes_are_restored_when_the_block_raises(mode):
    with pytest.raises(KeyError), mode():
        raise KeyError("boom")
    assert is_grad_enabled()
    assert np.isneginf(Tensor([0.0]).log().item())  # anomaly mode is off again


def test_every_block_gives_back_its_count_of_watched_threads():
    # While no thread is in no_grad(), detect_anomaly() or a trace, Tensor._apply takes its fast path.
    from tinygrad_softmax import compile, enable_grad, grad_mode

    assert grad_mode.watched_threads == 0
    with no_grad(), enable_grad(), detect_anomaly(), detect_anomaly():
        assert grad_mode.watched_threads == 1  # anomaly, once (enable_grad gave no_grad's back)
    with enable_grad():
        assert grad_mode.watched_threads == 0  # recording was on already: nothing to watch
    with pytest.raises(KeyError), no_grad(), detect_anomaly():
        raise KeyError("boom")
    compile(lambda x: (x * x).sum())(Tensor([1.0, 2.0], requires_grad=True))
    assert grad_mode.watched_threads == 0


def test_a_watched_thread_slows_no_other_thread_down_to_a_wrong_answer():
    # Another thread's no_grad() sends this thread's ops down the watched path: same results.
    inside, done = threading.Barrier(2), threading.Event()

    def hold_no_grad() -> None:
        with no_grad():
            inside.wait()
            done.wait(30)

    def record() -> Any:
        inside.wait()
        from tinygrad_softmax import grad_mode

        assert grad_mode.watched_threads == 1
        x = Tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        done.set()
        return x.grad

    _, grad = run_threads(hold_no_grad, record)
    np.testing.assert_array_equal(grad, [2.0, 4.0])
