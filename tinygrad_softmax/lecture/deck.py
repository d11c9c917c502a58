"""The 50-minute lecture as one offline HTML deck (``tinygrad-softmax slides``), from the engine's numbers.

    deck = build_deck(DeckOptions(samples=5, classes=3, features=4, seed=0))
    write_deck(deck, "deck/")      deck/index.html, one self-contained file (and deck/print.html)
    print_pdf(Path("deck/print.html"), Path("deck.pdf"))   one page per slide, through Chromium

The slides follow :data:`PLAN`, the plan of ``docs/lecture-plan.md`` (a test keeps
the two the same): nine parts, each with its minutes and the command that makes
its material. Every slide is computed when the deck is built, at the lecturer's
sizes and random seed: the graph and the backward frames drawn by Graphviz, the
explorer page, the comparison tables, the injected bug, the two-layer net, the
Hessian and Newton's method. Nothing is a stored picture.

The slide engine is reveal.js (MIT licence, vendored in ``views/web/reveal/`` with its
licence): arrow keys and clicks, fragments, and its speaker view (key S) with
the notes, a clock, a timer and the pacing of each slide (``data-timing``,
from the plan's minutes). Its files are inlined into the page, so the deck is
one file that opens from disk with no network.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import analytic
from . import extras, outputs
from .numbers import number
from .training.classifier import Classifier, build_classifier
from .views.graph import graph_order

if TYPE_CHECKING:
    from .lessons.second_order import NewtonRun

__all__ = [
    "PLAN",
    "Part",
    "DeckOptions",
    "Slide",
    "Deck",
    "LIMITS",
    "build_deck",
    "deck_html",
    "write_deck",
    "print_pdf",
    "SLIDE_SIZE",
    "MIN_TEXT_PX",
]

SLIDE_SIZE = (1920, 1080)  # a projector's 16:9, the size every slide is laid out at
MIN_TEXT_PX = 24  # no text on a slide is smaller than this at 1920×1080 (tested in Chromium)
SHOWN_SAMPLES = 6  # a table of a C×N matrix shows at most this many samples (columns)
PAIRED_SAMPLES = 5  # two tables side by side: five samples each when N = 5, else four and "+k"


@dataclass(frozen=True)
class Part:
    """One part of the lecture: its minutes, the command that makes its material, its slides' titles."""

    number: int
    title: str
    minutes: int
    command: str
    slides: tuple[str, ...]


PLAN: tuple[Part, ...] = (
    Part(
        1,
        "The problem",
        4,
        "tinygrad-softmax compare",
        ("Where does p − y come from?", "The problem"),
    ),
    Part(
        2,
        "The forward graph",
        5,
        "tinygrad-softmax graph --out graph.png",
        ("The forward graph", "The forward pass in numbers"),
    ),
    Part(
        3,
        "The chain rule step by step",
        10,
        "tinygrad-softmax animate --out frames",
        ("The chain rule, step by step", "One sample through log-softmax"),
    ),
    Part(
        4,
        "p − y",
        7,
        "tinygrad-softmax explore --out explorer.html",
        ("∂L/∂Z = (P − Y)/N", "The explorer"),
    ),
    Part(5, "Broadcasting and db", 5, "tinygrad-softmax explain", ("b is broadcast, so db is a sum",)),
    Part(
        6,
        "The check: closed form and finite differences",
        6,
        "tinygrad-softmax compare",
        ("Three witnesses agree",),
    ),
    Part(7, "A bug caught", 5, "tinygrad-softmax compare --inject-bug missing-one-hot", ("A bug caught",)),
    Part(8, "The two-layer net", 5, "tinygrad-softmax compare --model mlp", ("One hidden layer further",)),
    Part(
        9,
        "What comes next: the Hessian and Newton's method",
        3,
        "tinygrad-softmax hessian",
        ("Next: the Hessian and Newton's method", "Make this lecture yourself"),
    ),
)
TOTAL_MINUTES = 50

# The sizes a deck accepts: a C×n table must fit a slide's height, the Hessian ((C·D)² entries,
# one backward pass per entry of W) must take seconds, and finite differences over Z (2·C·N
# forward passes) too.
LIMITS = {"samples": (1, 1000), "classes": (2, 8), "features": (1, 16)}


