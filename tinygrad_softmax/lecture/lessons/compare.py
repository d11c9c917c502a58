"""Three witnesses for one gradient: autograd, the closed form, and finite differences.

For the linear softmax classifier (``lecture.build_classifier``, fixed seed),
:func:`compare` computes dZ, dW, db (and dX when asked) three ways:

- **autograd**: the engine's ``loss.backward()``, which never saw ``p − y``;
- **closed form**: ``analytic`` — dZ = (P − Y)/N, dW = dZ Xᵀ, db = Σ_i dZ[:, i], dX = Wᵀ dZ;
- **numerical**: central differences of the engine's forward loss, one entry at a time,

and reports, for every pair, the largest absolute difference and the relative
error max|a − b| / max(|a| + |b|), the worst element, and a verdict by stated
bands. Beside the table stand the lines a lecturer points at: the initial loss
is about ln C for small weights, each sample's dZ sums to 0 over the classes,
and db equals the sum of dZ over the samples.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import analytic
from ... import functional as F
from ...analytic import CLASS_AXIS, Layout
from ...gradcheck import numerical_gradient, rel_error
from ...tensor import Tensor, no_grad
from ..numbers import number
from ..training.classifier import build_classifier, logits
from . import bugs

__all__ = ["Bands", "BANDS", "EPS", "PAIRS", "PairDiff", "Row", "Sanity", "Comparison", "compare"]

DTYPES = {"float64": np.float64, "float32": np.float32}
WIDTH = 100  # columns of the default terminal table
PAIRS = (("autograd", "closed form"), ("autograd", "numerical"), ("closed form", "numerical"))
FORMULAS = {
    "column": {"dZ": "(P − Y)/N", "dW": "dZ Xᵀ", "db": "Σ_i dZ[:, i]", "dX": "Wᵀ dZ"},
    "row": {"dZ": "(P − Y)/N", "dW": "Xᵀ dZ", "db": "Σ_i dZ[i, :]", "dX": "dZ Wᵀ"},
}


@dataclass(frozen=True)
class Bands:
    """Relative error below ``ok`` is a pass; from ``fail`` up the gradient is wrong; between, suspicious."""

    ok: float
    fail: float

    def verdict(self, rel: float) -> str:
        if rel < self.ok:
            return "ok"
        return "suspicious" if rel < self.fail else "WRONG"


# float64: CS231n's bands (below 1e-7 happy, above 1e-4 wrong). float32 carries ~7 digits, and
# central differences in float32 lose half of them, so its bands are looser by that much.
BANDS = {"float64": Bands(ok=1e-7, fail=1e-4), "float32": Bands(ok=1e-3, fail=1e-2)}
# Step of the central differences: about the cube root of each dtype's machine epsilon.
EPS = {"float64": 1e-6, "float32": 1e-2}
TOLERANCE = {"float64": 1e-12, "float32": 1e-6}  # for the sanity lines' "equals 0" and "equals Σ dZ"


@dataclass(frozen=True)
class PairDiff:
    """How far apart two of the witnesses are for one tensor."""

    max_abs: float
    rel: float


@dataclass(frozen=True)
class Row:
    """One gradient (dZ, dW, db or dX) computed three ways."""

    name: str
    formula: str
    shape: tuple[int, ...]
    dtype: str
    diffs: tuple[PairDiff, ...]  # one per pair, in the order of PAIRS
    worst_index: tuple[int, ...]  # where autograd is furthest from the other two
    worst_values: tuple[float, float, float]  # autograd, closed form, numerical there
    verdict: str


@dataclass(frozen=True)
class Sanity:
    """A check a lecturer can point at, with the numbers that decide it."""

    name: str
    detail: str
    passed: bool


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: the table rows, the sanity lines, and how to print them."""

    layout: str
    dtype: str
    bug: str | None
    shapes: dict[str, int]  # D, N, C
    seed: int
    eps: float
    bands: Bands
    loss: float
    rows: tuple[Row, ...]
    sanity: tuple[Sanity, ...]

    @property
    def passed(self) -> bool:
        return all(row.verdict != "WRONG" for row in self.rows) and all(s.passed for s in self.sanity)

    def failures(self) -> list[str]:
        """Names of the rows judged WRONG and of the sanity lines that failed."""
        return [r.name for r in self.rows if r.verdict == "WRONG"] + [
            s.name for s in self.sanity if not s.passed
        ]

    # ------------------------------------------------------------ renderers

    def title(self) -> str:
        shapes = ", ".join(f"{k}={v}" for k, v in self.shapes.items())
        bug = f", injected bug: {self.bug}" if self.bug else ""
        return f"Gradient check: {self.layout} layout, {self.dtype} ({shapes}, seed {self.seed}{bug})"

    def conclusion(self) -> str:
        """The one line a student should take away."""
        if self.passed:
            return (
                "PASS: autograd = closed form = finite differences for every gradient, "
                "and every sanity line holds."
            )
        wrong = [r.name for r in self.rows if r.verdict == "WRONG"]
        broken = [s.name for s in self.sanity if not s.passed]
        parts = [f"wrong gradients: {', '.join(wrong)}"] if wrong else []
        parts += [f"failed sanity lines: {'; '.join(broken)}"] if broken else []
        text = "FAIL: " + "; ".join(parts)
        if self.bug:
            bug = bugs.get(self.bug)
            text += f" — the check caught the injected bug '{bug.name}': {bug.summary}"
        return text + "."

    def _bands_line(self) -> str:
        return (
            f"relative error = max|a − b| / max(|a| + |b|); verdict bands for {self.dtype}: "
            f"ok < {self.bands.ok:.0e} ≤ suspicious < {self.bands.fail:.0e} ≤ WRONG; "
            f"numerical: central differences with eps = {self.eps:g}"
        )

    def _worst_line(self, row: Row) -> str:
        index = ", ".join(map(str, row.worst_index))
        a, c, n = row.worst_values
        return (
            f"{row.name}[{index}]: autograd {number(a, '.8g')}, closed form {number(c, '.8g')}, "
            f"numerical {number(n, '.8g')}"
        )

    def to_text(self, wide: bool = False) -> str:
        """An aligned table for the terminal: 100 columns at most, or every column with ``wide=True``.

        The narrow table shows the relative error of each pair (the number the
        verdict reads); the wide one adds max|Δ| and the dtype.
        """
        if wide:
            head1 = ["", "", ""] + [f"{a} vs {b}" for a, b in PAIRS] + ["", ""]
            head2 = ["tensor", "shape", "dtype"] + ["max|Δ|  rel err"] * 3 + ["worst", "verdict"]
        else:
            head1 = ["", ""] + [f"{a} vs" for a, _ in PAIRS] + ["", ""]
            head2 = ["tensor", "shape"] + [b for _, b in PAIRS] + ["worst", "verdict"]
        left = 3 if wide else 2  # the columns read as words, aligned left
        body = [
            [
                f"{row.name} = {row.formula}",
                "×".join(map(str, row.shape)),
                *([row.dtype] if wide else []),
                *(f"{_num(d.max_abs):>8} {_num(d.rel):>8}" if wide else _num(d.rel) for d in row.diffs),
                "[" + ", ".join(map(str, row.worst_index)) + "]",
                row.verdict,
            ]
            for row in self.rows
        ]
        table = [head1, head2, *body]
        widths = [max(len(line[i]) for line in table) for i in range(len(head2))]
        lines = [self.title(), ""]
        if not wide:
            lines += ["relative error of each pair of witnesses:"]
        for k, line in enumerate(table):
            lines.append(
                "  ".join(
                    cell.ljust(w) if i < left else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(line, widths))
                ).rstrip()
            )
            if k == 1:
                lines.append("  ".join("-" * w for w in widths))
        lines += ["", self._bands_line(), "worst elements:"]
        lines += [f"  {self._worst_line(row)}" for row in self.rows]
        lines += ["", "sanity:"]
        lines += [f"  [{'ok' if s.passed else 'FAIL'}] {s.name}: {s.detail}" for s in self.sanity]
        lines += ["", self.conclusion()]
        if not wide:
            lines = [
                wrapped
                for line in lines
                for wrapped in (
                    textwrap.wrap(line, WIDTH, subsequent_indent=" " * (len(line) - len(line.lstrip()) + 5))
                    or [""]
                )
            ]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """The same content as a Markdown section."""
        pair_heads = " | ".join(f"{a} vs {b}: max\\|Δ\\| | rel. error" for a, b in PAIRS)
        lines = [
            f"### {self.title()}",
            "",
            f"Loss (autograd forward): {self.loss:.10g}.",
            "",
            f"| gradient | shape | dtype | {pair_heads} | worst element (autograd / closed form / numerical) "
            "| verdict |",
            "|---|---|---|" + "---:|" * 6 + "---|---|",
        ]
        for row in self.rows:
            index = ", ".join(map(str, row.worst_index))
            values = " / ".join(number(v, ".6g") for v in row.worst_values)
            cells = " | ".join(f"{_num(d.max_abs)} | {_num(d.rel)}" for d in row.diffs)
            verdict = row.verdict if row.verdict == "ok" else f"**{row.verdict}**"
            lines.append(
                f"| `{row.name}` = {row.formula} | {'×'.join(map(str, row.shape))} | {row.dtype} | {cells} "
                f"| [{index}]: {values} | {verdict} |"
            )
        lines += ["", self._bands_line().replace("|", "\\|") + ".", "", "Sanity lines:", ""]
        lines += [f"- {'✅' if s.passed else '❌'} {s.name}: {s.detail}" for s in self.sanity]
        lines += ["", f"**{self.conclusion()}**", ""]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # Jupyter shows the Markdown table
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: every number the table shows, unrounded."""
        return {
            "layout": self.layout,
            "dtype": self.dtype,
            "bug": self.bug,
            "shapes": self.shapes,
            "seed": self.seed,
            "eps": self.eps,
            "bands": {"ok": self.bands.ok, "fail": self.bands.fail},
            "loss": self.loss,
            "rows": [
                {
                    "name": row.name,
                    "formula": row.formula,
                    "shape": list(row.shape),
                    "dtype": row.dtype,
                    "pairs": {
                        f"{a} vs {b}": {"max_abs": d.max_abs, "rel": d.rel}
                        for (a, b), d in zip(PAIRS, row.diffs)
                    },
                    "worst": {
                        "index": list(row.worst_index),
                        **dict(zip(("autograd", "closed form", "numerical"), row.worst_values)),
                    },
                    "verdict": row.verdict,
                }
                for row in self.rows
            ],
            "sanity": [{"name": s.name, "detail": s.detail, "passed": s.passed} for s in self.sanity],
            "passed": self.passed,
            "conclusion": self.conclusion(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _num(x: float) -> str:
    return "0" if x == 0 else number(x, ".1e")


# ---------------------------------------------------------------- the three witnesses


def _forward_loss(w: np.ndarray, b: np.ndarray, x: np.ndarray, labels: np.ndarray, layout: Layout) -> float:
    """The engine's loss for plain arrays, recording nothing: what finite differences perturb."""
    with no_grad():
        z = logits(Tensor(w), Tensor(b), Tensor(x), layout)
        return F.cross_entropy(z, labels, axis=CLASS_AXIS[layout]).item()


