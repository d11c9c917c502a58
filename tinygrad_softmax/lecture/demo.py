"""The whole lecture demo, regenerated into one folder (default ``demo-output/``).

``run_demo(out)`` writes, with fixed seeds so every run gives the same files:

- ``graph.png`` and ``graph-grads.png``: the linear softmax classifier as a computation graph;
- ``frames/``: one picture per backward step, and ``frames/frames.gif``;
- ``explorer.html``: the same walk in a browser, one step per key press (offline, one file);
- ``compare-column``, ``compare-row``, ``compare-float32`` (``.md`` and ``.json``):
  autograd vs closed form vs finite differences;
- ``bugs.md`` / ``bugs.json``: every injected backward bug and the check that caught it;
- ``train-iris.json``, ``train-digits.json`` and their pictures;
- one hidden layer further: ``spiral-boundaries.png``, ``moons-boundaries.png``
  (linear vs two-layer net), ``graph-mlp.png``, ``hidden-layer.json``, ``compare-mlp.md``/``.json``;
- second order: ``hessian-column.png``, ``newton-iris.png``, ``modes.png``, ``second-order.txt``;
- ``report.md``: all of it tied together with the formulas.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .. import analytic
from ..analytic import Layout
from ..engine import topological_order
from . import extras, outputs
from .derive import Derivation, Problem, derive_model
from .derive import report as derive_report
from .derive.slide import write_formula_png
from .lessons import bugs
from .lessons.broadcast import bias_adjoint
from .lessons.compare import Comparison, compare
from .lessons.hidden_layer import HiddenLayerSection, demo_section
from .lessons.second_order import SecondOrderSection
from .lessons.second_order import demo_section as second_order_section
from .numbers import array_text
from .training.classifier import Classifier, build_classifier
from .training.train import TrainResult, save_pictures, train
from .views.ledger import explain

__all__ = ["DemoResult", "run_demo", "COMPARISONS"]

# name in the output folder: (layout, dtype)
COMPARISONS: dict[str, tuple[Layout, str]] = {
    "column": ("column", "float64"),
    "row": ("row", "float64"),
    "float32": ("column", "float32"),
}
SHOWN_BUG = "missing-one-hot"  # the failing table printed in full in the report
BIAS_PICTURE = "bias-gradient.png"  # ∂L/∂Z summed to ∂L/∂b, next to the two usual mistakes


@dataclass
class DemoResult:
    """What the demo produced, for the command line and the tests."""

    out: Path
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    bug_comparisons: dict[str, Comparison] = field(default_factory=dict)
    trainings: dict[str, TrainResult] = field(default_factory=dict)
    training_logs: dict[str, list[str]] = field(default_factory=dict)
    hidden_layer: HiddenLayerSection | None = None
    second_order: SecondOrderSection | None = None
    derivation: Derivation | None = None
    files: list[Path] = field(default_factory=list)  # everything written, pictures included
    problems: list[str] = field(default_factory=list)  # what could not be drawn, and why

    @property
    def passed(self) -> bool:
        """Every real comparison passes and every injected bug is caught."""
        hidden = self.hidden_layer is None or self.hidden_layer.passed
        second = self.second_order is None or self.second_order.passed
        return (
            hidden
            and second
            and all(c.passed for c in self.comparisons.values())
            and not any(c.passed for c in self.bug_comparisons.values())
        )


def _write(result: DemoResult, name: str, text: str) -> None:
    result.files.append(outputs.write_text(result.out / name, text))  # whole, or the old file kept


def _draw_graphs(model: Classifier, out: Path, result: DemoResult) -> None:
    """The graph pictures, the backward frames and the explorer page; without Graphviz or Pillow,
    say so and go on."""
    from .views import explorer, viz

    gif = extras.have("Pillow")
    if not gif:
        result.problems.append(extras.skipped(f"the animated GIF {out / 'frames' / 'frames.gif'}", "Pillow"))
    # The same drawing as `tinygrad-softmax graph`: cross_entropy's ops in a dashed box.
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    for name, grads in (("graph.png", False), ("graph-grads.png", True)):
        try:  # slide-fit, as the command draws it by default
            result.files.append(viz.render(model.loss, out / name, clusters=clusters, show_grads=grads))
        except viz.GraphvizNotFoundError as missing:
            result.problems.append(str(missing))
    try:
        # Slide-fit too: compact, with cross_entropy one box, as `tinygrad-softmax animate` draws it.
        result.files += viz.backward_frames(model.loss, out / "frames", gif=gif, clusters=clusters)
        if gif:  # backward_frames returns the frames; the GIF it writes beside them is a file too
            result.files.append(out / "frames" / "frames.gif")
        result.files.append(explorer.classifier_page(model, out / "explorer.html"))
    except viz.GraphvizNotFoundError as missing:
        result.problems.append(str(missing))


def run_demo(out: str | Path = "demo-output", log: Callable[[str], None] = print) -> DemoResult:
    """Run every part of the lecture demo into ``out`` and write ``report.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)

    model = build_classifier("column")
    _draw_graphs(model, out, result)

    for name, (layout, dtype) in COMPARISONS.items():
        comparison = compare(layout, dtype, with_dx=True)
        result.comparisons[name] = comparison
        _write(result, f"compare-{name}.md", comparison.to_markdown())
        _write(result, f"compare-{name}.json", comparison.to_json())
        if name == "column":  # the derivation's own layout: the table the lecture points at, in full
            log(comparison.to_text())
        else:
            log(f"{layout} layout, {dtype}: {comparison.conclusion()}")

    for bug in bugs.BUGS:
        result.bug_comparisons[bug] = compare("column", "float64", with_dx=True, bug=bug)
    _write(result, "bugs.md", _bugs_markdown(result.bug_comparisons))
    _write(
        result,
        "bugs.json",
        json.dumps({k: c.to_dict() for k, c in result.bug_comparisons.items()}, indent=2, ensure_ascii=False)
        + "\n",
    )
    caught = sum(not c.passed for c in result.bug_comparisons.values())
    log(f"injected backward bugs caught by the check: {caught} of {len(bugs.BUGS)}")

    have_matplotlib = extras.have("matplotlib")
    if not have_matplotlib:
        # one line for every plot the demo draws: the formula, training, decision boundaries, second order
        result.problems.append(
            extras.skipped(
                "the plots (formula slide, bias gradient, training, decision boundaries, Hessian, Newton, "
                "modes)",
                "matplotlib",
            )
        )
    for dataset in ("iris", "digits"):
        lines: list[str] = []
        # compiled: the same numbers bit for bit, about twice as fast on Iris (docs/compile.md)
        run = train(dataset, log=lines.append, compiled=True)
        result.trainings[dataset] = run
        result.training_logs[dataset] = lines
        log(lines[-1])
        _write(result, f"train-{dataset}.json", json.dumps(run.summary(), indent=2) + "\n")
        if have_matplotlib:
            result.files += save_pictures(run, out)

    result.derivation = derive_model(Problem())  # the classifier's sizes and seed; raises if a formula is off
    _write(result, "formula.txt", derive_report.to_text(result.derivation))
    _write(result, "formula.tex", derive_report.to_latex(result.derivation))
    if have_matplotlib:
        result.files.append(write_formula_png(result.derivation, out / "formula.png"))
    dz = derive_report.unicode_line(result.derivation, result.derivation.formula("Z"))
    tolerance = derive_report.TOLERANCE
    log(f"derived from the graph: {dz}; every formula equals the engine's gradient to {tolerance:g}")

    if have_matplotlib:  # the adjoint of broadcasting: the sum that makes db, next to the usual mistakes
        from .lessons.broadcast import plot_bias_adjoint

        assert model.Z.grad is not None
        result.files.append(plot_bias_adjoint(model.Z.grad, out / BIAS_PICTURE))

    result.hidden_layer = demo_section(out, log)
    result.files += result.hidden_layer.files
    result.second_order = second_order_section(out, log)
    result.files += result.second_order.files

    _write(result, "report.md", _report(model, result))
    others = {Path(f) for f in result.files} - {out / "report.md"}
    log(f"wrote {out / 'report.md'} and {len(others)} more files into {out}/")
    for problem in result.problems:  # last, one line each: what was skipped and how to install it
        log(problem)
    return result


