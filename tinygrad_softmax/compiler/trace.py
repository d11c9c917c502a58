"""Tracing: run ``fn`` on stand-ins for its arguments, watch every op it makes, and write the program.

Each argument becomes a stand-in told apart by its position only
(:mod:`.abstract`): a Tensor a :class:`~.abstract.TracedTensor`, a NumPy
array an :class:`~.abstract.AbstractArray`; ``fn`` cannot read their numbers.
The forward is each recorded op written as code by its entry in
:data:`FORWARD` (by default the op's own ``forward`` run again on
:class:`Sym` values); the backward is the engine's walk run on them
(:mod:`.backward`). What the trace writes is the plain listing, one line per
rule; :mod:`.optimize` then makes the program that runs.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import engine, grad_mode, ops
from ..tensor import Tensor
from .abstract import AbstractArray, TracedTensor
from .backward import array, own, walk
from .derived import simplify_program
from .optimize import optimize
from .program import Generated, Program, identifier
from .runtime import RUNTIME
from .symbolic import CompileError, Sym, literal


class _Recorder:
    """What ``fn`` did while traced: its ops, the tensors it made of traced values, the arrays handed out."""

    def __init__(self) -> None:
        self.events: list[tuple[ops.Op, tuple[Tensor, ...], Tensor]] = []
        self.traced: list[Tensor] = []  # tensors made TracedTensor: plain Tensors again after the trace
        self.sources: dict[Tensor, Any] = {}  # Tensor(x) and detach(): the tensor -> what it was made of
        self.handed_out: list[tuple[np.ndarray, Sym]] = []  # arrays the engine made of AbstractArrays

    def record(self, op: ops.Op, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        """``Tensor._apply`` calls this for every op."""
        self.events.append((op, inputs, out))
        self._mark(out)

    def lifting(self, made: Tensor, data: Any) -> Any:
        """``Tensor.__init__`` calls this: ``Tensor(x)`` of a traced value reads it on every call."""
        if isinstance(data, AbstractArray):
            self.sources[made] = data.sym
            self._mark(made)
            return data.sym.value
        if isinstance(data, Tensor) and (type(data) is TracedTensor or data in self.sources):
            self.sources[made] = data
            self._mark(made)
        return data

    def detached(self, source: Tensor, out: Tensor) -> None:
        self.sources[out] = source
        self._mark(out)

    def hand_out(self, made: np.ndarray, sym: Sym) -> None:
        """The engine converted an AbstractArray (labels, an index): ``made`` is computed by ``sym``."""
        self.handed_out.append((made, sym))

    def _mark(self, t: Tensor) -> None:
        t.__class__ = TracedTensor
        self.traced.append(t)

    def restore(self) -> None:
        for t in self.traced:
            t.__class__ = Tensor


def trace(
    fn: Callable[..., Any],
    args: Sequence[Any],
    function_name: str,
    has_aux: bool = False,
    check: bool = True,
    simplify: bool | str = "fastest",
) -> Generated:
    """Run ``fn`` on stand-ins for ``args``, watch its ops, and write the program (and, with
    ``simplify``, the derived program of :mod:`.derived`, run once it agrees with the step program)."""
    writer = _Writer(fn, args)
    root, aux = writer.run(has_aux)
    writer.forward()
    loss_name = writer.sym_of(root).name
    grad_names = writer.backward(root)
    aux_name = writer.hand_back_aux(aux)
    returned = [n for n in [loss_name, aux_name, *grad_names] if n is not None]
    grads_text = ", ".join(n or "None" for n in grad_names) + ("," if len(grad_names) == 1 else "")
    return_text = f"float({loss_name}), ({grads_text})" + (f", {aux_name}" if aux_name else "")
    program = writer.program
    plain = program.source(function_name, writer.arg_names, return_text)
    plain_lines = [copy.copy(line) for line in program.lines]
    optimize(program, writer.arguments(), set(returned))
    source = program.source(function_name, writer.arg_names, return_text)
    function = program.function(source, function_name)
    generated = Generated(source, plain, function, program.constants, writer.op_names, function)
    if check:
        check_against_engine(generated, root, writer.traced_args, writer.arguments())
    if simplify:
        simplify_program(
            generated, writer, root, plain_lines, loss_name, aux_name, function_name, simplify == "fastest"
        )
    return generated


class _Writer:
    """The program being written for one trace: the stand-ins, their Sym values, the lines."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any]) -> None:
        self.fn = fn
        self.args = list(args)
        self.program = Program()
        self.program.names.update(RUNTIME)
        self.arg_names = [self.program.fresh(n) for n in _argument_names(fn, args)]
        self.program.arguments.update(self.arg_names)
        self.recorder = _Recorder()
        self.syms: dict[Tensor, Sym] = {}
        self.traced_args: list[Any] = [self._stand_in(a, name) for a, name in zip(args, self.arg_names)]
        self.op_names: list[str] = []
        self._op_counts: dict[str, int] = {}
        self._index_names: dict[int, str] = {}

    def _stand_in(self, arg: Any, name: str) -> Any:
        """What ``fn`` gets for ``arg``: a value told apart from the others by its position only."""
        if isinstance(arg, Tensor):
            t = Tensor._wrap(array(arg), held_outside=True)  # the caller's array, never written
            t.requires_grad, t.name = arg.requires_grad, arg.name
            self.recorder._mark(t)
            self.syms[t] = Sym(self.program, array(t), name=name)
            return t
        if isinstance(arg, np.ndarray):
            return AbstractArray(Sym(self.program, arg, name=name), self._hand_out)
        return arg  # a Python number or another hashable constant: part of the cache's key

    def arguments(self) -> dict[str, Any]:
        return {name: array(a) if isinstance(a, Tensor) else a for name, a in zip(self.arg_names, self.args)}

    # ------------------------------------------------------------ running fn

    def run(self, has_aux: bool) -> tuple[Tensor, Tensor | None]:
        try:
            with grad_mode.traced_by(self.recorder):
                result = self.fn(*self.traced_args)
        finally:
            self.recorder.restore()
        return _loss_and_aux(result, has_aux)

    def _hand_out(self, made: np.ndarray, sym: Sym) -> None:
        if sym.name is None:
            self.program.emit(self.program.fresh("labels" if sym.dtype.kind in "iu" else "t"), sym)
        self.recorder.hand_out(made, sym)

    # ------------------------------------------------------------ the Sym of a tensor

    def sym_of(self, t: Tensor) -> Sym:
        sym = self.syms.get(t)
        if sym is None:
            sym = self.syms[t] = self._new_sym(t)
        return sym

    def _new_sym(self, t: Tensor) -> Sym:
        source = self.recorder.sources.get(t)
        if isinstance(source, Tensor):  # Tensor(x) of a traced tensor, or x.detach(): x's values
            return self.sym_of(source)
        if isinstance(source, Sym):  # Tensor(a) of a NumPy argument: a float array of a's values
            return self._lifted(source, t)
        if t.requires_grad:
            raise CompileError(
                f"compile: fn reads the tensor {t.name or ''} of shape {t.shape}, which requires grad but is "
                "not an argument; pass it as an argument so that the program reads it on every call and "
                "returns its gradient"
            )
        data = array(t)
        if data.ndim == 0 and literal(data[()]) is not None:  # a lifted Python number
            return Sym(self.program, data, name=repr(data[()]))
        return self.program.constant(data)

    def _lifted(self, source: Sym, t: Tensor) -> Sym:
        data = array(t)
        if source.dtype != data.dtype:
            source = Sym(self.program, data, f"{{0}}.astype(np.{data.dtype.name})", (source,))
        if source.name is None:
            self.program.emit(self.program.fresh(identifier(t.name) or "t"), source, "Tensor(...)")
        return source

    def index_source(self, index: np.ndarray) -> str:
        """Source for an index the engine keeps (labels): the code of the argument it was made of."""
        for made, sym in self.recorder.handed_out:
            if index is made:
                return sym.render()
            if index.base is made and index.size == made.size and index.flags.c_contiguous:
                return f"{sym.render()}.reshape({index.shape})"
            if np.may_share_memory(index, made):
                raise CompileError(
                    "compile: the engine kept a part of a traced array it cannot write as code "
                    f"(an index of shape {index.shape} from an array of shape {made.shape})"
                )
        known = self._index_names.get(id(index))
        if known is None:  # made inside fn from constants: the same on every call
            known = self._index_names[id(index)] = self.program.fresh("index")
            self.program.constants[known] = index.copy()
            self.program.fixed.add(known)
        return known

    # ------------------------------------------------------------ forward: one line per op

    def forward(self) -> None:
        for op, inputs, out in self.recorder.events:
            ins = [self.sym_of(t) for t in inputs]
            target = self.program.fresh(self._name_for(out, op, ins))
            comment = op.name + ("" if out.requires_grad else " (no gradient)")
            sym = FORWARD.get(type(op), _own_forward)(self, op, inputs, ins, out)
            if sym.name is not None:  # the op returned its input unchanged: still one line
                sym = Sym(self.program, sym.value, "{0}", (sym,))
            self.program.emit(target, sym, comment, op=op.name)
            self.syms[out] = sym
            self.op_names.append(op.name)

    def _name_for(self, out: Tensor, op: ops.Op, ins: list[Sym]) -> str:
        """A variable name: the tensor's own name, W and X's product ``WX``, else the op numbered (exp1)."""
        own_name = identifier(out.name)
        if own_name:
            return own_name
        if isinstance(op, ops.MatMul) and all(s.name and len(s.name) <= 2 and s.name.isalpha() for s in ins):
            return "".join(s.name for s in ins if s.name)
        self._op_counts[op.name] = self._op_counts.get(op.name, 0) + 1
        return f"{op.name}{self._op_counts[op.name]}"

    # ------------------------------------------------------------ backward and what is handed back

    def backward(self, root: Tensor) -> list[str | None]:
        """The walk on Sym values; one name per argument: its gradient, or None."""
        self.program.section = "backward"
        names: list[str | None] = [None] * len(self.args)
        wanted = [i for i, a in enumerate(self.traced_args) if isinstance(a, Tensor) and a.requires_grad]
        if not (root.requires_grad and wanted):
            return names
        recorded = {self.traced_args[i]: i for i in wanted}
        grads = walk(self.program, root, self.syms, recorded)
        handed_back: set[str] = set()
        for i in wanted:
            g = grads.get(self.traced_args[i])
            a = array(self.traced_args[i])
            if g is None:
                name = self.program.fresh("d" + self.arg_names[i])
                code = f"np.zeros({a.shape}, dtype=np.{a.dtype.name})"
                self.program.emit_code(name, code, "does not reach the loss", once=False)
            else:
                name = own(self.program, g, a.dtype, handed_back, "d" + self.arg_names[i])
            handed_back.add(name)
            names[i] = name
        self._handed_back = handed_back
        return names

    def hand_back_aux(self, aux: Tensor | None) -> str | None:
        """The aux's array, an array of its own: never an argument's memory, never a gradient's."""
        if aux is None:
            return None
        aux_sym = self.sym_of(aux)
        if aux_sym.name is None:
            self.program.emit(self.program.fresh("aux"), aux_sym)
        return own(self.program, aux_sym, aux_sym.dtype, getattr(self, "_handed_back", set()), "aux")


