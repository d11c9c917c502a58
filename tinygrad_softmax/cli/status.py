"""The exit status every subcommand shares, and how a command ends when it had to skip a part.

- 0: done, and every check passed;
- 1: a check failed (a comparison, an injected bug caught), or an optional
  part is missing (matplotlib, Pillow, Graphviz's ``dot``): the command does
  everything it can and ends with one line per part, naming what it skipped
  and the install command (:func:`report_skipped`, the lines from
  :func:`lecture.extras.skipped`);
- 2: a bad value, refused before any work starts and printed as one line
  ``tinygrad-softmax X: error: ...``: every option is checked by its argparse
  type function (:mod:`.options`: numbers in range, output paths writable),
  and any ``ValueError`` a subcommand raises is reported by :func:`.parser.main`
  the same way, and so is an output file that cannot be written (a full disk,
  a read-only file system: the old file is kept);
- 130: interrupted (Ctrl-C), 143: terminated (SIGTERM); either way every file
  is whole, old or new, and no temporary file or folder is left behind.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that every ``finally`` runs as it does for Ctrl-C."""


@contextmanager
def unwind_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` instead of ending the process at once.

    Python's default for SIGTERM ends the process without unwinding, so the
    temporary files and folders that ``finally`` blocks remove would stay.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_skipped(lines: list[str]) -> int:
    """The end of every command that had to skip a part: one line each on stderr, exit status 1."""
    for line in lines:
        print(f"tinygrad-softmax: {line}", file=sys.stderr)
    return 1 if lines else 0
