"""The ``tinygrad-softmax`` command line (also ``python -m tinygrad_softmax``).

One module per concept, each read on its own:

- :mod:`.parser`: the table of subcommands, the parser built from it, and :func:`main`;
- :mod:`.status`: the exit status every subcommand shares (0 ok, 1 a check failed
  or an optional part is missing, 2 a bad value) and how a command ends when it skipped a part;
- :mod:`.options`: the argparse type function of every value, and the options
  several subcommands share;
- the subcommands, by group: :mod:`.checks` (demo, compare, jacobian, anomaly,
  epsilon), :mod:`.training` (train, boundaries), :mod:`.second_order` (hessian,
  newton, modes), :mod:`.graphs` (graph, animate, explore, explain),
  :mod:`.exercise` (exercise), :mod:`.presenting` (slides, doctor), :mod:`.speed` (compile, bench).

Every module here imports only the standard library at its top; a subcommand
imports its room (the lecture or the bench) when it runs. Every file is written
to a temporary file in its folder and renamed into place (:mod:`lecture.outputs`),
so an interrupted run never leaves half a file.
"""

from __future__ import annotations

from .parser import SUBCOMMANDS, Subcommand, build_parser, main

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main"]