def _own_forward(writer: _Writer, op: ops.Op, inputs: Sequence[Tensor], ins: list[Sym], out: Tensor) -> Sym:
    """The op's own forward from ops.py, run on Sym values: it computes the value and writes the code."""
    sym = copy.copy(op).forward(*ins)
    if not isinstance(sym, Sym):
        raise CompileError(f"compile: the forward of {op.name} did not run on traced values")
    return sym


def _gather(writer: _Writer, op: Any, inputs: Sequence[Tensor], ins: list[Sym], out: Tensor) -> Sym:
    axis = op.axis
    _positions(writer, op.positions, axis, writer.index_source(op.index), inputs[0].shape[axis])
    return ins[0].gather(op.positions, axis)


def _fused(writer: _Writer, op: Any, inputs: Sequence[Tensor], ins: list[Sym], out: Tensor) -> Sym:
    labels = writer.index_source(op.labels)
    sym = Sym(writer.program, array(out), f"softmax_cross_entropy({{0}}, {labels}, {op.axis})", (ins[0],))
    index = f"{labels}.reshape({op.picks.index.shape})"
    _positions(writer, op.picks.positions, op.axis, index, inputs[0].shape[op.axis])
    return sym


def _positions(writer: _Writer, positions: Any, axis: int, index: str, size: int) -> None:
    """``picked = picks(labels, ...)``: the positions a gather reads, from this call's labels."""
    program = writer.program
    where = program.fresh("picked")
    program.emit_code(where, f"picks({index}, {axis}, {size}, {program.grid(positions, axis)})")
    program.positions[id(positions)] = where