def _loss_of_logits(z: np.ndarray, labels: np.ndarray, layout: Layout) -> float:
    with no_grad():
        return F.cross_entropy(Tensor(z), labels, axis=CLASS_AXIS[layout]).item()


def _row(
    name: str, formula: str, auto: np.ndarray, closed: np.ndarray, numeric: np.ndarray, bands: Bands
) -> Row:
    witnesses = {"autograd": auto, "closed form": closed, "numerical": numeric}
    diffs = tuple(
        PairDiff(
            float(np.max(np.abs(witnesses[a] - witnesses[b]), initial=0.0)),
            rel_error(witnesses[a], witnesses[b]),
        )
        for a, b in PAIRS
    )
    # The element where autograd strays furthest from either witness (first one on ties).
    stray = np.maximum(np.abs(auto - closed), np.abs(auto - numeric))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(stray)), stray.shape))
    values = (float(auto[worst]), float(closed[worst]), float(numeric[worst]))
    verdict = bands.verdict(max(d.rel for d in diffs))
    return Row(name, formula, tuple(auto.shape), str(auto.dtype), diffs, worst, values, verdict)


def compare(
    layout: Layout = "column",
    dtype: str = "float64",
    with_dx: bool = False,
    bug: str | None = None,
    seed: int = 0,
    D: int = 4,
    N: int = 5,
    C: int = 3,
    labels: Sequence[int] | np.ndarray | None = None,
) -> Comparison:
    """Autograd vs closed form vs finite differences for the linear softmax classifier.

    ``bug`` names one of :data:`bugs.BUGS`: the graph is then built with that
    wrong backward rule, to show the check catching it. ``labels`` replace the
    classes drawn from ``seed`` (``build_classifier``).
    """
    if dtype not in DTYPES:
        raise ValueError(f"compare: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if bug is not None:
        bugs.get(bug)  # an unknown name fails here, before any work
    axis = CLASS_AXIS[layout]
    data = build_classifier(
        layout, D=D, N=N, C=C, seed=seed, dtype=DTYPES[dtype], backward=False, labels=labels
    )
    w, b, x, labels = data.W.data, data.b.data, data.X.data, data.labels

    # Autograd: fresh leaves, so X can require grad for dX.
    W = Tensor(w.copy(), requires_grad=True, name="W")
    B = Tensor(b.copy(), requires_grad=True, name="b")
    X = Tensor(x.copy(), requires_grad=with_dx, name="X")
    if bug is None:
        Z = logits(W, B, X, layout)
        loss = F.cross_entropy(Z, labels, axis=axis)
    else:
        Z, loss = bugs.classifier_loss(W, B, X, labels, layout, bug)
    loss.backward()
    auto = {"dZ": Z.grad, "dW": W.grad, "db": B.grad, "dX": X.grad}

    # Closed form: the closed-form formulas in NumPy, never touching the engine.
    ref = analytic.linear_classifier(w, b, x, labels, layout)
    closed = {"dZ": ref.dZ, "dW": ref.dW, "db": ref.db, "dX": analytic.inputs_grad(ref.dZ, w, layout)}

    # Numerical: central differences of the engine's forward loss, on copies of the arrays.
    eps = EPS[dtype]
    w_, b_, x_, z_ = w.copy(), b.copy(), x.copy(), Z.data.copy()
    numeric = {
        "dZ": numerical_gradient(lambda z: _loss_of_logits(z, labels, layout), z_, eps),
        "dW": numerical_gradient(lambda v: _forward_loss(v, b_, x_, labels, layout), w_, eps),
        "db": numerical_gradient(lambda v: _forward_loss(w_, v, x_, labels, layout), b_, eps),
    }
    if with_dx:
        numeric["dX"] = numerical_gradient(lambda v: _forward_loss(w_, b_, v, labels, layout), x_, eps)

    bands = BANDS[dtype]
    rows = []
    for name in ("dZ", "dW", "db", "dX") if with_dx else ("dZ", "dW", "db"):
        grad = auto[name]
        assert grad is not None, f"compare: autograd left {name} empty"
        rows.append(_row(name, FORMULAS[layout][name], grad, closed[name], numeric[name], bands))

    return Comparison(
        layout=layout,
        dtype=dtype,
        bug=bug,
        shapes={"D": D, "N": N, "C": C},
        seed=seed,
        eps=eps,
        bands=bands,
        loss=loss.item(),
        rows=tuple(rows),
        sanity=_sanity(w, b, x, labels, layout, auto, dtype, C),
    )


def _sanity(
    w: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    layout: Layout,
    auto: dict[str, np.ndarray | None],
    dtype: str,
    C: int,
) -> tuple[Sanity, ...]:
    """The three lines a lecturer points at, each judged on autograd's own numbers."""
    axis = CLASS_AXIS[layout]
    dz, db = auto["dZ"], auto["db"]
    assert dz is not None and db is not None
    tol = TOLERANCE[dtype]

    small = _forward_loss(1e-3 * w, np.zeros_like(b), x, labels, layout)
    ln_c = float(np.log(C))
    initial = Sanity(
        "initial loss ≈ ln C",
        f"with W scaled by 1e-3 and b = 0, L = {small:.6f} vs ln {C} = {ln_c:.6f} "
        f"(|Δ| = {abs(small - ln_c):.1e}, allowed 1% of ln C): every class starts at p = 1/C",
        abs(small - ln_c) < 0.01 * ln_c,
    )

    column_sums = dz.sum(axis=axis)
    sums = Sanity(
        "each sample's dZ sums to 0",
        f"max over samples of |Σ_classes dZ| = {_num(float(np.abs(column_sums).max()))} (allowed {tol:.0e}): "
        "Σ_c (p_c − y_c) = 1 − 1",
        float(np.abs(column_sums).max()) < tol,
    )

    summed = dz.sum(axis=1 - axis).reshape(db.shape)
    gap = float(np.abs(db - summed).max())
    bias = Sanity(
        "db = Σ over samples of dZ",
        f"max |b.grad − Σ_samples Z.grad| = {_num(gap)} (allowed {tol:.0e}): the adjoint of broadcasting b",
        gap < tol,
    )
    return initial, sums, bias
