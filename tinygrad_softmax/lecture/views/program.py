"""The program the engine writes for the linear softmax classifier, with the derivation found in it.

``compile`` turns one training step into straight-line NumPy (see
``docs/compile.md``). :class:`MarkedProgram` reads that program as a student
would: it finds the line that assigns ``dZ``, follows the names it reads back
through the backward lines, and marks every line that takes part. Run, those
lines give the derivation's closed form ``dZ = (P − Y)/N``, which the class
checks against :mod:`tinygrad_softmax.analytic` (written without the engine).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ... import analytic
from ... import functional as F
from ...analytic import CLASS_AXIS, Layout
from ...compiler import compile
from ...tensor import Tensor
from ..training.classifier import Classifier, build_classifier, logits

MARK = "▶"


def classifier_step(
    layout: Layout, D: int, N: int, C: int, seed: int
) -> tuple[Callable[..., Tensor], Classifier, int]:
    """One training step of the classifier the graph and the ledger show, its model, and its class axis."""
    if layout not in CLASS_AXIS:
        raise ValueError(f"compile: layout must be 'column' or 'row', got {layout!r}")
    axis = CLASS_AXIS[layout]
    model = build_classifier(layout, D=D, N=N, C=C, seed=seed, backward=False)

    def step(W: Tensor, b: Tensor, X: Tensor, y: np.ndarray) -> Tensor:
        Z = logits(W, b, X, layout)
        Z.name = "Z"
        loss = F.cross_entropy(Z, y, axis=axis)
        loss.name = "loss"
        return loss

    return step, model, axis


@dataclass(frozen=True)
class MarkedProgram:
    """The generated program, the lines that compute ``dZ`` and how far ``dZ`` is from ``(P − Y)/N``."""

    layout: Layout
    source: str
    marked: tuple[int, ...]  # 0-based line numbers in ``source``
    difference: float  # max |dZ − (P − Y)/N| over the entries

    @classmethod
    def for_classifier(
        cls,
        layout: Layout = "column",
        D: int = 4,
        N: int = 5,
        C: int = 3,
        seed: int = 0,
        optimized: bool = False,
    ) -> MarkedProgram:
        """Compile one step of the classifier (the one the graph and the ledger show) and read it.

        The plain listing, one line per rule; ``optimized``: the program that runs.
        """
        step, model, axis = classifier_step(layout, D, N, C, seed)
        compiled = compile(step)
        args = (model.W, model.b, model.X, model.labels)
        compiled(*args)
        source = compiled.source(optimized=optimized)
        dz = compiled.value("dZ", *args)
        closed_form = analytic.logits_grad(model.Z.data, model.labels, axis=axis)
        return cls(layout, source, lines_computing(source, "dZ"), float(np.max(np.abs(dz - closed_form))))

    def ops_marked(self) -> list[str]:
        """The ops whose backward rules wrote the marked lines, in the order they run."""
        lines = self.source.splitlines()
        found: list[str] = []
        for i in self.marked:
            comment = lines[i].partition("  # ")[2]
            # "exp backward → ∂L/∂in (sum backward's dexp = ..., done by broadcasting)": sum, then exp.
            for op in reversed(re.findall(r"(\w+) backward", comment)):
                if op not in found:
                    found.append(op)
        return found

    def render(self) -> str:
        """The program with the marked lines, and what they compute."""
        lines = [
            f"{MARK if i in self.marked else ' '} {line}"
            for i, line in enumerate(self.source.rstrip().splitlines())
        ]
        where = "one column per sample" if self.layout == "column" else "one row per sample"
        then = "dZ Xᵀ and Σ dZ" if self.layout == "column" else "Xᵀ dZ and Σ dZ over the rows"
        lines += [
            "",
            f"{MARK} marks the {len(self.marked)} lines the engine wrote for dZ: the chain rule through "
            + ", ".join(self.ops_marked())
            + ".",
            f"  Run, they give the derivation's closed form dZ = (P − Y)/N, {where}",
            f"  (largest difference from analytic.logits_grad: {self.difference:.1e}).",
            f"  dW and db follow as {then}.",
        ]
        return "\n".join(lines)


def simplified_listing(layout: Layout = "column", D: int = 4, N: int = 5, C: int = 3, seed: int = 0) -> str:
    """The derived program compile runs for the classifier's step, and what it was checked against."""
    step, model, _ = classifier_step(layout, D, N, C, seed)
    compiled = compile(step, simplify=True)  # the listing, whichever of the two is faster here
    compiled(model.W, model.b, model.X, model.labels)
    source = compiled.source(simplified=True).rstrip()
    if not compiled.runs_simplified():
        return source
    return "\n".join(
        [
            source,
            "",
            "The backward above is the derived formula: the engine's backward rules run on symbolic values,",
            "simplified by the named identities (tinygrad-softmax derive), then checked against the",
            "step-by-step program on these shapes (float64, 1e-12 relative). The compiled step times the",
            'two side by side once and runs the faster (compile\'s default, simplify="fastest").',
        ]
    )


def lines_computing(source: str, name: str) -> tuple[int, ...]:
    """The backward lines of ``source`` that ``name`` depends on, ``name``'s own line included (0-based).

    The backward lines are those after ``# backward`` in the function, and the
    lines above the function that run once, when the program is made (the
    starting gradient and what follows from it alone).
    """
    module = ast.parse(source)
    function = next(s for s in module.body if isinstance(s, ast.FunctionDef))
    backward_starts = next(i for i, line in enumerate(source.splitlines()) if line.strip() == "# backward")
    statements = [s for s in module.body if isinstance(s, ast.Assign)]
    statements += [s for s in function.body if isinstance(s, ast.Assign) and s.lineno - 1 > backward_starts]
    assigned: dict[str, ast.Assign] = {}
    for statement in statements:
        target = statement.targets[0]
        if isinstance(target, ast.Name):
            assigned[target.id] = statement
    if name not in assigned:
        raise KeyError(f"the program assigns no {name!r} in its backward part")
    marked: set[int] = set()
    stack = [name]
    while stack:
        statement = assigned[stack.pop()]
        if statement.lineno - 1 in marked:
            continue
        marked.add(statement.lineno - 1)
        # out=A only says where the result goes: A is not read.
        destinations = {
            id(node.value)
            for node in ast.walk(statement.value)
            if isinstance(node, ast.keyword) and node.arg == "out"
        }
        for node in ast.walk(statement.value):
            if isinstance(node, ast.Name) and node.id in assigned and id(node) not in destinations:
                stack.append(node.id)
    return tuple(sorted(marked))