@dataclass(frozen=True)
class DeckOptions:
    """The sizes and random seed the deck is computed at (those of ``build_classifier`` by default)."""

    samples: int = 5
    classes: int = 3
    features: int = 4
    seed: int = 0
    labels: tuple[int, ...] | None = None
    bug: str = "missing-one-hot"

    def check(self) -> None:
        """A clear error for sizes, labels or a bug the deck cannot show."""
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"slides: --{name} must be from {low} to {high}, got {value}")
        if self.seed < 0:
            raise ValueError(f"slides: --random-seed must be at least 0, got {self.seed}")
        if self.labels is not None:
            if len(self.labels) != self.samples:
                raise ValueError(
                    f"slides: --labels gives {len(self.labels)} labels for --samples {self.samples}; "
                    "give one class per sample"
                )
            wrong = [y for y in self.labels if not 0 <= y < self.classes]
            if wrong:
                raise ValueError(
                    f"slides: --labels {wrong[0]} is not a class of --classes {self.classes} "
                    f"(classes are 0 to {self.classes - 1})"
                )
        from .lessons.bugs import get

        get(self.bug)

    @property
    def sizes(self) -> str:
        return (
            f"N = {self.samples} samples, C = {self.classes} classes, D = {self.features} features, "
            f"random seed {self.seed}"
        )


@dataclass(frozen=True)
class Slide:
    """One slide: its part, its title, its body (HTML), its speaker notes (HTML) and its seconds."""

    part: int
    title: str
    body: str
    notes: str
    seconds: int = 0
    kind: str = ""  # "title", or a whole-slide picture: "full", "frames", "explorer"


@dataclass
class Deck:
    """The slides in order, and the parts that could not be drawn (a missing ``dot``)."""

    options: DeckOptions
    slides: list[Slide]
    skipped: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- HTML pieces


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(x: float, digits: int = 4) -> str:
    return number(x, f".{digits}f")


def _g(x: float) -> str:
    """A difference or an error: 0, or two significant digits in scientific notation."""
    return "0" if x == 0 else number(x, ".1e")


