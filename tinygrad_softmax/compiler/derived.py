"""The derived program: the step program's forward, then the gradients as the identities derive them.

:func:`simplify_program` asks :mod:`.formula` for the gradients of the traced
graph as closed forms, writes them after the forward lines the loss and they
read, and runs the result against the step program (:func:`proven_equal`)
before a call may run it. Where there is no closed form, or the two disagree,
``Generated.why`` says so in one line and the step program runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from .. import ops
from ..tensor import Tensor
from .backward import array
from .expr import Picks
from .formula import Derived, Labels, derive_trace
from .lowering import Hot, derived_lines
from .program import ONCE_HEADING, REDUCE_NOTE, REUSE_NOTE, Generated, Line, Program, names_read
from .runtime import RUNTIME
from .symbolic import CompileError, Sym


class _Writer(Protocol):
    """What the derived program reads of the trace's writer (``trace._Writer`` is one), named here so
    that ``trace``, which calls this module, and this module do not import each other."""

    program: Program
    arg_names: list[str]
    traced_args: list[Any]
    syms: dict[Tensor, Sym]
    recorder: Any  # its ``events``: (op, inputs, output) in the order fn ran them

    def arguments(self) -> dict[str, Any]: ...
    def sym_of(self, t: Tensor) -> Sym: ...
    def index_source(self, index: np.ndarray) -> str: ...


def simplify_program(
    generated: Generated,
    writer: _Writer,
    root: Tensor,
    plain_lines: list[Line],
    loss_name: str | None,
    aux_name: str | None,
    function_name: str,
    fastest: bool = False,
) -> None:
    """The derived program, proven equal to the step program, or why there is none.

    It runs instead of the step program; with ``fastest``, only if it measured faster on these arguments.
    """
    try:
        written = _derived_source(writer, root, plain_lines, loss_name, aux_name, function_name)
    except (TypeError, ValueError, KeyError, IndexError) as error:  # a graph the formulas cannot follow
        written = f"the derivation stopped ({type(error).__name__}: {error})"
    if isinstance(written, str):
        generated.why = f"no simpler program was derived: {written}; the step-by-step program runs"
        return
    text, _ = written
    try:
        function = writer.program.function(text, function_name)
        disagree = proven_equal(function, generated.function, writer.arguments(), writer.arg_names)
    except Exception as error:  # a formula written as code that NumPy refuses: the step program runs
        disagree = f"the derived program fails to run ({type(error).__name__}: {error})"
    if disagree:
        generated.why = f"no simpler program was derived: {disagree}; the step-by-step program runs"
        return
    generated.simplified = text
    generated.derived_function = generated.runs = function
    if fastest:
        # Decided once per process for a pair of programs on argument shapes and dtypes: a step compiled
        # again (another Compiled of the same fn) runs the same program, so it repeats its bits.
        values = list(writer.arguments().values())
        shapes = tuple((np.shape(v), np.asarray(v).dtype.str) for v in values)
        timed = _TIMED.get((text, generated.source, shapes))
        if timed is None:
            timed = _TIMED[(text, generated.source, shapes)] = time_both(function, generated.function, values)
        derived_s, step_s = timed
        if step_s <= derived_s:
            generated.runs = generated.function
        winner = "the derived program" if generated.runs is function else "the step-by-step program"
        generated.chosen = (
            f"{winner} runs: the derived program took {derived_s * 1e6:.1f} µs, the step-by-step program "
            f"{step_s * 1e6:.1f} µs (medians, measured side by side at compile time on this machine)"
        )


_TIMED: dict[tuple[str, str, tuple[Any, ...]], tuple[float, float]] = {}  # the times that chose, per process


def time_both(
    derived: Callable[..., Any], step: Callable[..., Any], values: list[Any]
) -> tuple[float, float]:
    """Median seconds per call of the two programs on ``values``, timed in turn, within about 20 ms.

    Both are proven equal, so this only picks the faster. Each is called
    enough times per sample to last ~0.5 ms (a slow step: once), 7 samples
    each, alternated so that a burst of load falls on both.
    """
    start = time.perf_counter()
    step(*values)
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, min(1000, int(5e-4 / once)))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(7):
        for function, times in ((derived, samples[0]), (step, samples[1])):
            start = time.perf_counter()
            for _ in range(calls):
                function(*values)
            times.append((time.perf_counter() - start) / calls)
    return float(np.median(samples[0])), float(np.median(samples[1]))


def _derived_source(
    writer: _Writer,
    root: Tensor,
    plain_lines: list[Line],
    loss_name: str | None,
    aux_name: str | None,
    function_name: str,
) -> tuple[str, list[str]] | str:
    """The derived program's text: the step program's forward, then the gradients as derived."""
    if aux_name is not None:
        return "fn returns an aux value, which the derived program does not hand back"
    wanted = {a: i for i, a in enumerate(writer.traced_args) if isinstance(a, Tensor) and a.requires_grad}
    if not (root.requires_grad and wanted):
        return "the loss has no gradient to derive"
    program = writer.program
    leaves = {a: name for a, name in zip(writer.traced_args, writer.arg_names) if isinstance(a, Tensor)}
    labels = _labels(writer)

    def name_of(t: Tensor) -> str | None:
        sym = writer.syms.get(t)
        if sym is None and t.grad_fn is None:
            try:
                sym = writer.sym_of(t)
            except CompileError:
                return None
        return None if sym is None else sym.name

    derived = derive_trace(root, leaves, wanted, name_of, labels, set(program.constants))
    return (
        derived
        if isinstance(derived, str)
        else _written(writer, derived, wanted, plain_lines, loss_name, function_name)
    )


def _labels(writer: _Writer) -> dict[Any, Labels]:
    """Each gather's labels (the fused loss's too): the code that reads them, the positions' variable."""
    program = writer.program
    labels: dict[Any, Labels] = {}
    for op, _, _ in writer.recorder.events:
        gathered = op.picks if isinstance(op, ops.SoftmaxCrossEntropy) else op
        if isinstance(gathered, ops.Gather) and id(gathered.positions) in program.positions:
            index = writer.index_source(gathered.index)
            labels[Picks(gathered).token] = Labels(
                index, gathered.axis, program.positions[id(gathered.positions)]
            )
    return labels


