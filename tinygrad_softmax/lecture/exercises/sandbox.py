"""The student's process, isolated: a private folder, limits, another user, and nothing left behind.

:class:`Sandbox` copies the submission, ``worker.py`` and ``backward_helpers.py``
into a fresh private folder and starts ``python -I -S worker.py`` there:

- its module path holds that folder, the standard library and a folder with
  NumPy alone; the package (and its reference rules) is not on it, and the
  worker refuses it by name too;
- it works in an empty folder of its own, with a minimal environment;
- it lowers its own limits before it loads the submission: address space,
  CPU time, file size, open files, and processes (one: it cannot start any);
- when the grader runs as root, it runs as a fresh user id that owns nothing
  and no other process uses, so it can write nothing of the grader's, not
  the submission, not the output; and every process of that user id can be
  killed without touching anyone else's;
- it starts a session of its own; :meth:`Sandbox.close` kills the session and,
  as root, every process of its user id, and waits until none is left;
- while it runs, the grader's memory is closed to processes of the grader's own
  user (:func:`memory_closed`), which matters when the grader is not root.

It answers one JSON line per request. The grader reads at most
:data:`MAX_ANSWER` bytes per answer and keeps only the last
:data:`STDERR_KEPT` bytes of what it writes to stderr, however much that is.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Sandbox", "WorkerLost", "MEMORY_LIMIT", "MAX_ANSWER", "memory_closed"]

MEMORY_LIMIT = 1 << 30  # bytes of address space: NumPy and the cases need a tenth of it
FILE_LIMIT = 16 << 20  # the largest file the student's process may write
OPEN_FILES = 64
MAX_ANSWER = 16 << 20  # the longest answer line read; the classifier's is a few KB
STDERR_KEPT = 4096  # the tail of the student's stderr kept for the report
HERE = Path(__file__).resolve().parent


class WorkerLost(Exception):
    """The student's process timed out, died, or broke the protocol: ``kind`` is "timed out" or "crashed"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _uids_in_use() -> set[int]:
    used: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("Uid:"):
                        used.update(int(u) for u in line.split()[1:])
                        break
    with contextlib.suppress(OSError):
        for line in Path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                used.add(int(fields[2]))
    return used


