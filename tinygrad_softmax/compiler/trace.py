"""Tracing: run ``fn`` on Tensors once, watch every op it makes, and write the program.

The forward is each recorded op's own ``forward`` run again on :class:`Sym`
values (one line per op); the backward is the engine's walk run on them
(:mod:`.backward`). The written program is then run on the traced inputs and
compared with the eager engine's loss and gradients.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import engine, grad_mode, ops
from ..tensor import Tensor
from .backward import array, own, walk
from .optimize import broadcast_spreads, drop_dead_lines, reuse_buffers
from .program import Program
from .runtime import RUNTIME
from .symbolic import CompileError, Sym, literal


class _Recorder:
    """Every op ``fn`` makes, in order, recorded in the graph or not (``Tensor._apply`` calls ``record``)."""

    def __init__(self) -> None:
        self.events: list[tuple[ops.Op, tuple[Tensor, ...], Tensor]] = []

    def record(self, op: ops.Op, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        self.events.append((op, inputs, out))


def _same_view(a: Any, b: Any) -> bool:
    """Whether two arrays are the same values in the same memory (a detached tensor, a view)."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return False
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


@dataclass
class Generated:
    """One traced program: its source, the function compiled from it, and what the check compares."""

    source: str
    function: Callable[..., Any]
    constants: dict[str, Any]
    ops: list[str]  # the recorded ops, in order


def _argument_names(fn: Callable[..., Any], n: int, args: Sequence[Any]) -> list[str]:
    names: list[str] = []
    try:
        parameters = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    for i in range(n):
        own = args[i].name if isinstance(args[i], Tensor) else None
        names.append(parameters[i] if i < len(parameters) else own or f"arg{i}")
    return names