def _matrix(
    a: np.ndarray,
    caption: str,
    digits: int = 4,
    css: str = "",
    mark: np.ndarray | None = None,
    columns: int = SHOWN_SAMPLES,
) -> str:
    """A C×n matrix as a table: one column per shown sample (at most ``columns``), classes down the side."""
    if a.shape[1] > columns:
        columns -= 1  # room for the "+k" column
    shown = a[:, :columns]
    head = "".join(f"<th>{k + 1}</th>" for k in range(shown.shape[1]))
    more = f"<th>+{a.shape[1] - shown.shape[1]}</th>" if a.shape[1] > shown.shape[1] else ""
    rows = []
    for c in range(shown.shape[0]):
        cells = "".join(
            f"<td{' class=mark' if mark is not None and mark[c, k] else ''}>{_f(v, digits)}</td>"
            for k, v in enumerate(shown[c])
        )
        rows.append(f"<tr><th>class {c}</th>{cells}{'<td></td>' if more else ''}</tr>")
    return (
        f'<table class="matrix {css}"><caption>{caption}</caption>'
        f"<thead><tr><th>sample</th>{head}{more}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _frag(inner: str, tag: str = "div", css: str = "") -> str:
    return f'<{tag} class="fragment {css}">{inner}</{tag}>'


def _notes(*points: str) -> str:
    return "<ul>" + "".join(f"<li>{p}</li>" for p in points) + "</ul>"


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _asset(*parts: str) -> str:
    web = resources.files(__package__).joinpath("views").joinpath("web", *parts)
    return web.read_text(encoding="utf-8")


def _inline_script(text: str) -> str:
    """A script's text safe inside <script>: a literal "</script" would end the element early."""
    return text.replace("</script", "<\\/script")


# ---------------------------------------------------------------- the slides, part by part


@dataclass
class _Built:
    """What several slides share: the classifier after backward, and its closed form."""

    options: DeckOptions
    model: Classifier
    P: np.ndarray
    Y: np.ndarray
    closed: np.ndarray  # (P − Y)/N from analytic
    skipped: list[str]
    work: Path

    @property
    def n(self) -> int:
        return self.options.samples


def _classifier(options: DeckOptions) -> Classifier:
    labels = None if options.labels is None else np.array(options.labels)
    return build_classifier(
        "column", D=options.features, N=options.samples, C=options.classes, seed=options.seed, labels=labels
    )


def _part1(b: _Built) -> list[Slide]:
    o, m = b.options, b.model
    loss = m.loss.item()
    ln_c = math.log(o.classes)
    title = Slide(
        1,
        PLAN[0].slides[0],
        '<p class="subtitle">The softmax cross-entropy gradient, derived by a 200-line autograd engine</p>'
        f'<p class="sizes">{_e(o.sizes)}</p>'
        '<p class="keys">→ / ← or click: next / back · S: speaker notes · F: full screen · Esc: overview</p>',
        _notes(
            "Welcome. One question for 50 minutes: why is the gradient of softmax cross-entropy at the "
            "logits simply p − y?",
            f"Everything on these slides was computed by the engine for this deck: {_e(o.sizes)}.",
            "Press S for this window; the timer at its top counts the 50 minutes, and each slide "
            "shows the time it is planned to take.",
        ),
        kind="title",
    )
    problem = Slide(
        1,
        PLAN[0].slides[1],
        '<div class="equations">'
        f"<p>X: D×N = {o.features}×{o.samples}, one sample per column</p>"
        f"<p>W: C×D = {o.classes}×{o.features}, b: C×1 = {o.classes}×1</p>"
        f"<p>Z = W X + b: C×N = {o.classes}×{o.samples}, the logits</p>"
        "<p>P = softmax(Z) over each column</p>"
        "<p>L = −(1/N) Σᵢ log P[yᵢ, i]</p></div>"
        + _frag(f'<p class="big">L = {_f(loss)}</p>')
        + _frag('<p class="big question">∂L/∂Z = ?</p>')
        + _frag("<p>Nobody writes p − y into the engine. Watch it fall out of the chain rule.</p>"),
        _notes(
            "The linear softmax classifier in the derivation's column layout.",
            f"Say the number: the loss is {_f(loss)}; with every class equally likely it would be "
            f"ln {o.classes} = {_f(ln_c)}.",
            "The question of the hour: the gradient at the logits, ∂L/∂Z. We will not derive it by "
            "hand first; the engine will, through exp, sum, log and gather.",
        ),
    )
    return [title, problem]


def _graph_picture(b: _Built) -> tuple[str, str]:
    """The forward graph as slide pictures (``img`` tags), or a line saying what is missing."""
    from .views import viz

    if not extras.have("dot"):
        b.skipped.append(extras.skipped("the forward graph and the backward frames", "dot"))
        return "", f'<p class="missing">{_e(extras.skipped("this picture", "dot"))}</p>'
    paths = viz.render_slides(
        b.model.loss,
        b.work / "graph.png",
        clusters={"cross_entropy": (b.model.loss, [b.model.Z])},
    )
    images = "".join(
        f'<img class="{"fragment" if k else ""}" src="{_png(p)}" alt="the forward graph, part {k + 1}">'
        for k, p in enumerate(paths)
    )
    return f'<div class="r-stack">{images}</div>', ""


def _part2(b: _Built) -> list[Slide]:
    o, m = b.options, b.model
    images, missing = _graph_picture(b)
    ops = [t.op for t in graph_order(m.loss) if t.op]
    graph = Slide(
        2,
        PLAN[1].slides[0],
        images or missing,
        _notes(
            "Each box is a tensor (its name, its shape), each oval the op that made it.",
            f"The forward pass records {len(ops)} ops: {_e(', '.join(ops))}.",
            "cross_entropy is not one op: the dashed box holds the primitives it is built from, "
            "so the chain rule can go through each of them.",
        ),
        kind="full" if images else "",
    )
    per_sample = -np.log(b.P[m.labels, np.arange(o.samples)])
    shown = min(o.samples, SHOWN_SAMPLES)
    labels = " ".join(str(int(y)) for y in m.labels[:shown]) + (" …" if o.samples > shown else "")
    picked = np.zeros_like(b.P, dtype=bool)
    picked[m.labels, np.arange(o.samples)] = True
    numbers = Slide(
        2,
        PLAN[1].slides[1],
        '<div class="row">'
        + _matrix(m.Z.data, "Z = W X + b", 3, columns=PAIRED_SAMPLES, css="paired")
        + _frag(
            _matrix(b.P, "P = softmax(Z), label marked", 3, mark=picked, columns=PAIRED_SAMPLES, css="paired")
        )
        + "</div>"
        + _frag(
            f"<p>labels y = {labels} · −log P[yᵢ, i] = "
            + " ".join(_f(v, 3) for v in per_sample[:shown])
            + (" …" if o.samples > shown else "")
            + f" · their mean L = {_f(m.loss.item())}</p>"
        ),
        _notes(
            "Left: the logits the engine computed. Right: each column through softmax sums to 1.",
            f"Sample 1 has label {int(m.labels[0])}; its probability is {_f(b.P[m.labels[0], 0])}, "
            f"so it costs −log of that = {_f(per_sample[0])}.",
            f"The loss is the mean over the {o.samples} samples: {_f(m.loss.item())}.",
        ),
    )
    return [graph, numbers]


def _frames(b: _Built) -> tuple[str, int]:
    """The backward frames as a stack of images, one fragment each: (HTML, number of frames)."""
    from .views import viz

    if not extras.have("dot"):
        return f'<p class="missing">{_e(extras.skipped("the backward frames", "dot"))}</p>', 0
    paths = viz.backward_frames(
        b.model.loss, b.work / "frames", clusters={"cross_entropy": (b.model.loss, [b.model.Z])}
    )
    images = "".join(
        f'<img class="{"fragment" if k else ""}" src="{_png(p)}" alt="backward step {k + 1}">'
        for k, p in enumerate(paths)
    )
    return f'<div class="r-stack">{images}</div>', len(paths)


def _part3(b: _Built) -> list[Slide]:
    o, m = b.options, b.model
    stack, count = _frames(b)
    steps = Slide(
        3,
        PLAN[2].slides[0],
        stack,
        _notes(
            f"{count} steps, one per → press: the backward walk in reverse topological order.",
            "At each step the orange node has just received ∂loss/∂(its output); its local rule "
            "multiplies that by its own derivative and sends the result to its inputs.",
            "Point at the bold edges: the gradient has already travelled them.",
        ),
        kind="frames",
    )
    # One sample's column through the last ops: the numbers the engine left on the intermediates.
    gather = next(t for t in graph_order(m.loss) if t.op == "gather")
    log_p = gather.parents[0]
    i, y = 0, int(m.labels[0])
    assert log_p.grad is not None and m.Z.grad is not None  # backward kept every intermediate's gradient
    g_logp = log_p.grad[:, i]
    g_z = m.Z.grad[:, i]
    column = " ".join(_f(v) for v in g_logp)
    p_col = " ".join(_f(v) for v in b.P[:, i])
    sum_g = float(g_logp.sum())
    body = (
        f'<p>Sample 1, label y = {y}, N = {o.samples}</p><div class="steps">'
        + _frag(f"<p>gather, then mean, then −: ∂L/∂log P[:, 1] = ({column})</p>")
        + _frag(f"<p>log P = Z − log Σ exp Z, so ∂L/∂Z = g − P · Σ g, with Σ g = {_f(sum_g)} = −1/N</p>")
        + _frag(f"<p>P[:, 1] = ({p_col})</p>")
        + _frag(
            f"<p>∂L/∂Z[:, 1] = ({' '.join(_f(v) for v in g_z)}) = (P[:, 1] − Y[:, 1])/N</p>",
            css="good",
        )
        + "</div>"
    )
    one = Slide(
        3,
        PLAN[2].slides[1],
        body,
        _notes(
            "The same walk, for one column, in numbers the engine left on the intermediate tensors.",
            f"gather picks the label's entry, mean divides by N = {o.samples}, the minus flips the sign: "
            f"−1/N = {_f(-1 / o.samples)} lands on class {y}, 0 elsewhere.",
            "log-softmax's rule: g − P·Σg. Σg is −1/N, so the result is g + P/N: "
            "P/N everywhere, minus 1/N at the label.",
            "That is (p − y)/N: nobody wrote it, the chain rule produced it.",
        ),
    )
    return [steps, one]


def _part4(b: _Built) -> list[Slide]:
    from .views import explorer

    o, m = b.options, b.model
    assert m.Z.grad is not None
    gap = float(np.abs(m.Z.grad - b.closed).max())
    pmy = Slide(
        4,
        PLAN[3].slides[0],
        "<p>Left: what backward() left in Z.grad. Right: the derivation's closed form, "
        'P = softmax(Z), Y = onehot(y).</p><div class="row">'
        + _frag(_matrix(m.Z.grad, "Z.grad from backward()", columns=PAIRED_SAMPLES, css="paired"))
        + _frag(_matrix(b.closed, "(P − Y)/N, the closed form", columns=PAIRED_SAMPLES, css="paired"))
        + "</div>"
        + _frag(f"<p>largest difference: {_g(gap)}</p>", css="good"),
        _notes(
            "Left: what backward() left in Z.grad. Right: the derivation's closed form (P − Y)/N, "
            "computed by analytic.py, which never imports the engine.",
            f"The largest difference over all {o.classes}×{o.samples} entries is {_g(gap)}: "
            "the same numbers up to rounding.",
            f"Each column sums to 0: Σ_c (p_c − y_c) = 1 − 1. The label's entry is negative "
            f"(sample 1: {_f(m.Z.grad[m.labels[0], 0])}), every other entry positive.",
        ),
    )
    if extras.have("dot"):
        page = explorer.page(
            m.loss,
            reference=(m.Z, m.labels, m.class_axis),
            clusters={"cross_entropy": (m.loss, [m.Z])},
            title="Backprop, step by step: the linear softmax classifier (column layout)",
        )
        frame = (
            f'<iframe class="explorer" srcdoc="{_e(page)}" sandbox="allow-scripts" '
            'title="the explorer: the backward walk, one step per key"></iframe>'
        )
    else:
        frame = f'<p class="missing">{_e(extras.skipped("the explorer", "dot"))}</p>'
    explore = Slide(
        4,
        PLAN[3].slides[1],
        frame,
        _notes(
            "Click into the page: → steps through the walk, End jumps to the End view, "
            "where ∂loss/∂Z stands next to (P − Y)/N and their largest difference.",
            "V shows the values, G the gradients; hover any node to read its numbers.",
            "Click on the slide's title above the page to give the arrow keys back to the deck "
            "(S for these notes too).",
        ),
        kind="explorer",
    )
    return [pmy, explore]


def _part5(b: _Built) -> list[Slide]:
    o, m = b.options, b.model
    assert m.Z.grad is not None and m.b.grad is not None
    summed = m.Z.grad.sum(axis=1)
    gap = float(np.abs(m.b.grad[:, 0] - summed).max())
    db = " ".join(_f(v) for v in m.b.grad[:, 0])
    body = (
        f"<p>Z = W X + b adds b (C×1 = {o.classes}×1) to each of the N = {o.samples} columns</p>"
        + _frag(
            "<p>Its adjoint sums the gradient back to b's shape: db = Σᵢ dZ[:, i] (adjoints.unbroadcast)</p>"
        )
        + _frag(_matrix(m.Z.grad, "dZ = Z.grad"))
        + _frag(f"<p>b.grad = ({db})</p><p>Σᵢ dZ[:, i] − b.grad: largest {_g(gap)}</p>")
    )
    return [
        Slide(
            5,
            PLAN[4].slides[0],
            body,
            _notes(
                "Broadcasting copies b into every column; going back, every copy's gradient is added: "
                "that is the sum over samples in the derivation's db.",
                f"Say the numbers: b.grad = ({db}); the row sums of dZ are the same (difference {_g(gap)}).",
                "b.grad sums to 0 too, as every column of dZ does.",
            ),
        )
    ]


def _part6(b: _Built) -> list[Slide]:
    from .lessons.compare import compare

    o = b.options
    result = compare("column", seed=o.seed, D=o.features, N=o.samples, C=o.classes, labels=b.model.labels)
    return [
        Slide(
            6,
            PLAN[5].slides[0],
            _comparison_table(result, "Autograd = closed form = finite differences")
            + "".join(_frag(f"<p>{'✓' if c.passed else '✗'} {_e(c.name)}</p>") for c in result.sanity)
            + _frag(f"<p>{_e(result.conclusion())}</p>", css="good"),
            _notes(
                "Three witnesses: the engine's backward, the closed form in plain NumPy (analytic.py), "
                f"central differences of the loss with step {result.eps:g}.",
                *(
                    f"{r.name}: autograd vs closed form {_g(r.diffs[0].max_abs)}, "
                    f"relative error vs finite differences {_g(r.diffs[1].rel)}: {r.verdict}"
                    for r in result.rows
                ),
                f"Below {result.bands.ok:g} relative error is a pass, above {result.bands.fail:g} a "
                "wrong gradient.",
            ),
        )
    ]


def _comparison_table(result: object, caption: str) -> str:
    from .lessons.compare import PAIRS, Comparison

    assert isinstance(result, Comparison)
    heads = "".join(f"<th>{_e(a)} vs {_e(b_)}</th>" for a, b_ in PAIRS)
    rows = "".join(
        f'<tr class="fragment"><th>{_e(r.name)} = {_e(r.formula)}</th>'
        + "".join(f"<td>{_g(d.rel)}</td>" for d in r.diffs)
        + f'<td class="{"ok" if r.verdict == "ok" else "wrong"}">{_e(r.verdict)}</td></tr>'
        for r in result.rows
    )
    return (
        f'<table class="check"><caption>{_e(caption)} (relative errors)</caption>'
        f"<thead><tr><th>gradient</th>{heads}<th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _part7(b: _Built) -> list[Slide]:
    from .lessons.bugs import get
    from .lessons.compare import compare

    o = b.options
    bug = get(o.bug)
    result = compare(
        "column", bug=o.bug, seed=o.seed, D=o.features, N=o.samples, C=o.classes, labels=b.model.labels
    )
    wrong = [r for r in result.rows if r.verdict != "ok"]
    worst = wrong[0] if wrong else result.rows[0]
    auto, closed, numeric = worst.worst_values
    where = ", ".join(str(k + 1) for k in worst.worst_index)
    return [
        Slide(
            7,
            PLAN[6].slides[0],
            f"<p>The injected mistake: {_e(bug.summary)}</p>"
            + _comparison_table(result, f"--inject-bug {o.bug}")
            + _frag(
                f"<p>{_e(worst.name)}[{where}]: autograd {_f(auto)}, closed form {_f(closed)}, "
                f"finite differences {_f(numeric)}</p>",
                css="bad",
            ),
            _notes(
                f"One backward rule replaced by a wrong one: {_e(bug.summary)}.",
                f"What the check shows: {_e(bug.symptom)}.",
                f"Say the numbers: at {_e(worst.name)}[{where}] autograd gives {_f(auto)}, the closed form "
                f"{_f(closed)}, finite differences {_f(numeric)}.",
                "Finite differences never look at the backward rules, which is why they catch it; "
                "the closed form agrees with them.",
            ),
        )
    ]


def _part8(b: _Built) -> list[Slide]:
    from .lessons.hidden_layer import compare_mlp

    o = b.options
    result = compare_mlp("column", seed=o.seed, D=o.features, N=o.samples, C=o.classes)
    rows = "".join(
        f'<tr class="fragment"><th>{_e(r.name)} {_e("×".join(map(str, r.shape)))}</th>'
        f"<td>{_g(r.rel)}</td>"
        f'<td class="{"ok" if r.verdict == "ok" else "wrong"}">{_e(r.verdict)}</td></tr>'
        for r in result.rows
    )
    body = (
        f"<p>{_e(result.equations)}</p>"
        '<table class="check"><caption>autograd vs finite differences (relative error)</caption>'
        f"<thead><tr><th>parameter</th><th>relative error</th><th>verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        + _frag(
            f"<p>At the logits: Z2.grad vs (P − Y)/N, relative error {_g(result.logits_rel)}</p>",
            css="good",
        )
    )
    return [
        Slide(
            8,
            PLAN[7].slides[0],
            body,
            _notes(
                f"A two-layer net with a hidden layer of {result.shapes['H']} relu units, the same "
                f"N = {o.samples}, C = {o.classes}, D = {o.features}.",
                "There is no closed form for W1 and b1 in the derivation; finite differences check them.",
                f"Its loss is {_f(result.loss)}. At its logits the gradient is again (P − Y)/N "
                f"(relative error {_g(result.logits_rel)}): the softmax-loss step does not care what "
                "made the logits.",
            ),
        )
    ]


@functools.lru_cache(maxsize=1)
def _newton_on_iris() -> NewtonRun:
    """Newton's method against gradient descent on Iris: the same at every size, so run once a process."""
    from .lessons.second_order import newton_vs_gd

    return newton_vs_gd("iris")


def _part9(b: _Built) -> list[Slide]:
    from .lessons.second_order import hessian_check

    o = b.options
    check = hessian_check("column", samples=o.samples, features=o.features, classes=o.classes, seed=o.seed)
    run = _newton_on_iris()
    gd = run.gd_steps_to_newton_loss
    gd_text = f"{gd} steps" if gd is not None else f"more than {run.gd_budget} steps"
    size = o.classes * o.features
    nxt = Slide(
        9,
        PLAN[8].slides[0],
        f"<p>hessian(L, W): the engine differentiates its own backward pass ({size}×{size})</p>"
        + _frag(
            f"<p>vs the closed form (1/N) Σₙ (diag(pₙ) − pₙpₙᵀ) ⊗ xₙxₙᵀ: largest difference "
            f"{_g(check.max_difference)}</p>"
        )
        + _frag(
            f"<p>eigenvalues ≥ 0 (the loss is convex), {check.zero_eigenvalues} of them 0 "
            f"(adding a constant to every class's weights changes nothing)</p>"
        )
        + _frag(
            f"<p>Newton's method on Iris: {run.newton_steps} steps to ‖∇L‖ &lt; {run.tolerance:g}; "
            f"gradient descent matches its loss after {gd_text}</p>",
            css="good",
        ),
        _notes(
            "Because every backward rule is itself differentiable, grad(..., create_graph=True) "
            "gives the Hessian.",
            f"Say the numbers: engine vs closed form, largest difference {_g(check.max_difference)}; "
            f"{check.zero_eigenvalues} zero eigenvalues.",
            f"Newton: {run.newton_steps} steps, final loss {_f(run.newton_loss[-1], 6)}. Gradient descent "
            f"with the largest safe step needs {gd_text}.",
            "tinygrad-softmax newton --out pics draws both curves; docs/second-order.md has the derivation.",
        ),
    )
    rows = "".join(
        f"<tr><th>{p.number}. {_e(p.title)}</th><td><code>{_e(p.command)}</code></td></tr>" for p in PLAN
    )
    sizes = (
        f"tinygrad-softmax slides --out deck --samples {o.samples} --classes {o.classes} "
        f"--features {o.features} --random-seed {o.seed}"
    )
    commands = Slide(
        9,
        PLAN[8].slides[1],
        f'<table class="commands"><tbody>{rows}</tbody></table><p><code>{_e(sizes)}</code></p>',
        _notes(
            "Every slide of this deck came from one of these commands; students can run each one.",
            "The last line makes this deck again, at the same sizes and random seed.",
        ),
    )
    return [nxt, commands]


def build_deck(options: DeckOptions | None = None) -> Deck:
    """Compute every slide of :data:`PLAN` at ``options``' sizes and random seed."""
    options = options or DeckOptions()
    options.check()
    model = _classifier(options)
    axis = model.class_axis
    P = analytic.softmax(model.Z.data, axis=axis)
    Y = analytic.one_hot(model.labels, options.classes, axis=axis)
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinygrad-softmax-deck-") as work:
        built = _Built(
            options, model, P, Y, analytic.logits_grad(model.Z.data, model.labels, axis), skipped, Path(work)
        )
        slides: list[Slide] = []
        for part in (_part1, _part2, _part3, _part4, _part5, _part6, _part7, _part8, _part9):
            slides += part(built)
    # Each part's minutes shared by its slides: the speaker view's pacing.
    timed = []
    for plan in PLAN:
        mine = [s for s in slides if s.part == plan.number]
        for k, s in enumerate(mine):
            share = plan.minutes * 60 // len(mine) + (plan.minutes * 60 % len(mine) if k == 0 else 0)
            timed.append(Slide(s.part, s.title, s.body, s.notes, share, s.kind))
    return Deck(options, timed, list(dict.fromkeys(skipped)))


# ---------------------------------------------------------------- the page


_STYLE = """
.reveal { font-size: 40px; color: #1a1a1a; }
.reveal .slides { text-align: left; }
.reveal .slides section { height: 1080px; padding: 40px 80px; box-sizing: border-box; }
.reveal .slides section.frames, .reveal .slides section.full { padding: 0; }
.reveal .slides section.explorer { padding: 24px 0 0 0; }
.reveal section.explorer .part, .reveal section.explorer h2 { margin-left: 80px; }
.reveal section.explorer h2 { margin-bottom: 12px; }
.reveal h1 { font-size: 88px; margin-top: 260px; text-transform: none; }
.reveal h2 { font-size: 60px; margin: 0 0 32px 0; text-transform: none; }
.reveal .part { font-size: 28px; color: #555; margin: 0 0 8px 0; }
.reveal p { margin: 16px 0; line-height: 1.3; }
.reveal .subtitle { font-size: 44px; }
.reveal .sizes, .reveal .keys { font-size: 32px; color: #444; }
.reveal .big { font-size: 56px; }
.reveal .question { color: #b35c00; }
.reveal .formula { font-size: 56px; color: #0b5394; }
.reveal .row { display: flex; gap: 48px; align-items: flex-start; }
.reveal table { font-size: 30px; border-collapse: collapse; margin: 8px 0; }
.reveal table caption {
  font-size: 30px; text-align: left; padding-bottom: 8px; color: #333; white-space: nowrap; }
.reveal table.paired { font-size: 28px; }
.reveal table.paired th, .reveal table.paired td { padding: 4px 10px; }
.reveal table th, .reveal table td { padding: 4px 16px; border-bottom: 1px solid #ccc; }
.reveal table td { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; text-align: right; }
.reveal table.commands td { text-align: left; }
.reveal table.commands th { font-weight: normal; }
.reveal code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 28px; }
.reveal td.mark { background: #fde9c9; font-weight: bold; }
.reveal td.ok { color: #1c7c1c; font-family: inherit; }
.reveal td.wrong { color: #b00020; font-weight: bold; font-family: inherit; }
.reveal .good { color: #1c7c1c; }
.reveal .bad { color: #b00020; }
.reveal .missing { color: #b00020; font-size: 32px; }
.reveal section.frames .r-stack img, .reveal section.full .r-stack img {
  width: 1920px; height: 1080px; max-width: none; max-height: none; margin: 0; }
.reveal iframe.explorer {
  display: block; width: 1920px; height: 900px; border: 0; border-top: 1px solid #ccc; }
.reveal .slide-number { font-size: 26px; background: rgba(255, 255, 255, 0.8); color: #333; }
.reveal .slide-number a { color: #333; }
@media print { .reveal .slides section { height: 1080px; } }
"""

_CONFIG = {
    "width": SLIDE_SIZE[0],
    "height": SLIDE_SIZE[1],
    "margin": 0,
    "minScale": 0.1,
    "maxScale": 4.0,
    "center": False,
    "hash": True,
    "transition": "none",
    "backgroundTransition": "none",
    "slideNumber": "c/t",
    "controls": True,
    "progress": True,
    "pdfSeparateFragments": False,
    "pdfMaxPagesPerSlide": 1,
    "totalTime": TOTAL_MINUTES * 60,
}


def _section(slide: Slide, index: int) -> str:
    part = PLAN[slide.part - 1]
    heading = (
        f"<h1>{_e(slide.title)}</h1>"
        if slide.kind == "title"
        else f'<p class="part">Part {part.number} of {len(PLAN)}: {_e(part.title)} · {part.minutes} min</p>'
        f"<h2>{_e(slide.title)}</h2>"
    )
    if slide.kind in ("frames", "full"):
        heading = ""  # a picture made for a whole slide: its caption says what it is
    return (
        f'<section class="{slide.kind}" data-part="{slide.part}" data-slide="{index}" '
        f'data-title="{_e(slide.title)}" data-timing="{slide.seconds}">'
        f'{heading}{slide.body}<aside class="notes"><p><b>{_e(slide.title)}</b> '
        f"({slide.seconds // 60} min {slide.seconds % 60:02d} s)</p>{slide.notes}</aside></section>"
    )


def deck_html(deck: Deck) -> str:
    """The deck as one HTML page: reveal.js, its theme, the notes plugin and every picture inline."""
    sections = "\n".join(_section(s, k) for k, s in enumerate(deck.slides, start=1))
    config = json.dumps({**_CONFIG, "plugins": []})
    licence = _asset("reveal", "LICENSE")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Where does p − y come from? ({_e(deck.options.sizes)})</title>
<!-- reveal.js {_e(_REVEAL_VERSION)}, https://revealjs.com, inlined below under its licence:
{_e(licence)}
-->
<style>{_asset("reveal", "reveal.css")}</style>
<style>{_asset("reveal", "white.css")}</style>
<style>{_STYLE}</style>
</head>
<body>
<div class="reveal"><div class="slides">
{sections}
</div></div>
<script>{_inline_script(_asset("reveal", "reveal.js"))}</script>
<script>{_inline_script(_asset("reveal", "notes.js"))}</script>
<script>
const config = {config};
config.plugins = [RevealNotes];
Reveal.initialize(config);
</script>
</body>
</html>
"""


_REVEAL_VERSION = "6.0.2"

# The print page: every slide one 1920×1080 page, every fragment shown, laid out by CSS alone, so the
# PDF never depends on when a script finishes (reveal.js's own print view is laid out by its script).
# reveal.css is left out: its print rules turn slides into a flowing document; the theme is kept.
_PRINT_STYLE = """
@page { size: 1920px 1080px; margin: 0; }
html, body { margin: 0; padding: 0; width: 1920px; overflow: visible; }
.reveal, .reveal .slides { position: static !important; width: 1920px !important; height: auto !important;
  overflow: visible !important; transform: none !important; inset: auto !important; margin: 0 !important; }
.reveal .slides > section { display: block !important; position: relative !important; left: 0 !important;
  top: 0 !important; width: 1920px !important; height: 1080px !important; overflow: hidden !important;
  opacity: 1 !important; visibility: visible !important; transform: none !important;
  break-after: page; page-break-after: always; }
.reveal .fragment { opacity: 1 !important; visibility: inherit !important; transform: none !important; }
.reveal aside.notes { display: none !important; }
.reveal .r-stack { display: grid; }
.reveal .r-stack > * { grid-area: 1 / 1; margin: auto; }
"""


def print_html(deck: Deck) -> str:
    """The deck as a page to print: one 1920×1080 page per slide with every fragment shown, no script."""
    sections = "\n".join(_section(s, k) for k, s in enumerate(deck.slides, start=1))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Where does p − y come from? ({_e(deck.options.sizes)}), to print</title>
<style>{_asset("reveal", "white.css")}</style>
<style>{_STYLE}</style>
<style>{_PRINT_STYLE}</style>
</head>
<body>
<div class="reveal"><div class="slides">
{sections}
</div></div>
</body>
</html>
"""


def write_deck(deck: Deck, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html``, the deck, and ``out_dir/print.html``, the same slides to print
    (each whole or not at all); return the deck's path."""
    out = Path(out_dir)
    outputs.check_folder(out, "the deck's folder")
    outputs.write_text(out / "print.html", print_html(deck))
    return outputs.write_text(out / "index.html", deck_html(deck))


# ---------------------------------------------------------------- PDF through a browser


def print_pdf(page: Path, pdf: Path, browser: str | None = None, timeout: float = 120.0) -> Path:
    """Print ``page`` (the deck's ``print.html``) to ``pdf``, one page per slide, with a headless
    Chromium (or Chrome, Edge): the browser's own ``--print-to-pdf``, as the tests' browser.

    ``browser`` defaults to :func:`extras.browser`; without one, RuntimeError.
    """
    program = browser or extras.browser()
    if program is None:
        raise RuntimeError(extras.skipped(f"the PDF {pdf}", "browser"))
    outputs.check_file(pdf, "the PDF")
    with outputs.atomic_path(pdf) as temporary, tempfile.TemporaryDirectory() as profile:
        command = [
            program,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            "--virtual-time-budget=30000",
            f"--print-to-pdf={temporary}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_quiet_env())
        if done.returncode != 0 or not temporary.exists() or temporary.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"slides: {Path(program).name} could not print {page} to PDF: {last}")
    return pdf


def _quiet_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}


def pdf_pages(pdf: Path) -> int:
    """How many pages a PDF has (its /Type /Page objects), without a PDF library."""
    import re

    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))
