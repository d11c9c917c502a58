"""``exercise sheet``: one pen-and-paper sheet per student, with that student's own small numbers.

Each sheet gives the linear softmax classifier in the column layout with
N = 2 samples, C = 3 classes and D = 2 features: X, W, b, the labels y, and
P = softmax(Z) (exp by hand is no one's lesson). The student derives
dZ = (P − Y)/N, dW = dZ Xᵀ and db = Σ_i dZ[:, i] by hand. The answer key is
the engine's: ``backward()`` on the student's numbers. The numbers come from
the student's id (SHA-256), so a sheet is the same whenever it is written again.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import functional as F
from ...tensor import Tensor
from .. import extras, outputs

__all__ = ["Numbers", "numbers_for", "read_roster", "write_sheets"]

N, C, D = 2, 3, 2


@dataclass
class Numbers:
    """One student's numbers and the engine's answers."""

    student: str
    name: str
    X: np.ndarray  # D×N
    W: np.ndarray  # C×D
    b: np.ndarray  # C×1
    y: np.ndarray  # (N,)
    P: np.ndarray  # C×N
    dZ: np.ndarray
    dW: np.ndarray
    db: np.ndarray
    loss: float


def numbers_for(student: str, name: str = "") -> Numbers:
    """The student's numbers, drawn from a random generator seeded by the id's SHA-256."""
    seed = int.from_bytes(hashlib.sha256(student.encode("utf-8")).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(D, N)).astype(float)
    W = rng.integers(-2, 3, size=(C, D)) / 2
    b = rng.integers(-1, 2, size=(C, 1)) / 2
    y = rng.integers(0, C, size=N)
    Wt, bt, Xt = Tensor(W, requires_grad=True), Tensor(b, requires_grad=True), Tensor(X)
    Z = Wt @ Xt + bt
    loss = F.cross_entropy(Z, y, axis=0)
    loss.backward()  # the answer key is the engine's
    assert Z.grad is not None and Wt.grad is not None and bt.grad is not None
    P = F.softmax(Tensor(Z.data), axis=0).data
    return Numbers(student, name, X, W, b, y, P, Z.grad, Wt.grad, bt.grad, float(loss.data))


def read_roster(path: str | Path) -> list[tuple[str, str]]:
    """``(id, name)`` per student of a CSV roster with a column ``id`` (and optionally ``name``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"exercise sheet: the roster {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = list(csv.DictReader(file))
    columns = {c.strip().lower(): c for c in (rows[0].keys() if rows else [])}
    key = next((columns[c] for c in ("id", "student_id", "sid", "email") if c in columns), None)
    if key is None:
        raise ValueError(
            f"exercise sheet: {path} needs a column 'id' (found: {', '.join(columns) or 'none'})"
        )
    name = columns.get("name")
    students = [(row[key].strip(), (row.get(name) or "").strip() if name else "") for row in rows]
    students = [s for s in students if s[0]]
    if not students:
        raise ValueError(f"exercise sheet: {path} lists no student")
    return students


def _matrix(a: np.ndarray, digits: int = 3) -> list[str]:
    """Rows of a matrix, aligned, ``[ 0.5  -1   ]``."""
    cells = [
        [f"{v:.{digits}f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}" for v in row] for row in a
    ]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]


def _block(title: str, a: np.ndarray, digits: int = 3) -> list[str]:
    return [f"{title} ({a.shape[0]}×{a.shape[1]}):", *("    " + line for line in _matrix(a, digits)), ""]


def sheet_lines(n: Numbers) -> list[str]:
    who = f"{n.name} ({n.student})" if n.name else n.student
    return [
        f"Softmax cross-entropy by hand — {who}",
        "",
        "The linear softmax classifier, column layout:",
        f"N = {N} samples, C = {C} classes, D = {D} features.",
        "Z = W X + b,  P = softmax(Z) over each column,  L = −(1/N) Σ_i log P[y_i, i].",
        "",
        *_block("X", n.X),
        *_block("W", n.W),
        *_block("b", n.b),
        f"labels y = {', '.join(map(str, n.y))}   (sample i has class y_i, counted from 0)",
        "",
        *_block("P = softmax(Z), given to 3 decimals", n.P),
        "1. Compute Z = W X + b and check that P is its softmax.",
        "2. Write Y (one-hot) and dZ = ∂L/∂Z = (P − Y)/N.",
        "3. dW = ∂L/∂W = dZ Xᵀ.",
        "4. db = ∂L/∂b = Σ_i dZ[:, i] (why a sum? b was broadcast across the N columns).",
    ]


def key_lines(n: Numbers) -> list[str]:
    who = f"{n.name} ({n.student})" if n.name else n.student
    Y = np.zeros_like(n.P)
    Y[n.y, np.arange(N)] = 1
    return [
        f"Answer key — {who} (computed by the engine's backward())",
        "",
        *_block("Z = W X + b", n.W @ n.X + n.b),
        *_block("Y", Y),
        *_block("dZ = (P − Y)/N", n.dZ),
        *_block("dW = dZ Xᵀ", n.dW),
        *_block("db = Σ_i dZ[:, i]", n.db),
        f"L = {n.loss:.4f}",
    ]


def _file_stem(student: str) -> str:
    return re.sub(r"[^\w.-]+", "_", student).strip("._") or "student"


def _pdf(path: Path, lines: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure = plt.figure(figsize=(8.27, 11.69))  # A4
    figure.text(
        0.08, 0.95, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=10.5, linespacing=1.35
    )
    with outputs.atomic_path(path) as temporary:
        figure.savefig(temporary, format="pdf")
    plt.close(figure)


def write_sheets(roster: str | Path, folder: str | Path, markdown: bool = False) -> list[Path]:
    """One sheet and one answer key per student of ``roster``: PDF with matplotlib, else Markdown."""
    students = read_roster(roster)
    folder = Path(folder)
    outputs.check_folder(folder, "the sheets' folder")
    stems = [_file_stem(s) for s, _ in students]
    if len(set(stems)) != len(stems):
        raise ValueError("exercise sheet: two students in the roster have the same id")
    pdf = not markdown and extras.have("matplotlib")
    written = []
    for (student, name), stem in zip(students, stems):
        numbers = numbers_for(student, name)
        for suffix, lines in (("", sheet_lines(numbers)), ("-key", key_lines(numbers))):
            if pdf:
                path = folder / f"{stem}{suffix}.pdf"
                _pdf(path, lines)
            else:
                path = outputs.write_text(
                    folder / f"{stem}{suffix}.md", "```\n" + "\n".join(lines) + "\n```\n"
                )
            written.append(path)
    return written
