"""The element view: for a few classes and samples, every entry of every gradient as a SymPy expression.

The logits are SymPy symbols z₁, z₂, ... (z_c,n for several samples). The
engine's own backward rules from ``ops.py`` run on NumPy arrays *of SymPy
expressions* (dtype object): the first-order path, unchanged. Each step of the
chain is kept, like the ledger, but as formulas. The cross-entropy is taken in
its unshifted form (softmax(z − m) = softmax(z) for any m, so the shift by the
max changes no formula). SymPy is imported here only: the rest of the engine
never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from ... import engine, ops
from ...tensor import Tensor

MAX_ENTRIES = 12  # C·N: the formulas grow with every entry; past this they no longer fit on a slide
TOLERANCE = 1e-12


@dataclass
class Step:
    """One chain-rule step: the node's op, its rule, and ∂L/∂(the op's input) entry by entry."""

    op: str
    rule: str
    grad: np.ndarray  # of SymPy expressions


@dataclass
class ElementView:
    C: int
    N: int
    labels: np.ndarray  # 0-based
    logits: np.ndarray  # the symbols, C×N
    loss: sp.Expr
    steps: list[Step]
    grad: np.ndarray  # ∂L/∂z, simplified, C×N
    probabilities: np.ndarray  # p_c,n as SymPy expressions of z
    hessian: np.ndarray  # ∂²L/∂z_i∂z_j for the first sample, C×C
    p_symbols: list[sp.Symbol]
    hessian_in_p: np.ndarray  # the same, written with p₁, p₂, ...
    error: float  # max |formula − engine| at random logits
    witness_agrees: bool  # SymPy's own diff of the loss gives the same gradient

    def name(self, c: int, n: int) -> str:
        return _z_name(c, n, self.N)


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _z_name(c: int, n: int, N: int) -> str:
    return f"z{c + 1}".translate(_SUB) if N == 1 else f"z{c + 1},{n + 1}".translate(_SUB)


def _terms_numbers_last(printer: Any, expr: Any) -> str:
    """a + b − 1, the number last (SymPy's own order puts it first)."""
    out = ""
    for term in sorted(expr.args, key=lambda t: bool(t.is_number)):
        text = printer._print(term)
        if not out:
            out = text
        elif text.startswith("-"):
            out += " - " + text[1:]
        else:
            out += " + " + text
    return out


class _Printer(StrPrinter):
    """SymPy's one-line printer with e^{…}, −, · and no ** (a formula a person writes)."""

    def _print_exp(self, expr: Any) -> str:
        return f"e^{{{self._print(expr.args[0])}}}"

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        return _terms_numbers_last(self, expr)


class _LatexPrinter(LatexPrinter):
    def _print_Add(self, expr: Any, order: Any = None) -> str:
        return _terms_numbers_last(self, expr)


def text(expr: Any) -> str:
    out = _Printer({"order": "none"}).doprint(expr)
    for power, mark in (("**2", "²"), ("**3", "³"), ("**", "^"), ("*", "·"), ("-", "−")):
        out = out.replace(power, mark)
    return out


def latex(expr: Any) -> str:
    """LaTeX with z_{1}, z_{1,2}, p_{1} for the symbols (mathtext reads no Unicode subscripts)."""
    names = {s: _latex_name(s.name) for s in expr.free_symbols}
    return str(_LatexPrinter({"order": "none", "symbol_names": names}).doprint(expr))


def _latex_name(name: str) -> str:
    digits = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
    head, tail = name[0], name[1:].translate(digits)
    return f"{head}_{{{tail}}}" if tail else head


def _symbols(C: int, N: int) -> np.ndarray:
    z = np.empty((C, N), dtype=object)
    for c in range(C):
        for n in range(N):
            z[c, n] = sp.Symbol(_z_name(c, n, N), real=True)
    return z


def _loss_graph(values: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """The cross-entropy, column layout, built from the primitive ops (unshifted log-softmax)."""
    Z = Tensor(values, requires_grad=True, name="Z")
    log_p = Z - Z.exp().sum(axis=0, keepdims=True).log()
    picked = log_p.gather(0, labels.reshape(1, -1))
    return -picked.mean(), Z


def _forward(fn: ops.Op, args: list[np.ndarray]) -> np.ndarray:
    """An op's output on arrays of SymPy expressions (the viewer reads the op's name and settings)."""
    name = fn.name
    if name in ("add", "sub", "mul", "div"):
        a, b = args
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[name]
    (x,) = args
    if name == "neg":
        return -x
    if name == "exp":
        return np.vectorize(sp.exp, otypes=[object])(x)
    if name == "log":
        return np.vectorize(sp.log, otypes=[object])(x)
    if name in ("sum", "mean"):
        total: Any = np.asarray(x.sum(axis=fn.axes, keepdims=fn.keepdims), dtype=object)  # type: ignore[attr-defined]
        return total if name == "sum" else total / fn.count  # type: ignore[attr-defined]
    if isinstance(fn, ops.Gather):
        return x[fn.positions]
    raise ValueError(f"derive --elements: no element form for the op {name}")


def element_view(C: int = 3, N: int = 1, labels: np.ndarray | None = None, seed: int = 0) -> ElementView:
    """The element view of the mean cross-entropy, C classes, N samples (labels default: all class 1)."""
    if C < 2 or N < 1 or C * N > MAX_ENTRIES:
        raise ValueError(
            f"derive --elements: C ≥ 2, N ≥ 1 and C·N ≤ {MAX_ENTRIES} (the formulas must fit a slide); "
            f"got C = {C}, N = {N}"
        )
    labels = np.zeros(N, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    if labels.shape != (N,) or labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"derive --elements: labels must be {N} classes in [0, {C}), got {labels.tolist()}")
    rng = np.random.default_rng(seed)
    point = rng.normal(size=(C, N))
    loss, Z = _loss_graph(point, labels)
    z = _symbols(C, N)
    # forward on symbols, node by node
    values: dict[Tensor, np.ndarray] = {Z: z}
    order = engine.topological_order(loss)
    for node in order:
        if node.grad_fn is not None:
            values[node] = _forward(node.grad_fn, [values[p] for p in node.parents])
    # backward: the engine's rules on arrays of SymPy expressions
    # NumPy hands back a bare SymPy number for arithmetic on a 0-d array of objects, which a rule would
    # take for a Tensor: scalars are carried as 1×1 arrays, which broadcast the same way.
    grads: dict[Tensor, np.ndarray] = {loss: np.full((1, 1), sp.Integer(1), dtype=object)}
    steps: list[Step] = []
    for node in reversed(order):
        g = grads[node] if node is Z else grads.pop(node)
        fn = node.grad_fn
        if fn is None:
            continue
        parent_grads = fn.backward(g, *[values[p] for p in node.parents], values[node])
        for parent, pg in zip(node.parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            pg = np.asarray(pg, dtype=object)
            if parent.shape == ():
                pg = pg.reshape(1, 1)
            elif pg.shape != parent.shape:
                pg = ops.unbroadcast(pg, parent.shape)
            steps.append(Step(fn.name, fn.rule, pg))
            earlier = grads.get(parent)
            grads[parent] = pg if earlier is None else earlier + pg
    dz = grads[Z]  # as the rules left it: e^{z₁}/(e^{z₁} + e^{z₂} + e^{z₃}) − 1
    L = np.asarray(values[loss], dtype=object).reshape(-1)[0]
    # The witness: SymPy's own diff of the same loss, written directly (no engine, no rules)
    direct = (
        -sum(sp.log(sp.exp(z[labels[n], n]) / sum(sp.exp(z[c, n]) for c in range(C))) for n in range(N)) / N
    )
    witness = all(sp.simplify(sp.diff(direct, z[c, n]) - dz[c, n]) == 0 for c in range(C) for n in range(N))
    # Numbers: the formula at the random logits against the engine's gradient there
    subs = {z[c, n]: point[c, n] for c in range(C) for n in range(N)}
    formula = np.array([[float(dz[c, n].evalf(subs=subs)) for n in range(N)] for c in range(C)])
    loss.backward()
    assert Z.grad is not None
    error = float(np.max(np.abs(formula - Z.grad)))
    # softmax and the Hessian of the loss in the first sample's logits
    denominators = [sum(sp.exp(z[c, n]) for c in range(C)) for n in range(N)]
    probs = np.array([[sp.exp(z[c, n]) / denominators[n] for n in range(N)] for c in range(C)], dtype=object)
    hess = np.array(
        [[sp.simplify(sp.diff(dz[i, 0], z[j, 0])) for j in range(C)] for i in range(C)], dtype=object
    )
    p = [sp.Symbol(f"p{c + 1}".translate(_SUB), positive=True) for c in range(C)]
    in_p = np.array(
        [[(sp.KroneckerDelta(i, j) * p[i] - p[i] * p[j]) / N for j in range(C)] for i in range(C)],
        dtype=object,
    )
    to_z = {p[c]: probs[c, 0] for c in range(C)}
    for i in range(C):
        for j in range(C):
            if sp.simplify(in_p[i, j].subs(to_z) - hess[i, j]) != 0:
                raise ValueError(f"derive --elements: H[{i + 1},{j + 1}] is not (δ p − p p)/N")
    return ElementView(C, N, labels, z, L, steps, dz, probs, hess, p, in_p, error, witness)


def to_text(view: ElementView) -> str:
    """The element view for the terminal."""
    labels = ", ".join(str(int(y) + 1) for y in view.labels)
    out = [
        f"Element view: C = {view.C} classes, N = {view.N} sample{'s' if view.N > 1 else ''}, "
        f"label{'s' if view.N > 1 else ''} y = {labels} (classes counted from 1)",
        f"  L = {text(view.loss)}",
        "",
        "Each chain-rule step, the engine's rule run on SymPy entries (∂L/∂ the op's input):",
    ]
    for step in view.steps:
        entries = ", ".join(text(e) for e in np.asarray(step.grad).reshape(-1))
        out.append(f"  {step.op:7} ({step.rule}): [{entries}]")
    out.append("")
    out.append("The gradient, entry by entry, as the rules added it up:")
    for c in range(view.C):
        for n in range(view.N):
            out.append(f"  ∂L/∂{view.name(c, n)} = {text(view.grad[c, n])}")
    out.append("")
    out.append("Hessian of L in the first sample's logits, component by component (diag(p) − p pᵀ)/N:")
    for i in range(view.C):
        row = "   ".join(
            f"H{i + 1}{j + 1}".translate(_SUB) + f" = {text(view.hessian_in_p[i, j])}" for j in range(view.C)
        )
        out.append(f"  {row}")
    ps = ", ".join(f"{text(view.p_symbols[c])} = {text(view.probabilities[c, 0])}" for c in range(view.C))
    out.append(f"  where {ps}")
    out.append("")
    out.append(
        f"Checked: SymPy's own diff of L gives the same gradient ({'yes' if view.witness_agrees else 'NO'}); "
        "at random logits the formulas equal the engine's gradient: "
        f"max |Δ| = {view.error:.1e} ≤ {TOLERANCE:g}"
    )
    return "\n".join(out) + "\n"


def latex_lines(view: ElementView) -> list[str]:
    lines = []
    for c in range(view.C):
        for n in range(view.N):
            lines.append(
                f"\\frac{{\\partial L}}{{\\partial {latex(view.logits[c, n])}}} = {latex(view.grad[c, n])}"
            )
    return lines
