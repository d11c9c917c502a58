"""Passes over the written program that change no bit of what it computes.

The trace writes the plain listing, one line per rule; :func:`optimize` turns
it into the program that runs:

- :func:`picked_first`: ``log_P_y = log_P[picked]`` with ``log_P = Z_max - log_S``
  and ``log_S`` one entry per picked line becomes ``Z_max[picked] - log_S``: the
  same subtraction for the N picked entries instead of all N·C;
- :func:`sum_of_one_pick`: ``(-scatter_add(v, ...)).sum(axis)`` with one pick
  per line along ``axis`` is ``-v``;
- :func:`hoist`: a line that now reads no input runs once, when the program is made;
- :func:`broadcast_spreads`: ``dexp = spread(dS, (3, 5))`` read only by
  elementwise lines of that shape is dropped, and those lines read ``dS``:
  NumPy broadcasting does the spreading inside the operation, entry for entry
  the same arithmetic, without the copy.
- :func:`drop_dead_lines`: a line nobody reads and nothing returns.
- :func:`reuse_buffers`: an elementwise line writes its result into an array
  no later line reads (``log_P = np.subtract(Z_max, log_S, out=Z_max)``) instead
  of a new one: fewer allocations and a smaller working set, the same
  arithmetic (the same ufunc loop, only the destination differs).
- :func:`direct_reductions`: ``A.sum(axis=...)`` is ``np.add.reduce(A, axis=...)``
  and ``A.max(axis=...)`` is ``np.maximum.reduce(A, axis=...)``: the functions the
  two methods call, without their layer of Python (the same loop, the same bits).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .program import Line, Program, names_read
from .symbolic import UFUNC_SYMBOL, UNARY, Sym, same_bits


def optimize(program: Program, arguments: dict[str, Any], returned: set[str]) -> None:
    """The plain listing made the program that runs: every pass below, in order."""
    picked_first(program)
    sum_of_one_pick(program)
    hoist(program)
    broadcast_spreads(program, returned)
    drop_dead_lines(program, returned)
    reuse_buffers(program, arguments, returned)
    direct_reductions(program)


def _rewrite(line: Line, sym: Sym, note: str) -> None:
    """``line`` computes ``sym`` instead (the same bits), with ``note`` saying why."""
    sym.name = line.target
    line.sym = sym
    line.code = sym.render_line()
    line.reads = names_read(line.code)
    line.comment += f" ({note})"


def picked_first(program: Program) -> None:
    """``(A - b)[picked]`` as ``A[picked] - b`` where ``b`` already has the picked shape.

    A gather of one entry per line (the label's log-probability) from
    ``log_p = shifted - log(Σ exp)``: each picked entry is the same subtraction
    of the same two numbers, done for the N picked entries instead of all N·C.
    The full ``log_p`` is then read by no line and is not computed.
    """
    for line in program.lines:
        sym = line.sym
        if sym is None or sym.gathered is None or sym.name != line.target:
            continue
        positions, axis = sym.gathered
        source = sym.args[0]
        a, b = source.args if isinstance(source, Sym) and len(source.args) == 2 else (None, None)
        if source.ufunc not in UFUNC_SYMBOL or source.name is None or not isinstance(a, Sym):
            continue
        # b has one entry per picked line (size 1 along the gather's axis), so the entry b broadcast
        # to each picked position is b's entry at that line: the picked shape, entry for entry.
        if not isinstance(b, Sym) or b.name is None or a.shape != source.shape:
            continue
        if b.shape != sym.shape or b.shape[axis] != 1:
            continue
        where = program.positions_name(positions)
        picked = Sym(program, a.value[positions], "{0}[" + where + "]", (a,))
        out = picked._binary(UFUNC_SYMBOL[source.ufunc], picked, b)
        if same_bits(out.value, sym.value):
            _rewrite(
                line,
                out,
                f"{source.name}'s picked entries only: {source.name} = {program.code_of(source.name)}",
            )


def sum_of_one_pick(program: Program) -> None:
    """``(-scatter_add(v, ...)).sum(axis)`` is ``-v`` when each line along ``axis`` holds one pick.

    The line holds ``-v`` at the pick and ``-0.0`` elsewhere; adding zeros to
    a finite, non-zero number changes no bit, wherever the pick sits, so the
    sum needs no pass over the array: with ``v`` the same on every call (the
    ``-1/N`` of a mean), neither does the line. Checked on the traced value.
    """
    for line in program.lines:
        if line.sym is None:
            continue
        for node in _unnamed_nodes(line.sym):
            replacement = _one_pick_sum(program, node)
            if replacement is not None:
                values, scatter_name = replacement
                node.template, node.args, node.precedence, node.ufunc = "-{0}", (values,), UNARY, np.negative
                line.code = line.sym.render_line()
                line.reads = names_read(line.code)
                line.comment += f" (the sum of -{scatter_name}, one pick per line, is -{values.render()})"


def _unnamed_nodes(root: Sym) -> list[Sym]:
    """``root`` and the parts of its expression that have no line of their own."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(a for a in node.args if isinstance(a, Sym) and a.name is None)
    return found


def _one_pick_sum(program: Program, node: Sym) -> tuple[Sym, str] | None:
    if node.reduced is None:
        return None
    axis, keepdims = node.reduced
    negated = node.args[0]
    if not (isinstance(negated, Sym) and negated.name is None and negated.template == "-{0}"):
        return None
    scatter = negated.args[0]
    if not keepdims or axis is None or not isinstance(scatter, Sym) or scatter.scattered is None:
        return None
    values, picked_axis = scatter.scattered
    axes = axis if isinstance(axis, tuple) else (axis,)
    if tuple(int(a) % negated.ndim for a in axes) != (picked_axis,) or not program.is_fixed(values):
        return None
    v = np.asarray(values.value)
    if v.shape != node.shape or not (np.all(np.isfinite(v)) and np.all(v != 0)):
        return None
    if not same_bits(-v, node.value):
        return None
    return values, scatter.name or "the scatter"


def hoist(program: Program) -> None:
    """A line that reads only names fixed for every call runs once, when the program is made."""
    for line in program.lines:
        if line.section != "once" and not line.each_call and line.reads <= program.fixed:
            line.section = "once"
            program.fixed.add(line.target)


def broadcast_spreads(program: Program, returned: set[str]) -> None:
    """Let broadcasting do what a ``spread`` line read only by elementwise lines does."""
    for line in list(program.lines):
        sym = line.sym
        if sym is None or not sym.template.startswith("spread(") or line.target in returned:
            continue
        source = sym.args[0]
        if not (isinstance(source, Sym) and source.name is not None) or line.section == "once":
            continue
        readers = [other for other in program.lines if line.target in other.reads]
        if not readers or not all(_takes_broadcast(reader, sym, source) for reader in readers):
            continue
        for reader in readers:
            assert reader.sym is not None
            reader.sym.args = tuple(source if a is sym else a for a in reader.sym.args)
            reader.code = reader.sym.render_line()
            reader.reads = names_read(reader.code)
            rule = line.comment.split(" →")[0]
            reader.comment += f" ({rule}'s {line.target} = {line.code}, done by broadcasting)"
        program.lines.remove(line)


def _takes_broadcast(reader: Line, spread: Sym, source: Sym) -> bool:
    """Whether ``reader`` computes the same array with ``source`` in place of ``spread``."""
    sym = reader.sym
    if sym is None or sym.ufunc is None or reader.copied or len(sym.args) != 2:
        return False
    if sum(a is spread for a in sym.args) != 1 or not all(isinstance(a, Sym) for a in sym.args):
        return False
    other = next(a for a in sym.args if a is not spread)
    if reader.target != sym.name or other.name is None:
        return False
    shape = np.shape(sym.value)
    return bool(
        np.broadcast_shapes(np.shape(source.value), np.shape(other.value)) == shape
        and np.asarray(source.value).dtype == np.asarray(spread.value).dtype
    )


def drop_dead_lines(program: Program, returned: set[str]) -> None:
    """Remove the lines whose value nobody reads (a forward value no gradient needs, ...)."""
    while True:
        read = set(returned)
        for line in program.lines:
            read |= line.reads
        # Only lines a rule wrote: `picks` checks the labels, which the eager engine does even for a
        # gather whose value nobody reads.
        dead = [line for line in program.lines if line.target not in read and line.sym is not None]
        if not dead:
            return
        for line in dead:
            program.lines.remove(line)


def reuse_buffers(program: Program, arguments: dict[str, Any], returned: set[str]) -> None:
    """Write each elementwise result into a dead array of the same shape, dtype and strides.

    Liveness is over memory, not names: ``dZ = dZ_max`` and ``t = Z.T`` share
    their array, so an array is dead only when no name that shares its memory
    is read later. Which names share memory is read off the traced values (the
    program makes the same views and copies on every call, the shapes being
    the same). Never written: an argument, a constant, a line run once, a
    returned array, or anything sharing memory with one of them.
    """
    lines = [line for line in program.lines if line.section != "once"]
    values, group, pinned = _memory(program, arguments, returned)
    last_read: dict[int, int] = {}
    for i, line in enumerate(lines):
        for name in line.reads:
            if name in group:
                last_read[group[name]] = i
    free: dict[int, str] = {}  # group -> a writeable array of it (a dead group is dead in all its memory)
    for name, value in values.items():
        if isinstance(value, np.ndarray) and value.ndim and value.flags.writeable and name in group:
            free.setdefault(group[name], name)
    for i, line in enumerate(lines):
        sym = line.sym
        if sym is None or sym.ufunc is None or sym.ufunc.nout != 1 or line.copied or line.target in returned:
            continue
        result = sym.value
        if not (isinstance(result, np.ndarray) and result.ndim and sym.name == line.target):
            continue
        mine = group.get(line.target)
        if mine in pinned:
            continue
        # The line's own operands first: `log_P = np.subtract(Z_max, log_S, out=Z_max)` reads best.
        operand_groups = [group[a.name] for a in sym.args if isinstance(a, Sym) and a.name in group]
        candidates = sorted(free.items(), key=lambda item: item[0] not in operand_groups)
        for g, donor in candidates:
            if g in pinned or g == mine or last_read.get(g, -1) > i:
                continue
            # An operand of the line, if it is in the dead array, reads best: the result replaces it.
            operands = [a.name for a in sym.args if isinstance(a, Sym) and a.name in values]
            donor = next((n for n in operands if group.get(n) == g and _fits(values[n], result)), donor)
            if _fits(values[donor], result):
                line.out = donor
                line.code = sym.render_line(out=donor)
                if mine is not None:
                    _merge(group, line.target, donor)
                    last_read[group[donor]] = max(last_read.get(g, -1), last_read.get(mine, -1))
                    free.pop(mine, None)
                break


# A float array's method and the reduction it calls (NumPy's ``_methods``: ``umr_sum``, ``umr_maximum``).
REDUCTIONS = {"{0}.sum(": "np.add.reduce(", "{0}.max(": "np.maximum.reduce("}


def direct_reductions(program: Program) -> None:
    """``A.sum(axis=a, keepdims=k)`` as ``np.add.reduce(A, axis=a, keepdims=k)``; ``.max`` the same.

    ``ndarray.sum`` and ``ndarray.max`` are Python functions (NumPy's ``_methods``) that call
    exactly these ufunc reductions with the same arguments; on an array of a few numbers their
    Python layer is a good part of the time. Only float arrays of one axis or more: an integer
    sum may be computed in a wider type, which only the method asks for.
    """
    for line in program.lines:
        if line.sym is None or line.out is not None:
            continue
        changed = False
        stack = [line.sym]
        while stack:
            node = stack.pop()
            method = node.template[: len("{0}.sum(")]  # "{0}.sum(" and "{0}.max(" are as long
            value = node.args[0].value if method in REDUCTIONS and isinstance(node.args[0], Sym) else None
            if isinstance(value, np.ndarray) and value.ndim >= 1 and value.dtype.kind == "f":
                node.template = REDUCTIONS[method] + "{0}, " + node.template[len(method) :]
                changed = True
            stack.extend(a for a in node.args if isinstance(a, Sym) and a.name is None)
        if changed:
            line.code = line.sym.render_line()
            line.reads = names_read(line.code)


def _memory(
    program: Program, arguments: dict[str, Any], returned: set[str]
) -> tuple[dict[str, Any], dict[str, int], set[int]]:
    """Each name's traced value, the memory group of each name, and the groups never written."""
    values: dict[str, Any] = {**program.constants, **arguments}
    pinned_names = set(arguments) | program.fixed | returned
    for line in program.lines:
        if line.sym is None:  # positions, zeros: values not traced as they run, so never reused
            pinned_names.add(line.target)
            pinned_names |= line.reads
        else:
            values[line.target] = line.sym.value
    group = _groups(values)
    for line in program.lines:  # a line not traced as a Sym may hand back what it reads
        if line.sym is None:
            for name in line.reads:
                if name in group:
                    _merge(group, line.target if line.target in group else name, name)
    return values, group, {group[n] for n in pinned_names if n in group}


def _fits(array: Any, result: np.ndarray) -> bool:
    """Whether ``result`` can be written into ``array`` as it is laid out (the strides decide later sums)."""
    return (
        isinstance(array, np.ndarray)
        and array.flags.writeable
        and array.shape == result.shape
        and array.dtype == result.dtype
        and array.strides == result.strides
    )


def _groups(values: dict[str, Any]) -> dict[str, int]:
    """Names whose arrays may share memory get one group number."""
    arrays = [(name, a) for name, value in values.items() for a in _arrays_in(value)]
    group: dict[str, int] = {}
    for k, (name, _) in enumerate(arrays):
        group.setdefault(name, k)
    for i, (name, a) in enumerate(arrays):
        for other, b in arrays[:i]:
            if np.may_share_memory(a, b):
                _merge(group, name, other)
    return group


def _arrays_in(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple):
        return [a for item in value for a in _arrays_in(item)]
    return []


def _merge(group: dict[str, int], a: str, b: str) -> None:
    """Put every name of a's group into b's group."""
    old, new = group.get(a), group[b]
    if old is None:
        group[a] = new
        return
    for name, g in group.items():
        if g == old:
            group[name] = new