def _written(
    writer: _Writer,
    derived: Derived,
    wanted: dict[Tensor, int],
    plain_lines: list[Line],
    loss_name: str | None,
    function_name: str,
) -> tuple[str, list[str]] | str:
    """The derived lines after the forward lines the loss and they read (the optimised ones if intact)."""
    program = writer.program
    shapes = {i: array(a).shape for a, i in wanted.items()}
    forward = [line for line in program.lines if line.section in ("once", "forward", "setup")]
    taken = {*RUNTIME, *program.constants, *program.arguments, *(line.target for line in plain_lines)}
    taken -= {line.target for line in plain_lines if line.section == "backward"}
    arrays = {sym.name: sym.value for sym in writer.syms.values() if sym.name is not None}
    arrays.update(writer.arguments())
    dtype = np.result_type(*[array(a).dtype for a in wanted])
    written = derived_lines(derived, writer.arg_names, shapes, taken, arrays, dtype)
    if isinstance(written, str):
        return written
    lines, grad_names, constants, hots = written
    program.constants.update(constants)
    program.fixed.update(constants)
    reads = set().union(*(names_read(line.split("  # ", 1)[0]) for line in lines)) if lines else set()
    reads |= {labels.positions for labels in derived.labels.values()}  # picks checks the labels
    clobbered = {line.out for line in forward if line.out}
    targets = {line.target for line in forward}
    plain_targets = {line.target for line in plain_lines if line.section in ("once", "forward", "setup")}
    if clobbered & reads or (reads & plain_targets) - targets:  # the optimised forward lost what they read
        forward = [line for line in plain_lines if line.section in ("once", "forward", "setup")]
    forward = _picked_with_onehot(forward, lines, hots)
    _softmax_in_place(forward, lines, set(writer.arg_names))
    for i, a in enumerate(writer.traced_args):
        if i in grad_names and array(a).dtype != np.float64:
            lines.append(f"{grad_names[i]} = {grad_names[i]}.astype(np.{array(a).dtype.name}, copy=False)")
    return _text(writer, forward, lines, grad_names, {loss_name, *reads}, loss_name, function_name), lines