# ---------------------------------------------------------------- the report


def _matrix(a: np.ndarray) -> str:
    return array_text(a, precision=4, suppress_small=True, floatmode="fixed", max_line_width=100)


def _inline(a: np.ndarray) -> str:
    """A small array on one line: ``[-0.196, -0.018, 0.214]``."""
    return "[" + ", ".join(f"{v:.3f}".replace("-0.000", "0.000") for v in np.ravel(a)) + "]"


def _and(words: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(words)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _bugs_markdown(found: dict[str, Comparison]) -> str:
    lines = [
        "| injected bug | the mistake | wrong gradients | failed sanity lines | caught |",
        "|---|---|---|---|---|",
    ]
    for name, comparison in found.items():
        wrong = ", ".join(f"`{r.name}`" for r in comparison.rows if r.verdict == "WRONG") or "none"
        broken = "; ".join(s.name for s in comparison.sanity if not s.passed) or "none"
        caught = "yes" if not comparison.passed else "**NO**"
        lines.append(f"| `{name}` | {bugs.get(name).summary} | {wrong} | {broken} | {caught} |")
    return "\n".join(lines) + "\n"


REPORT_TEMPLATE = "report.md"  # in this package: Markdown with ${name} for every value below


def _report(model: Classifier, result: DemoResult) -> str:
    """``report.md``: the template filled with the values of every section.

    To add a section, write its Markdown into the template, with ``${name}``
    where a value goes, and return those names from a ``_..._values`` function
    called here. A name missing from the values is an error, not a blank.
    """
    template = string.Template(resources.files(__package__).joinpath(REPORT_TEMPLATE).read_text("utf-8"))
    values = {
        **_classifier_values(model, result.out),
        **_gradient_values(model, result.out),
        **_walk_values(model, result.out),
        **_witness_values(result),
        **_bug_values(result),
        **_training_values(result),
        **_derived_values(result),
        **(result.hidden_layer.values(result.out) if result.hidden_layer else {}),
        **(result.second_order.values(result.out) if result.second_order else {}),
        "files": _files_section(result),
    }
    return template.substitute(values)


def _picture(out: Path, name: str, alt: str) -> str:
    """A Markdown image with its alt text, the same words written under it for every reader,
    or a note that the picture could not be drawn."""
    return (
        f"![{alt}]({name})\n\n*{alt}*"
        if (out / name).exists()
        else f"*({name} was not drawn: see the notes at the end.)*"
    )


def _classifier_values(model: Classifier, out: Path) -> dict[str, object]:
    """Section 1: the classifier's sizes, its ops, its graph."""
    C, N = model.Z.shape
    return {
        "D": model.X.shape[0],
        "N": N,
        "C": C,
        "ops": ", ".join(f"`{t.op}`" for t in topological_order(model.loss) if t.op),
        "graph_picture": _picture(
            out,
            "graph.png",
            f"The computation graph of the classifier: W ({C}×{model.X.shape[0]}) and X go into matmul, "
            f"b ({C}×1) is added to give Z ({C}×{N}), and the ops of cross_entropy (in a dashed box) "
            "take Z to the scalar loss.",
        ),
        "labels": model.labels.tolist(),
        "loss": f"{model.loss.item():.6f}",
    }


def _gradient_values(model: Classifier, out: Path) -> dict[str, object]:
    """Section 2: Z.grad next to the closed form (P − Y)/N, and b.grad = Σᵢ dZ[:, i]."""
    assert model.Z.grad is not None and model.b.grad is not None
    C, N = model.Z.shape
    P = analytic.softmax(model.Z.data, axis=0)
    Y = analytic.one_hot(model.labels, C, axis=0)
    return {
        "P": _matrix(P),
        "Y": np.array2string(Y.astype(int)),
        "closed_form": _matrix((P - Y) / N),
        "Z_grad": _matrix(model.Z.grad),
        "b_grad": _matrix(model.b.grad.ravel()),
        "Z_grad_sum": _matrix(model.Z.grad.sum(axis=1)),
        "grads_picture": _picture(
            out,
            "graph-grads.png",
            "The same graph with every gradient written on its tensor: ∂loss/∂Z is the matrix (P − Y)/N "
            f"above, b.grad its row sums {_inline(model.b.grad)}, and X, which needs no gradient, has none.",
        ),
        "bias_picture": _picture(out, BIAS_PICTURE, bias_adjoint(model.Z.grad).alt),
    }


def _walk_values(model: Classifier, out: Path) -> dict[str, object]:
    """Section 3: the backward frames and the chain-rule ledger."""
    frames = sorted((out / "frames").glob("*.png")) if (out / "frames").is_dir() else []
    alt = (
        f"The backward walk, one frame per step ({len(frames)} steps): inside cross_entropy its steps "
        "(Z − max, exp, S = Σ exp, log S, log P, log P[y], −L) are drawn with their values, the linear part "
        "as one box Z = W X + b; from Z back, W, X, b and the add are drawn and cross_entropy is one box. "
        "The node being processed has a thick orange border and shows the gradient that just reached it; "
        "arrows not travelled yet are dashed."
    )
    animation = _picture(out, "frames/frames.gif", alt)
    reference = (model.Z, model.labels, model.class_axis)
    explorer = (
        "[explorer.html](explorer.html): open it in a browser (offline, one file), step with → and ←, "
        "hover a node to read its values and gradient; End sets ∂loss/∂Z next to (P − Y)/N."
        if (out / "explorer.html").exists()
        else "*(explorer.html was not drawn: see the notes at the end.)*"
    )
    return {
        "frame_count": len(frames),
        "frames_picture": animation,
        "explorer_link": explorer,
        "ledger": explain(model.loss, markdown=True, reference=reference),
    }


def _witness_values(result: DemoResult) -> dict[str, object]:
    """Section 4: the comparison tables, one per layout and dtype."""
    return {"comparisons": "\n".join(c.to_markdown() for c in result.comparisons.values())}


def _bug_values(result: DemoResult) -> dict[str, object]:
    """Section 5: every injected bug, which check caught it, and one failing table in full."""
    sanity_blind = [name for name, c in result.bug_comparisons.items() if all(s.passed for s in c.sanity)]
    return {
        "bugs_table": _bugs_markdown(result.bug_comparisons),
        "sanity_blind": _and(f"`{b}`" for b in sanity_blind) or "none of them",
        "shown_bug": SHOWN_BUG,
        "shown_symptom": bugs.get(SHOWN_BUG).symptom,
        "shown_table": result.bug_comparisons[SHOWN_BUG].to_markdown(),
    }


def _training_values(result: DemoResult) -> dict[str, object]:
    """Section 6: one table row per dataset, the digits log, the pictures."""
    rows = []
    for run in (result.trainings["iris"], result.trainings["digits"]):
        s = run.summary()
        rows.append(
            f"| {run.dataset.name} | {run.train_size} / {run.test_size} | {s['features']} | {s['classes']} "
            f"| {run.epochs} | {run.lr} | {run.initial_loss:.4f} → {run.train_loss[-1]:.4f} "
            f"({s['ln_C']:.4f}) | {100 * run.train_accuracy[-1]:.1f}% "
            f"| {100 * run.test_accuracy[-1]:.1f}% |"
        )
    out = result.out
    return {
        "training_rows": "\n".join(rows),
        "digits_log": "\n".join(result.training_logs["digits"]),
        "iris_picture": _picture(out, "iris-loss.png", "iris: loss and accuracy"),
        "digits_loss_picture": _picture(out, "digits-loss.png", "digits: loss and accuracy"),
        "digits_weights_picture": _picture(out, "digits-weights.png", "rows of W as images"),
    }


def _derived_values(result: DemoResult) -> dict[str, object]:
    """Section 2's end: the formula the engine derives from the graph (``tinygrad-softmax derive``)."""
    d = result.derivation
    assert d is not None
    return {
        "derived": derive_report.to_markdown(d),
        "formula_picture": _picture(result.out, "formula.png", "the derived formulas on a slide"),
    }


def _files_section(result: DemoResult) -> str:
    """Every file written (the frames counted, not listed), then any notes on what was skipped."""
    out = result.out
    frames = sorted((out / "frames").glob("*.png")) if (out / "frames").is_dir() else []
    files = sorted({p.relative_to(out).as_posix() for p in result.files} | {"report.md"})
    text = "\n".join(f"- `{f}`" for f in files if not (f.startswith("frames/") and f.endswith(".png")))
    if frames:
        text += f"\n- `frames/`: {len(frames)} PNG frames, one per backward step"
    if result.problems:
        text += "\n\n## Notes\n\n" + "\n\n".join(f"```\n{p}\n```" for p in result.problems)
    return text
