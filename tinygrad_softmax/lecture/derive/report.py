"""What ``tinygrad-softmax derive`` prints: the derived formulas in Unicode, LaTeX and Markdown."""

from __future__ import annotations

from ...compiler.simplify import IDENTITIES
from .derivation import TOLERANCE, Derivation, Formula
from .render import latex, unicode

NOT_SIMPLIFIED = "(not simplified further: the identities stop here; this is what the rules computed)"


def _line(d: Derivation, f: Formula) -> str:
    text = f"{f.lhs()} = {unicode(f.expr, d.sizes)}"
    return text if f.simplified else f"{text}   {NOT_SIMPLIFIED}"


def _sizes_line(d: Derivation) -> str:
    named = sorted(d.sizes.names.items(), key=lambda kv: "NCDH".index(kv[1]) if kv[1] in "NCDH" else 9)
    return ", ".join(f"{name} = {n}" for n, name in named)


def to_text(d: Derivation) -> str:
    """The whole derivation for the terminal: definitions, the chain view, written out, entry by entry."""
    out = [f"Derived from the recorded graph: {d.title} ({_sizes_line(d)})"]
    out.append("The backward rules of ops.py ran on symbolic values; named identities simplified the result.")
    out.append("")
    for name, value in d.definitions:
        out.append(f"  {unicode(_named(name), d.sizes)} = {unicode(value, d.sizes)}")
    for note in d.notes:
        out.append(f"  {note}")
    out.append("")
    out.append("Chain rule, one named gradient at a time:")
    out += [f"  {_line(d, f)}" for f in d.chain]
    out.append("")
    out.append("Written out:")
    out += [f"  {_line(d, f)}" for f in d.expanded if f.name not in _same_as_chain(d)]
    out.append("")
    out.append("Entry by entry (p = softmax(Z), y with two indices = onehot(y)):")
    out += [f"  {d.index_line(f)}" for f in d.expanded if f.letters]
    if d.origins:
        out.append("")
        out.append("Where the factors come from:")
        out += [f"  {line}" for line in d.origins]
    used = _identities(d)
    if used:
        out.append("")
        out.append("Identities used:")
        out += [f"  {name}: {IDENTITIES[name]}" for name in used]
    out.append("")
    out.append(
        f"Checked: every formula above, computed with NumPy from the graph's arrays, equals the engine's "
        f"gradient (float64): max |Δ| = {d.worst_error:.1e} ≤ {TOLERANCE:g}"
    )
    if not d.simplified:
        out.append(
            "Some formulas could not be simplified to a closed form; "
            "they are shown as the rules computed them."
        )
    return "\n".join(out) + "\n"


def _named(name: str):  # type: ignore[no-untyped-def]
    from ...compiler.expr import var

    return var(name, 0.0)


def _same_as_chain(d: Derivation) -> set[str]:
    """Formulas whose written-out form is the chain form itself (∂L/∂Z), shown once."""
    return {f.name for f in d.expanded if any(c.name == f.name and c.expr.key == f.expr.key for c in d.chain)}


def _identities(d: Derivation) -> list[str]:
    seen: list[str] = []
    for f in (*d.chain, *d.expanded):
        for name in f.identities:
            if name not in seen:
                seen.append(name)
    return seen


def latex_lines(d: Derivation, view: str = "both") -> list[str]:
    """One LaTeX equation per formula (no $ signs): the chain view, then the written-out one."""
    lines = []
    formulas = d.chain if view == "chain" else d.expanded if view == "expanded" else [*d.chain, *d.expanded]
    seen: set[tuple[str, object]] = set()
    for f in formulas:
        if (f.name, f.expr.key) in seen:
            continue
        seen.add((f.name, f.expr.key))
        lines.append(f"{f.lhs(latex_form=True)} = {latex(f.expr, d.sizes)}")
    return lines


def to_latex(d: Derivation) -> str:
    """A LaTeX ``align*`` block that compiles as is (amsmath)."""
    body = " \\\\\n".join(f"  {line.replace(' = ', ' &= ', 1)}" for line in latex_lines(d))
    return f"% {d.title}\n\\begin{{align*}}\n{body}\n\\end{{align*}}\n"


