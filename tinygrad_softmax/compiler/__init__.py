"""The compiler: the engine writes the gradient program.

``compile(fn)`` runs ``fn`` once on stand-ins for its arguments, as the eager engine would, and
watches every op it makes (the *trace*). From the trace it writes a plain
Python function of NumPy calls: the forward, one line per op, then the
backward walk, one line per gradient a backward rule sends, named after the
tensors (``Z = WX + b``, ``dZ = ...``, ``dW = dZ @ X.T``). Later calls with the
same argument kinds, shapes and dtypes run that function directly: no Tensor,
no graph, no dict.

The backward lines are not written by hand here. The walk calls each op's own
``backward(grad, *inputs, out)`` from ``ops.py``, on symbolic values: a
``Sym`` holds an array of the traced call *and* the NumPy expression that
computes it, so the rule, run once, writes its line. (The rules stay the
single source of truth.)

What the trace sees: as in JAX, ``fn`` runs on stand-ins for its arguments
that have shapes and dtypes but no numbers ``fn`` can read (:mod:`.abstract`).
A Python branch on a traced value, or NumPy on its numbers, raises
:class:`CompileError` naming the line, instead of being frozen into the program.

The rooms, in the order a program is made:

- :mod:`.symbolic`: ``Sym``, a value and the expression that computes it;
- :mod:`.abstract`: the stand-ins ``fn`` is traced with, and what they refuse;
- :mod:`.program`: the lines written so far, names, constants, the source;
- :mod:`.trace`: running ``fn`` and writing the forward (one writer per op); the check against the engine;
- :mod:`.backward`: the engine's backward walk on ``Sym`` values;
- :mod:`.optimize`: the passes that make the plain listing the program that runs;
- :mod:`.runtime`: the few helpers the program calls besides NumPy;
- :mod:`.cache`: ``compile`` and the cache of programs, keyed on argument kinds, shapes and layout.
"""

from __future__ import annotations

from .abstract import ConcretizationError
from .cache import CacheInfo, Compiled, compile
from .symbolic import CompileError

__all__ = ["compile", "Compiled", "CompileError", "ConcretizationError", "CacheInfo"]