def _adjoint(writer: _Writer, op: ops.Op, inputs: Sequence[Tensor], ins: list[Sym], out: Tensor) -> Sym:
    return Sym._apply(op, ins[0])


# How each op is written as code, when its own forward on Sym values is not enough.
FORWARD: dict[type, Callable[[_Writer, Any, Sequence[Tensor], list[Sym], Tensor], Sym]] = {
    ops.Gather: _gather,
    ops.SoftmaxCrossEntropy: _fused,
    ops.Expand: _adjoint,
    ops.SumTo: _adjoint,
    ops.ScatterAdd: _adjoint,
}


def _loss_and_aux(result: Any, has_aux: bool) -> tuple[Tensor, Tensor | None]:
    aux: Tensor | None = None
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Tensor)):
            raise CompileError("compile: with has_aux=True, fn must return (loss, a Tensor to hand back)")
        result, aux = result
    if not isinstance(result, Tensor):
        raise CompileError(f"compile: fn must return a Tensor (the loss), got {type(result).__name__}")
    if array(result).size != 1:
        raise CompileError(f"compile: fn must return a scalar loss, got a tensor of shape {result.shape}")
    return result, aux


def _argument_names(fn: Callable[..., Any], args: Sequence[Any]) -> list[str]:
    try:
        parameters = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    names = []
    for i, arg in enumerate(args):
        own_name = identifier(arg.name) if isinstance(arg, Tensor) else None
        names.append(parameters[i] if i < len(parameters) else own_name or f"arg{i}")
    return names