def trace(
    fn: Callable[..., Any], args: Sequence[Any], function_name: str, has_aux: bool = False
) -> Generated:
    """Run ``fn`` on Tensors, watch its ops, and write the program."""
    program = Program()
    program.names.update(RUNTIME)
    arg_names = [program.fresh(n) for n in _argument_names(fn, len(args), args)]
    # Fresh tensors for the trace: the caller's tensors get no graph and no .grad.
    traced_args = [
        Tensor(array(a), requires_grad=a.requires_grad, name=a.name) if isinstance(a, Tensor) else a
        for a in args
    ]
    recorder = _Recorder()
    with grad_mode.traced_by(recorder):
        root = fn(*traced_args)
    aux: Tensor | None = None
    if has_aux:
        if not (isinstance(root, tuple) and len(root) == 2 and isinstance(root[1], Tensor)):
            raise CompileError("compile: with has_aux=True, fn must return (loss, a Tensor to hand back)")
        root, aux = root
    if not isinstance(root, Tensor):
        raise CompileError(f"compile: fn must return a Tensor (the loss), got {type(root).__name__}")
    if array(root).size != 1:
        raise CompileError(f"compile: fn must return a scalar loss, got a tensor of shape {root.shape}")

    syms: dict[Tensor, Sym] = {}
    for name, traced in zip(arg_names, traced_args):
        if isinstance(traced, Tensor):
            syms[traced] = Sym(program, array(traced), name=name)
    # Every traced tensor with its Sym, to recognise a detached tensor by its memory.
    produced: list[tuple[Tensor, Sym]] = [(t, syms[t]) for t in traced_args if isinstance(t, Tensor)]

    def sym_of(t: Tensor) -> Sym:
        if t in syms:
            return syms[t]
        data = array(t)
        for other, sym in reversed(produced):  # a detached tensor: the same memory as one traced
            if _same_view(data, array(other)):
                syms[t] = sym
                return sym
        for name, arg in zip(arg_names, args):  # a NumPy argument lifted to a Tensor inside fn
            if isinstance(arg, np.ndarray) and (_same_view(data, arg) or equal(data, arg)):
                syms[t] = Sym(program, data, name=name)
                return syms[t]
        if t.requires_grad:
            raise CompileError(
                f"compile: fn reads the tensor {t.name or ''} of shape {t.shape}, which requires grad but is "
                "not an argument; pass it as an argument so that the program reads it on every call and "
                "returns its gradient"
            )
        if data.ndim == 0 and literal(data[()]) is not None:  # a lifted Python number
            syms[t] = Sym(program, data, name=repr(data[()]))
            return syms[t]
        syms[t] = program.constant(data)
        return syms[t]

    def index_source(index: np.ndarray) -> str:
        """Source for ``index`` (labels): from an integer argument where it came from one."""
        candidates = [
            (name, arg)
            for name, arg in zip(arg_names, args)
            if isinstance(arg, np.ndarray) and arg.dtype.kind in "iu" and arg.size == index.size
        ]
        # The argument the index is a view of, else one with the same values (a copy of it).
        for same_memory in (True, False):
            for name, arg in candidates:
                if same_memory and not np.may_share_memory(arg, index):
                    continue
                if equal(arg.reshape(index.shape), index):
                    return name if arg.shape == index.shape else f"{name}.reshape({index.shape})"
        name = program.fresh("index")
        program.constants[name] = index.copy()
        return name

    # ------------------------------------------------------------ forward: one line per op
    recorded_ops: list[str] = []
    op_counts: dict[str, int] = {}
    for op, inputs, out in recorder.events:
        ins = [sym_of(t) for t in inputs]
        target = program.fresh(_name_for(out, op, ins, op_counts))
        comment = op.name + ("" if out.requires_grad else " (no gradient)")
        if isinstance(op, ops.Gather):
            axis = op.axis
            where = program.fresh("picked")
            grid = program.grid(op.positions, axis)
            program.emit_code(
                where, f"picks({index_source(op.index)}, {axis}, {inputs[0].shape[axis]}, {grid})"
            )
            program.positions[id(op.positions)] = where
            sym = ins[0].gather(op.positions, axis)
        elif isinstance(op, ops.SoftmaxCrossEntropy):
            labels = index_source(op.labels)
            value = array(out)
            sym = Sym(program, value, f"softmax_cross_entropy({{0}}, {labels}, {op.axis})", (ins[0],))
            where = program.fresh("picked")
            picks_index = f"{labels}.reshape({op.picks.index.shape})"
            grid = program.grid(op.picks.positions, op.axis)
            program.emit_code(where, f"picks({picks_index}, {op.axis}, {inputs[0].shape[op.axis]}, {grid})")
            program.positions[id(op.picks.positions)] = where
        elif isinstance(op, (ops.Expand, ops.SumTo, ops.ScatterAdd)):
            sym = Sym._apply(op, ins[0])
        else:
            sym = copy.copy(op).forward(*ins)  # type: ignore[assignment]  # its own forward, on Sym values
            if not isinstance(sym, Sym):
                raise CompileError(f"compile: the forward of {op.name} did not run on traced values")
        if sym.name is not None:  # the op returned its input unchanged: still one line
            sym = Sym(program, sym.value, "{0}", (sym,))
        if not equal(np.asarray(sym.value), np.asarray(array(out))):
            raise CompileError(f"compile: the line written for {op.name} does not reproduce its value")
        program.emit(target, sym, comment, op=op.name)
        syms[out] = sym
        produced.append((out, sym))
        recorded_ops.append(op.name)

    root_sym = sym_of(root)
    loss_name = root_sym.name

    # ------------------------------------------------------------ backward: the walk, on Sym values
    program.section = "backward"
    grad_names: list[str | None] = [None] * len(args)
    wanted = [i for i, a in enumerate(traced_args) if isinstance(a, Tensor) and a.requires_grad]
    if root.requires_grad and wanted:
        grads = walk(program, root, syms, recorded_args={traced_args[i]: i for i in wanted})
        handed_back: set[str] = set()
        for i in wanted:
            g = grads.get(traced_args[i])
            a = array(traced_args[i])
            if g is None:
                name = program.fresh("d" + arg_names[i])
                code = f"np.zeros({a.shape}, dtype=np.{a.dtype.name})"
                program.emit_code(name, code, "does not reach the loss", once=False)
            else:
                name = own(program, g, a.dtype, handed_back, "d" + arg_names[i])
            handed_back.add(name)
            grad_names[i] = name

    aux_name = None
    if aux is not None:
        aux_sym = sym_of(aux)
        if aux_sym.name in program.fixed:  # the same array on every call: hand back a copy
            aux_sym = program.emit(
                program.fresh("aux"), Sym(program, aux_sym.value, "{0}.copy()", (aux_sym,)), once=False
            )
        aux_name = aux_sym.name

    # ------------------------------------------------------------ passes that change no bit, the source
    returned = {n for n in [loss_name, aux_name, *grad_names] if n is not None}
    broadcast_spreads(program, returned)
    drop_dead_lines(program, returned)
    arguments = {name: array(t) if isinstance(t, Tensor) else t for name, t in zip(arg_names, traced_args)}
    reuse_buffers(program, arguments, returned)
    grads_text = ", ".join(n or "None" for n in grad_names) + ("," if len(grad_names) == 1 else "")
    return_text = f"float({loss_name}), ({grads_text})" + (f", {aux_name}" if aux_name else "")
    source = program.source(function_name, arg_names, return_text)
    generated = Generated(source, program.function(source, function_name), program.constants, recorded_ops)
    check_against_engine(generated, root, traced_args)
    return generated