def to_markdown(d: Derivation) -> str:
    """The formulas for a report: the chain view and the written-out view, as code lines."""
    out = [f"Derived from the recorded graph of {d.title} ({_sizes_line(d)}):", "", "```text"]
    out += [_line(d, f) for f in d.chain]
    out += [_line(d, f) for f in d.expanded if f.name not in _same_as_chain(d)]
    out += [d.index_line(f) for f in d.expanded if f.letters]
    out.append("```")
    out.append("")
    out += [f"- {line}" for line in d.origins]
    out.append("")
    out.append(
        f"Each formula, computed with NumPy, equals the engine's gradient: max |Δ| = {d.worst_error:.1e} "
        f"(float64, tolerance {TOLERANCE:g})."
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- docs/derivation.md

DOCS_BEGIN = "<!-- the section below is written by tinygrad_softmax.lecture.derive.report.docs_section -->"
DOCS_END = "<!-- end of the derived section -->"
HAND = {
    "column": {"Z": "(P − Y)/N", "W": "dZ Xᵀ = (1/N)(P − Y) Xᵀ", "b": "Σ_i dZ[:, i]"},
    "row": {"Z": "(P − Y)/N", "W": "Xᵀ dZ", "b": "Σ_i dZ[i, :]"},
}


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def docs_section() -> str:
    """The derived formulas next to the hand derivation, both layouts, the two-layer net and every loss."""
    from .models import LOSSES, Problem, derive_model

    out = [DOCS_BEGIN, ""]
    linear = {layout: derive_model(Problem(layout=layout)) for layout in ("column", "row")}
    out.append(
        "| | the derivation, by hand | derived by the engine, column layout "
        "| derived by the engine, row layout |"
    )
    out.append("|---|---|---|---|")
    for name in ("Z", "W", "b"):
        cells = []
        for layout in ("column", "row"):
            d = linear[layout]
            chain, written = d.formula(name, "chain"), d.formula(name)
            both = [unicode_line(d, chain)]
            if written.expr.key != chain.expr.key:
                both.append(unicode_line(d, written))
            cells.append("<br>".join(_cell(t) for t in both))
        out.append(
            f"| ∂L/∂{name} | {_cell(HAND['column'][name])} / {_cell(HAND['row'][name])} "
            f"| {cells[0]} | {cells[1]} |"
        )
    for name in ("W", "b"):
        cells = [
            _cell(linear[layout].index_line(linear[layout].formula(name))) for layout in ("column", "row")
        ]
        out.append(f"| entry by entry | | {cells[0]} | {cells[1]} |")
    out.append("")
    out.append("Where the factors come from (column layout, read from the graph):")
    out.append("")
    out += [f"- {line}" for line in linear["column"].origins]
    out.append("")
    out.append("The two-layer net (column layout), one named gradient at a time:")
    out.append("")
    out.append("```text")
    mlp = derive_model(Problem(model="mlp"))
    out += [unicode_line(mlp, f) for f in mlp.chain]
    out.append("```")
    out.append("")
    out.append("The same loss written other ways, and losses whose gradient is not p − y (column layout):")
    out.append("")
    out.append("| loss | ∂L/∂Z derived by the engine |")
    out.append("|---|---|")
    for name, variant in LOSSES.items():
        d = derive_model(Problem(), name)
        out.append(f"| {name}: {variant.summary} | {_cell(unicode_line(d, d.formula('Z')))} |")
    out.append("")
    for layout in ("column", "row"):
        for name in LOSSES:  # derive_model raises DerivationError on a formula that differs
            derive_model(Problem(layout=layout), name)
    out.append(
        f"Every formula here, in both layouts, is computed with NumPy and equals the engine's gradient "
        f"to {TOLERANCE:g} (float64)."
    )
    out.append("")
    out.append(DOCS_END)
    return "\n".join(out) + "\n"


def unicode_line(d: Derivation, f: Formula) -> str:
    return _line(d, f)


def with_docs_section(page: str) -> str:
    """``page`` with its derived section replaced by a freshly generated one."""
    start, end = page.index(DOCS_BEGIN), page.index(DOCS_END) + len(DOCS_END) + 1
    return page[:start] + docs_section() + page[end:]