def _fresh_uid() -> int:
    """A user id no process and no account uses, inside this user namespace's map."""
    low, high = 1 << 28, (1 << 31) - 2
    with contextlib.suppress(OSError, ValueError):
        ranges = [line.split() for line in Path("/proc/self/uid_map").read_text().splitlines()]
        widest = max(ranges, key=lambda r: int(r[2]))
        start, count = int(widest[0]), int(widest[2])
        low, high = max(start + 1000, start + count // 2), start + count - 2
    used = _uids_in_use()
    pick = random.SystemRandom()
    while True:
        uid = pick.randrange(low, high)
        if uid not in used:
            return uid


def _processes_of(uid: int) -> list[int]:
    """The live (not zombie) processes whose real or effective user id is ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            uids = [int(u) for u in fields.get("Uid", "").split()[:2]]
            if uid in uids and not fields.get("State", "").strip().startswith("Z"):
                found.append(int(entry.name))
    return found


@functools.cache
def interpreter_for_another_user(numpy_home: str) -> str | None:
    """A Python of this version that an unprivileged user can run and that imports this NumPy.

    The grader's own interpreter first; when it sits where another user cannot
    reach (a pyenv under /root), the system's Python of the same version. None:
    there is none. Asked once per grader process (as root), with a fresh user id.
    """
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, os.path.realpath(sys.executable)]
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    probe = f"import sys; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}; "
    probe += f"sys.path.append({numpy_home!r}); import numpy"
    uid = _fresh_uid()
    for candidate in dict.fromkeys(candidates):
        try:
            done = subprocess.run(
                [candidate, "-I", "-S", "-c", probe],
                user=uid,
                group=uid,
                extra_groups=[],
                cwd="/",
                env={"OPENBLAS_NUM_THREADS": "1"},
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return None


@contextlib.contextmanager
def memory_closed() -> Iterator[None]:
    """The grader's memory closed to other processes of its user while a student's process runs.

    Linux's PR_SET_DUMPABLE 0: no /proc/PID/mem, no ptrace of the grader by a process of
    the same user id (which the student's is when the grader is not root). Elsewhere, nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        before = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    except (OSError, AttributeError):
        yield
        return
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    try:
        yield
    finally:
        if before > 0:
            libc.prctl(4, before, 0, 0, 0)


class Sandbox:
    """One student's process: start it, send requests, read answers within a time limit, close it."""

    def __init__(self, submission: Path, cpu_seconds: float) -> None:
        import numpy

        self.root = Path(tempfile.mkdtemp(prefix="tinygrad-softmax-exercise-"))
        code, lib, work = self.root / "code", self.root / "lib", self.root / "work"
        for folder in (code, lib, work):
            folder.mkdir()
        for name in ("worker.py", "backward_helpers.py"):
            shutil.copyfile(HERE / name, code / name)
        self.submission = code / "my_rules.py"
        self.submission.write_bytes(submission.read_bytes())
        numpy_dir = Path(numpy.__file__).resolve().parent
        for name in (numpy_dir.name, numpy_dir.name + ".libs"):
            if (numpy_dir.parent / name).exists():
                (lib / name).symlink_to(numpy_dir.parent / name)
        self.uid: int | None = None
        self.note = ""
        if _is_root():
            interpreter = interpreter_for_another_user(str(numpy_dir.parent))
            uid = _fresh_uid()
            if interpreter is None:
                self.note = "no Python this version that an unprivileged user can run was found: ran as root"
                interpreter = sys.executable
            else:
                self.uid = uid
        else:
            interpreter = sys.executable
        for path in (code, *code.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o444)
        lib.chmod(0o755)
        self.root.chmod(0o711)
        work.chmod(0o700)
        if self.uid is not None:
            os.chown(work, self.uid, self.uid)
        limits = {
            "RLIMIT_AS": MEMORY_LIMIT,
            "RLIMIT_CPU": max(1, math.ceil(cpu_seconds)),
            "RLIMIT_FSIZE": FILE_LIMIT,
            "RLIMIT_NOFILE": OPEN_FILES,
            "RLIMIT_NPROC": 1,  # itself: it can start no process and no thread
            "RLIMIT_CORE": 0,
        }
        environment = {
            "HOME": str(work),
            "TMPDIR": str(work),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        try:
            self.process = self._start(interpreter, code, lib, work, limits, environment)
        except OSError:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.answers: queue.Queue[bytes | None] = queue.Queue()
        self.stderr_tail = b""
        self.stderr_bytes = 0
        self.closed = False
        # Threads read both pipes, so a wait ends after its time limit and a flood fills no memory.
        self.threads = [
            threading.Thread(target=self._read_answers, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _start(
        self,
        interpreter: str,
        code: Path,
        lib: Path,
        work: Path,
        limits: dict[str, int],
        environment: dict[str, str],
    ) -> subprocess.Popen[bytes]:
        """``python -I -S worker.py`` in ``work``, in a session of its own, as ``self.uid`` when set."""
        return subprocess.Popen(
            [
                interpreter,
                "-I",
                "-S",
                str(code / "worker.py"),
                str(self.submission),
                str(lib),
                json.dumps(limits),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work,
            env=environment,
            start_new_session=True,
            close_fds=True,
            user=self.uid,
            group=self.uid,
            extra_groups=[] if self.uid is not None else None,
        )

    # ---------------------------------------------------------------- the pipes

    def _read_answers(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while line := stdout.readline(MAX_ANSWER):
                if not line.endswith(b"\n"):
                    self.answers.put(b"")  # longer than MAX_ANSWER: the protocol is broken
                    break
                self.answers.put(line)
        self.answers.put(None)

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        with contextlib.suppress(OSError, ValueError):
            while chunk := stderr.read1(65536):  # type: ignore[attr-defined]
                self.stderr_bytes += len(chunk)
                self.stderr_tail = (self.stderr_tail + chunk)[-STDERR_KEPT:]

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next answer as a dict; :class:`WorkerLost` when none comes in time or the process ends."""
        try:
            line = self.answers.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            self.close()
            raise WorkerLost("timed out", f"did not finish within {timeout:.3g} s") from None
        if line is None:
            self.close()
            raise WorkerLost("crashed", self._crash_text())
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self.close()
            raise WorkerLost("crashed", "its answer could not be read (not one JSON object per line)")
        return answer

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        stdin: IO[bytes] | None = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.close()
            raise WorkerLost("crashed", self._crash_text()) from None
        return self.receive(timeout)

    def _crash_text(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for thread in self.threads[1:]:
            thread.join(timeout=2)
        code = self.process.returncode
        if code is None or code == -signal.SIGKILL:
            how = "the process was killed"
        elif code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": " (its CPU time limit)", "SIGXFSZ": " (its file size limit)"}.get(name, "")
            how = f"the process was killed by {name}{why}"
        else:
            how = f"the process ended with status {code}"
        text = self.stderr_tail.decode("utf-8", "replace")
        tail = [line.strip() for line in text.splitlines() if line.strip()][-3:]
        said = ": " + " | ".join(tail)[-600:] if tail else ""
        if self.stderr_bytes > STDERR_KEPT:
            said += (
                f" (of {self.stderr_bytes / 1e6:.3g} MB written to stderr, the last {STDERR_KEPT} bytes kept)"
            )
        return how + said

    # ---------------------------------------------------------------- the end

    def close(self) -> None:
        """Kill the session and every process of the user id, wait until none is left, remove the folder."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.uid is not None:
            for _ in range(200):  # a process may start another while we look: look until none is left
                left = _processes_of(self.uid)
                if not left:
                    break
                for pid in left:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)
        for thread in self.threads:
            thread.join(timeout=1)
        # A pipe whose reader still waits (a process no kill could reach holds it) is left open.
        pipes = (
            self.process.stdin,
            *(
                p
                for p, t in zip((self.process.stdout, self.process.stderr), self.threads)
                if not t.is_alive()
            ),
        )
        for pipe in pipes:
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