def _name_for(out: Tensor, op: ops.Op, ins: list[Sym], op_counts: dict[str, int]) -> str:
    """A variable name: the tensor's own name, W and X's product ``WX``, else the op numbered (``exp1``)."""
    if out.name:
        word = "".join(c if c.isalnum() or c == "_" else " " for c in out.name).split()
        if word and word[0].isidentifier():
            return word[0]
    if isinstance(op, ops.MatMul) and all(s.name and len(s.name) <= 2 and s.name.isalpha() for s in ins):
        return "".join(s.name for s in ins if s.name)
    op_counts[op.name] = op_counts.get(op.name, 0) + 1
    return f"{op.name}{op_counts[op.name]}"


def equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    )


def check_against_engine(generated: Generated, root: Tensor, traced_args: list[Any]) -> None:
    """The program, run on the traced inputs, must give the eager engine's loss and gradients."""
    arrays = [array(a) if isinstance(a, Tensor) else a for a in traced_args]
    loss, grads, *_ = generated.function(*arrays)
    sources = [a for a in traced_args if isinstance(a, Tensor) and a.requires_grad]
    if root.requires_grad and sources:
        ones = np.ones(np.shape(array(root)), dtype=array(root).dtype)
        eager = iter(engine.gradients(root, ones, sources))
    else:
        eager = iter(())
    problems = []
    if not np.isclose(loss, float(array(root)), rtol=1e-12, atol=0, equal_nan=True):
        problems.append(f"loss {loss!r} != {float(array(root))!r}")
    for i, (a, g) in enumerate(zip(traced_args, grads)):
        if not (isinstance(a, Tensor) and a.requires_grad):
            continue
        e = next(eager)
        expected = np.zeros_like(array(a)) if e is None else np.asarray(e)
        tolerance = 1e3 * float(np.finfo(expected.dtype).eps)
        if g.shape != expected.shape or not np.allclose(
            g, expected, rtol=tolerance, atol=tolerance, equal_nan=True
        ):
            problems.append(f"the gradient of argument {i}")
    if problems:
        raise CompileError(
            "compile: the generated program does not reproduce the eager engine ("
            + "; ".join(problems)
            + "):\n"
            + generated.source
        )
