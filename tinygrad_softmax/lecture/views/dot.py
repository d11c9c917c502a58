"""Running Graphviz with a time limit: a layout that takes too long is one line, not a wait without end.

Graphviz's ``dot`` is fast on the graphs the lecture draws (under a second),
but its layout can grow much faster than the graph: on a few hundred tensors
densely wired it runs for many minutes. Every picture goes through :func:`pipe`,
which stops Graphviz after :func:`time_limit` seconds and says what to do.

Graphviz gives the same bytes for the same DOT text, and fitting a drawing to a
slide lays out the same text more than once (its size, its rows, then the
picture), so :func:`pipe` keeps the last outputs it made and runs Graphviz once
per distinct text in a process.
"""

from __future__ import annotations

import os
import subprocess
from collections import OrderedDict

import graphviz

__all__ = ["DOT_SECONDS", "DotTimeoutError", "ENVIRONMENT", "pipe", "time_limit"]

DOT_SECONDS = 60.0  # the default; the lecture's largest drawing (the demo's) takes a few seconds
ENVIRONMENT = "TINYGRAD_SOFTMAX_DOT_SECONDS"  # set it to give Graphviz longer (or less)
KEPT = 128  # outputs pipe keeps (a layout or a picture: tens to hundreds of kB each)

_kept: OrderedDict[tuple[str, str, str, int | None, float, str | None], bytes] = OrderedDict()


class DotTimeoutError(ValueError):
    """Graphviz took longer than the time limit (a ValueError: the command line reports it in one line)."""


def time_limit() -> float:
    """Seconds Graphviz may take for one layout: ``$TINYGRAD_SOFTMAX_DOT_SECONDS`` or :data:`DOT_SECONDS`."""
    text = os.environ.get(ENVIRONMENT)
    if text is None:
        return DOT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 86_400:
        raise ValueError(f"{ENVIRONMENT} must be a number of seconds from 0 to 86400, got {text!r}")
    return seconds


def pipe(
    source: str, format: str, engine: str = "dot", neato_no_op: int | None = None, what: str = "the graph"
) -> bytes:
    """Graphviz's ``format`` output for the DOT text ``source``, as ``graphviz.Source(source).pipe`` gives.

    Raises :class:`DotTimeoutError` after :func:`time_limit` seconds (Graphviz
    is stopped; the message names ``what``, say "a graph of 699 tensors"),
    ``graphviz.ExecutableNotFound`` without the program, and
    ``graphviz.CalledProcessError`` when it fails.
    """
    limit = time_limit()
    # A shorter limit lays the text out again (and may stop Graphviz); another PATH may find another
    # Graphviz, or none.
    key = (source, format, engine, neato_no_op, limit, os.environ.get("PATH"))
    if key in _kept:
        _kept.move_to_end(key)
        return _kept[key]
    command = [engine, f"-T{format}"] + ([f"-n{neato_no_op}"] if neato_no_op else [])
    try:
        done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, timeout=limit)
    except FileNotFoundError:
        raise graphviz.ExecutableNotFound(command) from None
    except subprocess.TimeoutExpired:  # subprocess.run has stopped Graphviz by now
        raise DotTimeoutError(
            f"Graphviz's {engine} took more than {limit:g} s to lay out {what} and was stopped; "
            f"draw fewer tensors (a smaller model or batch, or the compact drawing), "
            f"or allow it longer with {ENVIRONMENT}=SECONDS"
        ) from None
    if done.returncode != 0:
        raise graphviz.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    _kept[key] = done.stdout
    if len(_kept) > KEPT:
        _kept.popitem(last=False)  # the least recently used
    return done.stdout