def _picked_with_onehot(forward: list[Line], lines: list[str], hots: dict[str, Hot]) -> list[Line]:
    """The one-hot of the labels made where the forward picks them, and the picks read through it.

    ``picked = picks(y, ...)`` checks the labels and makes their positions; the derived lines
    compare the labels with the classes for onehot(y). One comparison does both: its count of
    True (one per line, if and only if every label is in range) is the check. Where it is
    quicker than by positions (a few hundred entries with the classes along the last axis, a
    hundred or so with them down the columns), the forward's ``A[picked]`` reads the same
    entries through it, in the same order (``A[Y]``, or ``A.T[Y.T]``: one entry per line, the
    lines in order); elsewhere the positions stay. Either way the loss is the
    step program's to the bit. ``lines`` loses the comparison; the forward is a new list, its
    lines the step program's but these.
    """
    changed = list(forward)
    for i, line in enumerate(forward):
        hot = hots.get(line.target)
        if hot is None or not (line.code.startswith("picks(") and line.code.endswith(")")):
            continue
        lines.remove(hot.line)
        index = list(hot.shape)
        index[hot.axis] = 1
        size = int(np.prod(hot.shape))
        masked = ""
        if hot.axis == len(hot.shape) - 1 and size <= MASKED_PICKS:
            masked = f"{{}}[{hot.name}].reshape({tuple(index)})"
        elif hot.axis == 0 and len(hot.shape) == 2 and size <= MASKED_PICKS_ACROSS:
            masked = f"{{}}.T[{hot.name}.T].reshape({tuple(index)})"  # the lines in order
        gather = re.compile(r"(?<![.\w])([^\W\d]\w*)\[" + re.escape(line.target) + r"\]")
        for j in range(i + 1, len(changed)) if masked else ():
            later = changed[j]
            code = gather.sub(partial(_through, masked), later.code)
            if code != later.code:
                changed[j] = replace(later, code=code, reads=names_read(code))
        args = line.code[len("picks(") : -1]
        if any(line.target in other.reads for other in changed[i + 1 :]) or any(
            line.target in names_read(text.split("  # ", 1)[0]) for text in lines
        ):  # the positions are still read: made as well
            target, code = f"{line.target}, {hot.name}", f"picks_onehot({args}, {hot.classes})"
            comment = "the labels' positions, and onehot(y): True where the class is the label"
        else:
            labels, axis, classes, _ = (part.strip() for part in args.rsplit(",", 3))
            target, code = hot.name, f"onehot_labels({labels}, {axis}, {classes}, {hot.classes})"
            comment = "onehot(y): True where the class is the label"
        changed[i] = replace(
            line,
            target=target,
            code=code,
            comment=f"{comment} (its count checks the labels)",
            reads=names_read(code),
        )
    return changed


# The most entries a one-hot may have for the picks to be read through it (``A[Y]``): measured
# with NumPy 2 on x86-64, a mask is quicker than positions at a few hundred entries, slower at a
# few thousand.
MASKED_PICKS = 1024
MASKED_PICKS_ACROSS = 128  # the classes down the columns: the mask read across the memory's order


def _through(masked: str, match: re.Match[str]) -> str:
    """``A[picked]`` read through the one-hot: ``masked`` with A's name in it."""
    return masked.format(match.group(1))


