"""The compiler: the engine writes the gradient program.

``compile(fn)`` runs ``fn`` once on Tensors, as the eager engine would, and
watches every op it makes (the *trace*). From the trace it writes a plain
Python function of NumPy calls: the forward, one line per op, then the
backward walk, one line per gradient a backward rule sends, named after the
tensors (``Z = WX + b``, ``dZ = ...``, ``dW = dZ @ X.T``). Later calls with the
same shapes and dtypes run that function directly: no Tensor, no graph, no dict.

The backward lines are not written by hand here. The walk calls each op's own
``backward(grad, *inputs, out)`` from ``ops.py``, on symbolic values: a
``Sym`` holds the value the eager engine would compute *and* the NumPy
expression that computes it, so the rule, run once, both checks itself and
writes its line. (The rules stay the single source of truth.)

What tracing cannot see: Python control flow inside ``fn`` (an ``if`` on a
value, a loop whose length depends on the data) runs once, at trace time, and
the path it took is frozen into the program. On the second call with given
shapes ``compile`` traces again and compares the two programs; if the path or a
value computed outside the engine changed, it raises :class:`CompileError`.

The rooms, in the order a program is made:

- :mod:`.symbolic`: ``Sym``, a value and the expression that computes it;
- :mod:`.program`: the lines written so far, names, constants, the source;
- :mod:`.trace`: running ``fn`` and writing the forward; the check against the engine;
- :mod:`.backward`: the engine's backward walk on ``Sym`` values;
- :mod:`.runtime`: the few helpers the program calls besides NumPy;
- :mod:`.cache`: ``compile`` and the cache of programs, keyed on shapes and layout.
"""

from __future__ import annotations

from .cache import CacheInfo, Compiled, compile
from .symbolic import CompileError

__all__ = ["compile", "Compiled", "CompileError", "CacheInfo"]
