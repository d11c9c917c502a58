"""Named algebraic identities that turn what the backward rules computed into a formula a lecturer writes.

The rules' output is brought to a normal form, a sum of terms, each a number
times a product of powers of *atoms* (a leaf, an ``exp``, a sum over an axis, a
matrix product, ...). Collecting like terms is itself an identity
(``x − x = 0``, ``u/N + v/N = (u + v)/N``); the others are in :data:`IDENTITIES`
and each one is applied by one function below. Every identity holds for all
values (two are facts about a constant's data, checked on the data), so a
formula that comes out is equal to what the rules computed; the caller checks
that numerically as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .expr import Expr, Number, Picks, evaluate, matmul, num, onehot, softmax, var

# name → the identity, as the report prints it
IDENTITIES: dict[str, str] = {
    "like terms": "x − x = 0 and u/N + v/N = (u + v)/N (terms with the same factors are collected)",
    "scatter-add at the labels": "scatter-adding v at the label positions, one per line, = onehot(y) ⊙ v",
    "one-hot sums to 1": "Σ_c onehot(y) = 1 along the class axis",
    "probabilities sum to 1": "Σ_c softmax(a) = 1, and Σ_c q = 1 for a constant q of distributions",
    "constant out of a sum": "Σ_k (c ⊙ x) = c ⊙ Σ_k x when c is constant along k",
    "sum over a broadcast axis": "Σ_k c = n_k · c when c is constant along the n_k entries of axis k",
    "softmax": "exp(a − m) / Σ_k exp(a − m) = softmax(a) for any m constant along k",
    "numbers out of a product": "(c A) B = c (A B) and (c A)ᵀ = c Aᵀ for a number c",
    "transpose of a transpose": "(Aᵀ)ᵀ = A",
    "transpose of a product": "(A B)ᵀ = Bᵀ Aᵀ",
    "a broadcast copy": "expand(x) = x where it meets other entries elementwise",
    "one sum of several": "a·Σ_k u + b·Σ_k v = Σ_k (a·u + b·v) for numbers a, b",
}

Factors = tuple[tuple[Expr, int], ...]  # atoms and their powers, sorted by the atom's key
Poly = dict[tuple[Any, ...], tuple[Number, Factors]]  # Σ coefficient · Π atom^power


def _order(atom: Expr) -> str:
    return repr(atom.key)


def _mono_key(factors: Factors) -> tuple[Any, ...]:
    return tuple((a.key, p) for a, p in factors)


def _product(f: Factors, g: Factors) -> Factors:
    powers: dict[Any, list[Any]] = {}
    for atom, p in (*f, *g):
        entry = powers.setdefault(atom.key, [atom, 0])
        entry[1] += p
    kept = [(atom, p) for atom, p in powers.values() if p != 0]
    return tuple(sorted(kept, key=lambda ap: _order(ap[0])))


def _add_term(poly: Poly, coef: Number, factors: Factors) -> None:
    key = _mono_key(factors)
    if key in poly:
        total = poly[key][0] + coef
        if total == 0:
            del poly[key]
        else:
            poly[key] = (total, factors)
    elif coef != 0:
        poly[key] = (coef, factors)


def _constant_along(shape: tuple[int, ...], ndim: int, axes: tuple[int, ...]) -> bool:
    """A value of ``shape``, broadcast against ``ndim`` axes, is the same along every one of ``axes``."""
    padded = (1,) * (ndim - len(shape)) + tuple(shape)
    return all(padded[a] == 1 for a in axes)


@dataclass
class Simplifier:
    """One simplification run: the identities used, and the names given to label vectors."""

    used: list[str] = field(default_factory=list)
    labels: dict[tuple[Any, ...], Expr] = field(default_factory=dict)
    label_names: tuple[str, ...] = ("y", "y′", "y″")
    # by id, each entry keeping its expression alive so that no other expression can take its id
    _memo: dict[int, tuple[Expr, Poly]] = field(default_factory=dict)

    def note(self, name: str) -> None:
        if name not in self.used:
            self.used.append(name)

    # ------------------------------------------------------------ the entry point

    def simplify(self, e: Expr) -> Expr:
        """``e`` in normal form with softmax recognised, then written with common factors taken out."""
        poly = self.norm(e)
        poly = self._recognise_softmax(poly)
        return self.rebuild(poly, factor=True)

    # ------------------------------------------------------------ normal form

    def norm(self, e: Expr) -> Poly:
        found = self._memo.get(id(e))
        if found is None:
            found = (e, self._norm(e))
            self._memo[id(e)] = found
        return found[1]

    def _norm(self, e: Expr) -> Poly:
        kind = e.kind
        if kind == "num":
            return {(): (e.attrs[0], ())} if e.attrs[0] != 0 else {}
        if kind in ("add", "sub"):
            out = dict(self.norm(e.args[0]))
            before = len(out) + len(self.norm(e.args[1]))
            sign = 1 if kind == "add" else -1
            for coef, factors in self.norm(e.args[1]).values():
                _add_term(out, sign * coef, factors)
            if len(out) < before:
                self.note("like terms")
            return out
        if kind == "neg":
            return {k: (-c, f) for k, (c, f) in self.norm(e.args[0]).items()}
        if kind == "mul":
            return self._times(self.norm(e.args[0]), self.norm(e.args[1]))
        if kind == "div":
            return self._times(self.norm(e.args[0]), self._inverse(e.args[1]))
        if kind == "pow":
            return self._power(e)
        if kind == "expand":
            self.note("a broadcast copy")
            return self.norm(e.args[0])
        if kind == "sum":
            return self._sum(e)
        if kind == "scatter":
            return self._scatter(e)
        return self._atom_poly(self.atom(e))

    @staticmethod
    def _atom_poly(atom: Expr, power: int = 1) -> Poly:
        if atom.kind == "num":
            value = atom.attrs[0]
            return {(): (value**power, ())} if value != 0 else {}
        return {_mono_key(((atom, power),)): (Fraction(1), ((atom, power),))}

    def _times(self, a: Poly, b: Poly) -> Poly:
        out: Poly = {}
        terms = 0
        for ca, fa in a.values():
            for cb, fb in b.values():
                _add_term(out, ca * cb, _product(fa, fb))
                terms += 1
        if len(out) < terms:
            self.note("like terms")
        return out

    def _inverse(self, e: Expr) -> Poly:
        poly = self.norm(e)
        if len(poly) == 1:
            ((coef, factors),) = poly.values()
            inverse = 1 / coef if isinstance(coef, Fraction) else 1.0 / coef
            return {
                _mono_key(tuple((a, -p) for a, p in factors)): (inverse, tuple((a, -p) for a, p in factors))
            }
        return self._atom_poly(self.rebuild(poly), -1)

    def _power(self, e: Expr) -> Poly:
        p = e.attrs[0]
        base = self.norm(e.args[0])
        if isinstance(p, Fraction) and p.denominator == 1:
            n = int(p)
            if len(base) == 1:
                ((coef, factors),) = base.values()
                new = tuple((a, q * n) for a, q in factors)
                return {_mono_key(new): (coef**n, new)}
            if 0 < n <= 4:
                out: Poly = {(): (Fraction(1), ())}
                for _ in range(n):
                    out = self._times(out, base)
                return out
            if n < 0:
                return self._atom_poly(self.rebuild(base), n)
        return self._atom_poly(Expr("pow", (self.rebuild(base),), (p,), e.shape))

    # ------------------------------------------------------------ sums over axes

    def _sum(self, e: Expr) -> Poly:
        axes, keepdims = e.attrs
        operand = e.args[0]
        ndim = operand.ndim
        if not keepdims and not (axes == tuple(range(len(axes))) or len(axes) == ndim):
            # Dropping an inner axis moves the others: keep the sum as it is (with keepdims), then reshape.
            kept = Expr(
                "sum",
                (operand,),
                (axes, True),
                tuple(1 if i in axes else n for i, n in enumerate(operand.shape)),
            )
            return self._atom_poly(self.rebuild(self._sum(kept)).reshape(e.shape))
        count = math.prod(operand.shape[a] for a in axes)
        out: Poly = {}
        # Terms no identity applies to stay together under one Σ, grouped by the factors taken out.
        plain: dict[tuple[Any, ...], tuple[Factors, Poly]] = {}
        for coef, factors in self.norm(operand).values():
            outside = tuple((a, p) for a, p in factors if _constant_along(a.shape, ndim, axes))
            inside = tuple((a, p) for a, p in factors if not _constant_along(a.shape, ndim, axes))
            if outside and inside:
                self.note("constant out of a sum")
            if not inside:
                if count != 1:
                    self.note("sum over a broadcast axis")
                _add_term(out, coef * count, outside)
                continue
            known = self._known_sum(inside, axes)
            if known is not None:
                for c2, f2 in known.values():
                    _add_term(out, coef * c2, _product(outside, f2))
                continue
            group = plain.setdefault(_mono_key(outside), (outside, {}))[1]
            _add_term(group, coef, inside)
        for outside, inner in plain.values():
            common = _common_number(inner)
            rest = {k: (c / common, f) for k, (c, f) in inner.items()}
            summed = self._sum_atom(self.rebuild(rest, factor=True), axes, operand.shape, keepdims)
            _add_term(out, common, _product(outside, ((summed, 1),)))
        return out

    def _known_sum(self, factors: Factors, axes: tuple[int, ...]) -> Poly | None:
        """Σ over ``axes`` of one product of atoms, when an identity knows it (else None)."""
        if len(factors) == 1 and factors[0][1] == 1 and len(axes) == 1:
            atom = factors[0][0]
            (axis,) = axes
            if atom.kind == "onehot" and atom.attrs[0] == axis:
                self.note("one-hot sums to 1")
                return {(): (Fraction(1), ())}
            if atom.kind == "softmax" and atom.attrs[0] == axis:
                self.note("probabilities sum to 1")
                return {(): (Fraction(1), ())}
            if atom.kind == "var" and _is_distribution(atom, axis):
                self.note("probabilities sum to 1")
                return {(): (Fraction(1), ())}
        return None

    @staticmethod
    def _sum_atom(inner: Expr, axes: tuple[int, ...], shape: tuple[int, ...], keepdims: bool = True) -> Expr:
        ndim = len(shape)
        pad = (1,) * (ndim - inner.ndim) + inner.shape
        full = tuple(shape[i] if i in axes else pad[i] for i in range(ndim))
        if full != inner.shape:
            inner = Expr("expand", (inner,), (full,), full)
        if keepdims:
            return Expr(
                "sum", (inner,), (axes, True), tuple(1 if i in axes else n for i, n in enumerate(full))
            )
        return Expr("sum", (inner,), (axes, False), tuple(n for i, n in enumerate(full) if i not in axes))

    # ------------------------------------------------------------ gather's adjoint

    def _scatter(self, e: Expr) -> Poly:
        axis, picks, shape = e.attrs
        values = e.args[0]
        if picks.one_per_line and np.broadcast_shapes(values.shape, picks.index.shape) == picks.index.shape:
            self.note("scatter-add at the labels")
            hot = onehot(self.label_vector(picks), axis % len(shape), shape)
            return self._times(self._atom_poly(hot), self.norm(values))
        return self._atom_poly(Expr("scatter", (self.rebuild(self.norm(values)),), e.attrs, e.shape))

    def label_vector(self, picks: Picks) -> Expr:
        """The labels a gather picked, as a named vector (y, then y′ for other labels)."""
        found = self.labels.get(picks.token)
        if found is None:
            name = self.label_names[min(len(self.labels), len(self.label_names) - 1)]
            found = var(name, np.squeeze(picks.index, axis=picks.axis))
            self.labels[picks.token] = found
        return found

    # ------------------------------------------------------------ atoms

    def atom(self, e: Expr) -> Expr:
        """``e`` (not a sum of terms) with its arguments simplified and the atom identities applied."""
        if e.kind in ("var", "onehot"):
            return e
        args = tuple(self.rebuild(self.norm(a), factor=True) for a in e.args)
        if e.kind == "transpose":
            return self._transpose(args[0], e.attrs[0])
        if e.kind == "matmul":
            return self._matmul(*args)
        if e.kind == "reshape":
            return args[0].reshape(e.attrs[0])
        return Expr(e.kind, args, e.attrs, e.shape)

    def _transpose(self, x: Expr, axes: tuple[int, ...]) -> Expr:
        if axes == tuple(range(x.ndim)):
            return x
        if x.kind == "num":
            return x
        if x.ndim == 2 and x.kind == "transpose":
            self.note("transpose of a transpose")
            return x.args[0]
        if x.ndim == 2 and x.kind == "matmul":
            self.note("transpose of a product")
            a, b = x.args
            return self._matmul(self._transpose(b, (1, 0)), self._transpose(a, (1, 0)))
        coef, rest = self._pull_number(x)
        if isinstance(coef, Expr) or coef != 1:
            self.note("numbers out of a product")
            return self.rebuild(
                self._times(self._scalar_poly(coef), self._atom_poly(self._transpose(rest, axes)))
            )
        return x.transpose(axes)

    def _matmul(self, a: Expr, b: Expr) -> Expr:
        ca, a = self._pull_number(a)
        cb, b = self._pull_number(b)
        product = matmul(a, b)
        if not isinstance(ca, Expr) and not isinstance(cb, Expr) and ca * cb == 1:
            return product
        self.note("numbers out of a product")
        outside = self._times(self._scalar_poly(ca), self._scalar_poly(cb))
        return self.rebuild(self._times(outside, self._atom_poly(product)))

    def _scalar_poly(self, c: Expr | Number) -> Poly:
        return self.norm(c) if isinstance(c, Expr) else {(): (c, ())}

    def _pull_number(self, x: Expr) -> tuple[Expr | Number, Expr]:
        """``x`` as a scalar times the rest: the number and the scalars (shape ()) common to all its terms."""
        poly = self.norm(x)
        coef = _common_number(poly)
        scalars = (
            tuple((a, p) for a, p in _common_factors(list(poly.values())) if a.shape == ()) if poly else ()
        )
        if coef == 1 and not scalars:
            return Fraction(1), x
        inverse = tuple((a, -p) for a, p in scalars)
        rest: Poly = {}
        for c, f in poly.values():
            _add_term(rest, c / coef, _product(f, inverse))
        if not scalars:
            return coef, self.rebuild(rest, factor=True)
        return self.rebuild({_mono_key(scalars): (coef, scalars)}), self.rebuild(rest, factor=True)

    # ------------------------------------------------------------ softmax

    def _recognise_softmax(self, poly: Poly) -> Poly:
        """exp(u) = softmax_k(a) · Σ_k exp(u), a being u without its terms constant along k.

        Applied wherever some Σ_k exp(u) (kept dims) appears: the Σ then cancels
        between numerators and denominators as ordinary like factors.
        """
        sums = [e for e in _atoms_in(poly) if _is_sum_of_exp(e)]
        if not sums:
            return poly
        mapping: dict[Any, Expr] = {}
        for s in sums:
            (axis,) = s.attrs[0]
            exp_u = s.args[0]
            u = exp_u.args[0]
            kept = {
                k: (c, f)
                for k, (c, f) in self.norm(u).items()
                if not all(_constant_along(a.shape, u.ndim, (axis,)) for a, _ in f)
            }
            if not kept or exp_u.key in mapping:
                continue
            a = self.rebuild(kept)
            mapping[exp_u.key] = softmax(a, axis) * s
        if not mapping:
            return poly
        self.note("softmax")
        protect = {s.key for s in sums}
        self._memo.clear()
        replaced = _replace(self.rebuild(poly), mapping, protect)
        return self.norm(replaced)

    # ------------------------------------------------------------ sums of sums

    def _merge_sums(self, poly: Poly) -> Poly:
        """Terms that are the same factors times a Σ over the same axes become one Σ (linearity)."""
        groups: dict[tuple[Any, ...], list[tuple[Number, Factors, Expr]]] = {}
        rest: Poly = {}
        for coef, factors in poly.values():
            sums = [(a, p) for a, p in factors if a.kind == "sum" and p == 1]
            if len(sums) != 1:
                _add_term(rest, coef, factors)
                continue
            atom = sums[0][0]
            others = tuple((a, p) for a, p in factors if a is not atom)
            key = (_mono_key(others), atom.attrs, atom.shape, atom.args[0].shape)
            groups.setdefault(key, []).append((coef, others, atom))
        for members in groups.values():
            if len(members) == 1:
                coef, others, atom = members[0]
                _add_term(rest, coef, _product(others, ((atom, 1),)))
                continue
            self.note("one sum of several")
            inner: Poly = {}
            for coef, _, atom in members:
                for c, f in self.norm(atom.args[0]).values():
                    _add_term(inner, coef * c, f)
            common = _common_number(inner)
            body = self.rebuild({k: (c / common, f) for k, (c, f) in inner.items()}, factor=True)
            _, others, first = members[0]
            merged = self._sum_atom(body, first.attrs[0], first.args[0].shape, first.attrs[1])
            _add_term(rest, common, _product(others, ((merged, 1),)))
        return rest

    # ------------------------------------------------------------ back to an expression

    def rebuild(self, poly: Poly, factor: bool = False) -> Expr:
        """The normal form as an expression: positive terms first; with ``factor`` common factors outside."""
        # Terms without a sum first, then positive before negative: p − y − Σ_c (...)
        if factor:
            poly = self._merge_sums(poly)
        terms: list[tuple[Number, Factors]] = sorted(
            poly.values(), key=lambda cf: (any(a.kind == "sum" for a, _ in cf[1]), _negative(cf[0]))
        )
        if not terms:
            return num(0)
        common_coef: Number = Fraction(1)
        common: Factors = ()
        if factor and len(terms) > 1:
            common_coef = _common_number(poly)
            common = _common_factors(terms)
            if common_coef != 1 or common:
                self.note("like terms")
            terms = [(c / common_coef, _product(f, tuple((a, -p) for a, p in common))) for c, f in terms]
        total: Expr | None = None
        for coef, factors in terms:
            term = _term(_magnitude(coef), factors)
            if total is None:
                total = -term if _negative(coef) else term
            else:
                total = total - term if _negative(coef) else total + term
        assert total is not None
        if common_coef == 1 and not common:
            return total
        outer = _term(_magnitude(common_coef), common, inner=total)
        return -outer if _negative(common_coef) else outer


def _negative(c: Number) -> bool:
    return c < 0


def _magnitude(c: Number) -> Number:
    return -c if c < 0 else c


def _term(coef: Number, factors: Factors, inner: Expr | None = None) -> Expr:
    """coef · Π factors (· inner), written as numerator / denominator."""
    up: list[Expr] = []
    down: list[Expr] = []
    if isinstance(coef, Fraction):
        if coef.numerator != 1:
            up.append(num(coef.numerator))
        if coef.denominator != 1:
            down.append(num(coef.denominator))
    elif coef != 1:
        up.append(num(coef))
    for atom, p in sorted(factors, key=lambda ap: ap[0].kind == "sum"):  # sums last: m ⊙ Σ_c a
        base = atom if abs(p) == 1 else atom ** abs(p)
        (up if p > 0 else down).append(base)
    if inner is not None:
        up.append(inner)
    top = _chain(up) if up else num(1)
    return top if not down else top / _chain(down)


def _chain(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = out * p
    return out


def _common_number(poly: Poly) -> Number:
    coefs = [c for c, _ in poly.values()]
    if not coefs or not all(isinstance(c, Fraction) for c in coefs):
        return Fraction(1)
    top = math.gcd(*[c.numerator for c in coefs])  # type: ignore[union-attr]
    bottom = math.lcm(*[c.denominator for c in coefs])  # type: ignore[union-attr]
    common = Fraction(top, bottom)
    return -common if all(_negative(c) for c in coefs) else common


def _common_factors(terms: list[tuple[Number, Factors]]) -> Factors:
    first = dict((a.key, (a, p)) for a, p in terms[0][1])
    common: list[tuple[Expr, int]] = []
    for key, (atom, _) in first.items():
        powers = [dict((a.key, q) for a, q in f).get(key, 0) for _, f in terms]
        if all(q > 0 for q in powers):
            common.append((atom, min(powers)))
        elif all(q < 0 for q in powers):
            common.append((atom, max(powers)))
    return tuple(common)


def _is_distribution(atom: Expr, axis: int) -> bool:
    """A constant (a leaf that is not a parameter) whose entries are ≥ 0 and sum to 1 along ``axis``."""
    if not atom.attrs[1] or atom.value is None or atom.ndim <= axis:
        return False
    value = atom.value
    return bool(np.all(value >= 0) and np.allclose(value.sum(axis=axis), 1.0, rtol=0, atol=1e-12))


def _is_sum_of_exp(e: Expr) -> bool:
    return e.kind == "sum" and e.attrs[1] and len(e.attrs[0]) == 1 and e.args[0].kind == "exp"


def _atoms_in(poly: Poly) -> list[Expr]:
    from .expr import walk

    seen: dict[Any, Expr] = {}
    for _, factors in poly.values():
        for atom, _ in factors:
            for node in walk(atom):
                seen.setdefault(node.key, node)
    return list(seen.values())


def _replace(e: Expr, mapping: dict[Any, Expr], protect: set[Any]) -> Expr:
    if e.key in protect:
        return e
    if e.key in mapping:
        return mapping[e.key]
    if not e.args:
        return e
    args = tuple(_replace(a, mapping, protect) for a in e.args)
    return Expr(e.kind, args, e.attrs, e.shape, e.value)


def same_value(a: Expr, b: Expr, shape: tuple[int, ...]) -> float:
    """max |a − b| of the two formulas computed from their leaves, broadcast to ``shape``."""
    va = np.broadcast_to(evaluate(a), shape)
    vb = np.broadcast_to(evaluate(b), shape)
    return float(np.max(np.abs(va - vb))) if va.size else 0.0