def check_against_engine(
    generated: Generated, root: Tensor, traced_args: list[Any], arguments: dict[str, Any]
) -> None:
    """The program, run on the traced call's arguments, must give the eager engine's loss and gradients.

    A guard against a rule the compiler writes wrongly as code (such a line is off
    by far more than a rounding), not against ``fn``, which cannot reach the numbers.
    The two may round differently (a float32 sum over another memory layout), so
    each result is compared at the precision of the coarsest float the call holds.
    """
    loss, grads, *_ = generated.function(*arguments.values())
    sources = [a for a in traced_args if isinstance(a, Tensor) and a.requires_grad]
    wanted = root.requires_grad and sources
    eager = iter(engine.gradients(root, np.ones_like(array(root)), sources) if wanted else ())
    floats = [np.asarray(a).dtype for a in arguments.values() if np.asarray(a).dtype.kind == "f"]
    eps = max([float(np.finfo(d).eps) for d in [*floats, array(root).dtype] if d.kind == "f"], default=0.0)
    problems = []
    if not _close(loss, array(root), eps):
        problems.append(f"loss {loss!r} != {float(array(root))!r}")
    for i, (a, g) in enumerate(zip(traced_args, grads)):
        if isinstance(a, Tensor) and a.requires_grad:
            e = next(eager, None) if sources else None
            # backward() hands a gradient back in its tensor's dtype; gradients() may not have cast it yet
            expected = np.zeros_like(array(a)) if e is None else np.asarray(e).astype(array(a).dtype)
            if g.shape != expected.shape or not _close(g, expected, eps):
                problems.append(f"the gradient of argument {i}")
    if problems:
        raise CompileError(
            "compile: the generated program does not reproduce the eager engine ("
            + "; ".join(problems)
            + "):\n"
            + generated.source
        )


def _close(got: Any, expected: Any, eps: float) -> bool:
    """Equal up to a thousand roundings of ``eps`` (relative to the largest entry); NaN where NaN."""
    expected = np.asarray(expected)
    scale = max(float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)), 1.0)
    return bool(np.allclose(got, expected, rtol=1e3 * eps, atol=1e3 * eps * scale, equal_nan=True))