def _softmax_in_place(forward: list[Line], lines: list[str], arguments: set[str]) -> None:
    """``P = exp / S`` as ``np.divide(exp, S, out=exp)`` when no other line reads ``exp`` after it.

    ``exp`` is then a new array the forward made (``np.exp``) that only this line still reads,
    so P can take its memory: the same division, no new array.
    """
    made_by_exp = {line.target for line in forward if line.code.startswith("np.exp(")} - arguments
    for i, text in enumerate(lines):
        target, _, code = text.partition(" = ")
        numerator, slash, total = code.partition(" / ")
        if not slash or numerator not in made_by_exp or not total.isidentifier():
            continue
        if any(numerator in names_read(other.split("  # ", 1)[0]) for other in lines[i + 1 :]):
            continue
        lines[i] = (
            f"{target} = np.divide({numerator}, {total}, out={numerator})  # softmax, in {numerator}'s array"
        )


def _text(
    writer: _Writer,
    forward: list[Line],
    lines: list[str],
    grad_names: dict[int, str],
    needed: set[str | None],
    loss_name: str | None,
    function_name: str,
) -> str:
    """The program's text, with only the forward lines the loss and the derived lines read."""
    kept: list[Line] = []
    for line in reversed(forward):
        if any(target in needed for target in line.target.split(", ")):
            kept.append(line)
            needed |= line.reads | ({line.out} if line.out else set())
    kept.reverse()
    once = [_line_text(line) for line in kept if line.section == "once"]
    body = ["    " + _line_text(line) for line in kept if line.section != "once"]
    grads = ", ".join(grad_names.get(i, "None") for i in range(len(writer.arg_names)))
    grads += "," if len(writer.arg_names) == 1 else ""
    return "\n".join(
        [
            *([ONCE_HEADING, *once, "", ""] if once else []),
            f"def {function_name}({', '.join(writer.arg_names)}):",
            *([REUSE_NOTE] if any(line.out for line in kept) else []),
            *([REDUCE_NOTE] if any(".reduce(" in text for text in [*body, *lines]) else []),
            "    # forward (the step program's)",
            *body,
            "    # backward: the gradients as derived",
            *["    " + line for line in lines],
            f"    return float({loss_name}), ({grads})",
            "",
        ]
    )


def _line_text(line: Line) -> str:
    text = f"{line.target} = {line.code}"
    return f"{text}  # {line.comment}" if line.comment else text


def proven_equal(
    derived: Callable[..., Any], step: Callable[..., Any], arguments: dict[str, Any], names: list[str]
) -> str:
    """Empty if the derived program gives the step program's loss and gradients, else how they differ.

    Run twice: on the traced call's arguments and on random ones of the same
    shapes and dtypes (labels and other integer arrays shuffled, so that no
    coincidence of this call's values is taken for a rule). Float64
    results must agree to 1e-12 relative to the largest entry; a coarser float
    to a thousand roundings of its own.
    """
    rng = np.random.default_rng(0)
    randomised = {name: _another(a, rng) for name, a in arguments.items()}
    for inputs in (arguments, randomised):
        values = list(inputs.values())
        got_loss, got, *_ = derived(*values)
        want_loss, want, *_ = step(*values)
        pairs = [(np.asarray(got_loss), np.asarray(want_loss), "the loss")]
        pairs += [(g, w, "d" + n) for g, w, n in zip(got, want, names) if w is not None]
        for g, w, what in pairs:
            if g is None or np.shape(g) != np.shape(w) or np.asarray(g).dtype != np.asarray(w).dtype:
                return f"{what} has another shape or dtype than the step program's"
            tolerance = 1e-12 if w.dtype == np.float64 else 1e3 * float(np.finfo(w.dtype).eps)
            scale = float(np.max(np.abs(w), initial=0.0)) or 1.0
            error = float(np.max(np.abs(g - w), initial=0.0)) / scale
            if not error <= tolerance:
                return f"{what} differs from the step program's by {error:.3g} (more than {tolerance:g})"
    return ""


def _another(a: Any, rng: np.random.Generator) -> Any:
    """Another argument of ``a``'s kind: random normal floats, or ``a``'s own integers shuffled."""
    if not isinstance(a, np.ndarray) or a.size == 0:
        return a
    if a.dtype.kind == "f":
        return np.asarray(rng.standard_normal(a.shape), dtype=a.dtype)
    if a.dtype.kind in "iu":
        return rng.permutation(a.reshape(-1)).reshape(a.shape)
    return a
