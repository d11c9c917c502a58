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
  the same way;
- 130: interrupted (Ctrl-C); every file is whole, old or new.
"""

from __future__ import annotations

import sys


def report_skipped(lines: list[str]) -> int:
    """The end of every command that had to skip a part: one line each on stderr, exit status 1."""
    for line in lines:
        print(f"tinygrad-softmax: {line}", file=sys.stderr)
    return 1 if lines else 0
