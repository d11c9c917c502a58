"""A formula written out: plain Unicode for the terminal, LaTeX for slides, and index notation.

Matrix products are written ``A · B``, products entry by entry ``A ⊙ B``, a
number times a tensor ``2·A``. A whole number in a denominator that equals a size
of the problem is written by the size's name (``/N``); the caller passes the
names, and the sizes must differ for that to be unambiguous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol


class ExprLike(Protocol):
    """What a writer reads of an expression (``expr.Expr`` is one): this module needs nothing else of
    ``expr``, whose ``repr`` is written here, so the two do not import each other."""

    @property
    def kind(self) -> str: ...
    @property
    def args(self) -> Sequence[ExprLike]: ...
    @property
    def attrs(self) -> Any: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def ndim(self) -> int: ...


ADD, MUL, UNARY, POW, ATOM = 1, 2, 3, 4, 5
_SUB_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUPER = {2: "²", 3: "³", 4: "⁴"}
_SUBSCRIPT_LETTERS = {"n": "ₙ", "h": "ₕ", "k": "ₖ", "m": "ₘ"}


@dataclass(frozen=True)
class Sizes:
    """The sizes of the problem by name (N, C, D, H) and the index letter of each."""

    names: dict[int, str] = field(default_factory=dict)  # 5 → "N"

    def name(self, n: int) -> str | None:
        return self.names.get(n)

    def letter(self, n: int) -> str:
        name = self.names.get(n)
        return name.lower() if name else "k"


def _number(value: Fraction | float, latex: bool) -> str:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return (
            f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
            if latex
            else f"{value.numerator}/{value.denominator}"
        )
    return f"{value:.6g}"


def var_name(name: str, latex: bool) -> str:
    """``W1`` as W₁ (or W_{1}); ``dL/dZ1`` as ∂L/∂Z₁ (or a LaTeX fraction)."""
    if name.startswith("dL/d"):
        inner = var_name(name[4:], latex)
        return f"\\frac{{\\partial L}}{{\\partial {inner}}}" if latex else f"∂L/∂{inner}"
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    if latex:
        stem = {"y′": "y'", "y″": "y''", "ε": "\\varepsilon"}.get(stem, stem)
        if "_" in stem:
            head, _, tail = stem.partition("_")
            stem = f"{head}_{{{tail}}}"
        return f"{stem}_{{{digits}}}" if digits else stem
    return stem + digits.translate(_SUB_DIGITS)


def _axis_symbol(letter: str, latex: bool) -> str:
    if latex:
        return f"\\sum_{{{letter}}}"
    return "Σ" + _SUBSCRIPT_LETTERS.get(letter, f"_{letter}")


class Writer:
    """Writes a formula in Unicode or in LaTeX."""

    def __init__(self, sizes: Sizes, latex: bool = False) -> None:
        self.sizes = sizes
        self.latex = latex

    def write(self, e: ExprLike) -> str:
        return self._write(e, 0)

    def _wrap(self, text: str, precedence: int, outer: int) -> str:
        if precedence >= outer:
            return text
        return f"\\left({text}\\right)" if self.latex else f"({text})"

    def _write(self, e: ExprLike, outer: int, denominator: bool = False) -> str:
        text, precedence = self._node(e, denominator)
        return self._wrap(text, precedence, outer)

    def _node(self, e: ExprLike, denominator: bool = False) -> tuple[str, int]:
        kind, latex = e.kind, self.latex
        if kind == "num":
            value = e.attrs[0]
            if denominator and isinstance(value, Fraction) and value.denominator == 1:
                name = self.sizes.name(value.numerator)
                if name:
                    return name, ATOM
            text = _number(value, latex)
            return text, (UNARY if text.startswith("-") else ATOM)
        if kind == "var":
            return var_name(e.attrs[0], latex), ATOM
        if kind in ("add", "sub"):
            a = self._write(e.args[0], ADD)
            b = self._write(e.args[1], ADD + 1)
            sign = "+" if kind == "add" else ("-" if latex else "−")
            return f"{a} {sign} {b}", ADD
        if kind == "neg":
            return ("-" if latex else "−") + self._write(e.args[0], MUL), UNARY
        if kind == "mul":
            return self._product(e), MUL
        if kind == "div":
            top, bottom = e.args
            # (1/N) A · B, (1/N) Σₙ ..., (1/N) m ⊙ (...): the number in front of a product
            outside = bottom.kind == "num" and (
                top.kind in ("matmul", "sum") or (top.kind == "mul" and _leftmost(top).kind != "num")
            )
            if latex:
                if outside:
                    return f"\\frac{{1}}{{{self._write(bottom, 0, True)}}} \\, {self._write(top, MUL)}", MUL
                return f"\\frac{{{self._write(top, 0)}}}{{{self._write(bottom, 0, True)}}}", ATOM
            down = self._write(bottom, ATOM, True)
            if outside:
                return f"(1/{down}) {self._write(top, MUL)}", MUL
            return f"{self._write(top, MUL)}/{down}", MUL
        if kind == "matmul":
            # A product entry by entry (or a sum) as a factor of a matrix product is bracketed: (w ⊙ G) · Xᵀ
            a = self._write(e.args[0], MUL + 1 if e.args[0].kind in ("sum", "mul") else MUL)
            b = self._write(e.args[1], MUL + 1)
            return (f"{a} \\, {b}" if latex else f"{a} · {b}"), MUL
        if kind == "pow":
            p = e.attrs[0]
            base = self._write(e.args[0], POW + 1)
            if latex:
                return f"{base}^{{{_number(p, True)}}}", POW
            return base + (_SUPER.get(int(p), f"^{_number(p, False)}") if p == int(p) else f"^{p}"), POW
        if kind == "transpose":
            base = self._write(e.args[0], ATOM)
            mark = "^{\\top}" if latex else "ᵀ"
            return (base + mark if e.ndim == 2 else f"transpose({base}, {e.attrs[0]})"), ATOM
        if kind == "sum":
            axes = e.attrs[0]
            operand = e.args[0]
            letters = "".join(self.sizes.letter(operand.shape[a]) for a in axes)
            body = self._write(operand, POW)
            return f"{_axis_symbol(letters, latex)} {body}", MUL
        if kind == "expand":
            return self._node(e.args[0], denominator)
        return self._call(e), ATOM

    def _product(self, e: ExprLike) -> str:
        a, b = e.args
        # A sum on the left is bracketed: Σ_c a ⊙ m would read as Σ_c (a ⊙ m).
        left = self._write(a, MUL + 1 if a.kind == "sum" else MUL)
        right = self._write(b, MUL + 1)
        scalar = a.kind == "num" or b.kind == "num" or a.shape == () or b.shape == ()
        if self.latex:
            return f"{left} \\, {right}" if scalar else f"{left} \\odot {right}"
        return f"{left}·{right}" if scalar else f"{left} ⊙ {right}"

    def _call(self, e: ExprLike) -> str:
        latex = self.latex
        kind = e.kind
        args = [self._write(a, 0) for a in e.args]

        def fn(name: str) -> str:
            return f"\\mathrm{{{name}}}" if latex else name

        def paren(text: str) -> str:
            return f"\\left({text}\\right)" if latex else f"({text})"

        if kind == "exp":
            return ("\\exp" if latex else "exp") + paren(args[0])
        if kind == "log":
            return ("\\log" if latex else "log") + paren(args[0])
        if kind in ("softmax", "onehot", "relu"):
            return fn(kind) + paren(args[0])
        if kind in ("gt", "eq"):
            sign = ">" if kind == "gt" else "="
            one = "\\mathbf{1}" if latex else "1"
            left, right = ("\\left[", "\\right]") if latex else ("[", "]")
            return f"{one}{left}{args[0]} {sign} {args[1]}{right}"
        if kind == "max":
            letters = "".join(self.sizes.letter(e.args[0].shape[a]) for a in e.attrs[0])
            return (f"\\max_{{{letters}}}" if latex else f"max_{letters}") + paren(args[0])
        if kind == "gather":
            return fn("gather") + paren(f"{args[0]}, y")
        if kind == "scatter":
            return fn("scatter\\_add" if latex else "scatter_add") + paren(f"{args[0]}, y")
        if kind == "reshape":
            return fn("reshape") + paren(f"{args[0]}, {e.attrs[0]}")
        return fn(kind) + paren(", ".join(args))


def _leftmost(e: ExprLike) -> ExprLike:
    while e.kind == "mul":
        e = e.args[0]
    return e


def unicode(e: ExprLike, sizes: Sizes | None = None) -> str:
    return Writer(sizes or Sizes()).write(e)


def latex(e: ExprLike, sizes: Sizes | None = None) -> str:
    return Writer(sizes or Sizes(), latex=True).write(e)


# ---------------------------------------------------------------- index notation


class IndexWriter:
    """One entry of a formula: ``(1/N) Σₙ (p_cn − y_cn) x_dn``; matrix products become sums over an index."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.used: set[str] = set()

    def fresh(self, n: int) -> str:
        letter = self.sizes.letter(n)
        while letter in self.used:
            letter += "′"
        self.used.add(letter)
        return letter

    def entry(self, e: ExprLike, letters: tuple[str, ...]) -> str:
        self.used |= set(letters)
        return self._entry(e, letters, 0)

    def _entry(self, e: ExprLike, letters: tuple[str, ...], outer: int) -> str:
        text, precedence = self._node(e, letters)
        return text if precedence >= outer else f"({text})"

    def _mine(self, e: ExprLike, letters: tuple[str, ...]) -> tuple[str, ...]:
        """The letters of the axes ``e`` has (broadcasting: size-1 and missing leading axes drop out)."""
        pad = len(letters) - e.ndim
        return tuple(letter for letter, n in zip(letters[pad:], e.shape) if n != 1)

    def _node(self, e: ExprLike, letters: tuple[str, ...]) -> tuple[str, int]:
        kind = e.kind
        mine = self._mine(e, letters) if kind not in ("matmul", "transpose", "sum") else letters
        if kind == "num":
            value = e.attrs[0]
            return _number(value, False), ATOM
        if kind == "var":
            name = e.attrs[0]
            stem = var_name(name, False)
            base = f"({stem})" if name.startswith("dL/d") else stem.lower()
            return (base + ("_" + "".join(mine) if mine else "")), ATOM
        if kind in ("softmax", "onehot"):
            symbol = "p" if kind == "softmax" else var_name(e.args[0].attrs[0], False)
            return symbol + ("_" + "".join(mine) if mine else ""), ATOM
        if kind in ("add", "sub"):
            sign = "+" if kind == "add" else "−"
            return (
                f"{self._entry(e.args[0], letters, ADD)} {sign} {self._entry(e.args[1], letters, ADD + 1)}",
                ADD,
            )
        if kind == "neg":
            return "−" + self._entry(e.args[0], letters, MUL), UNARY
        if kind == "mul":
            return f"{self._entry(e.args[0], letters, MUL)} {self._entry(e.args[1], letters, MUL + 1)}", MUL
        if kind == "div":
            top, bottom = e.args
            down = (
                Writer(self.sizes).write(bottom)
                if bottom.kind != "num"
                else Writer(self.sizes)._write(bottom, ATOM, True)
            )
            if bottom.kind == "num":
                return f"(1/{down}) {self._entry(top, letters, MUL)}", MUL
            return f"{self._entry(top, letters, MUL)}/{self._entry(bottom, letters, ATOM)}", MUL
        if kind == "transpose" and e.ndim == 2:
            return self._node(e.args[0], letters[::-1])
        if kind == "matmul":
            a, b = e.args
            k = self.fresh(a.shape[1])
            left = self._entry(a, (letters[0], k), MUL)
            right = self._entry(b, (k, letters[1]), MUL + 1)
            return f"{_axis_symbol(k, False)} {left} {right}", MUL
        if kind == "sum":
            axes = e.attrs[0]
            operand = e.args[0]
            kept = iter(letters[len(letters) - e.ndim :] if e.ndim else ())
            inner: list[str] = []
            summed: list[str] = []
            keepdims = e.attrs[1]
            for i, n in enumerate(operand.shape):
                if i in axes:
                    letter = self.fresh(n)
                    summed.append(letter)
                    inner.append(letter)
                    if keepdims:
                        next(kept, None)
                else:
                    inner.append(next(kept))
            body = self._entry(operand, tuple(inner), POW)
            return f"{_axis_symbol(''.join(summed), False)} {body}", MUL
        if kind == "expand":
            return self._node(e.args[0], letters)
        if kind == "gt":
            return f"1[{self._entry(e.args[0], letters, 0)} > {self._entry(e.args[1], letters, 0)}]", ATOM
        return Writer(self.sizes).write(e) + ("_" + "".join(mine) if mine else ""), ATOM


def index_form(e: ExprLike, letters: tuple[str, ...], sizes: Sizes) -> str:
    return IndexWriter(sizes).entry(e, letters)
