"""The whole lecture demo, regenerated into one folder (default ``demo-output/``).

``run_demo(out)`` writes, with fixed seeds so every run gives the same files:

- ``graph.png`` and ``graph-grads.png``: the seed's classifier as a computation graph;
- ``frames/``: one picture per backward step, and ``frames/frames.gif``;
- ``compare-column``, ``compare-row``, ``compare-float32`` (``.md`` and ``.json``):
  autograd vs closed form vs finite differences;
- ``bugs.md`` / ``bugs.json``: every injected backward bug and the check that caught it;
- ``train-iris.json``, ``train-digits.json`` and their pictures;
- ``report.md``: all of it tied together with the formulas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import analytic
from ..analytic import Layout
from ..engine import topological_order
from . import bugs
from .classifier import Classifier, build_classifier
from .compare import Comparison, compare
from .ledger import explain
from .train import TrainResult, save_pictures, train

__all__ = ["DemoResult", "run_demo", "COMPARISONS"]

# name in the output folder: (layout, dtype)
COMPARISONS: dict[str, tuple[Layout, str]] = {
    "column": ("column", "float64"),
    "row": ("row", "float64"),
    "float32": ("column", "float32"),
}
SHOWN_BUG = "missing-one-hot"  # the failing table printed in full in the report


@dataclass
class DemoResult:
    """What the demo produced, for the command line and the tests."""

    out: Path
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    bug_comparisons: dict[str, Comparison] = field(default_factory=dict)
    trainings: dict[str, TrainResult] = field(default_factory=dict)
    training_logs: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # everything written, pictures included
    problems: list[str] = field(default_factory=list)  # what could not be drawn, and why

    @property
    def passed(self) -> bool:
        """Every real comparison passes and every injected bug is caught."""
        return all(c.passed for c in self.comparisons.values()) and not any(
            c.passed for c in self.bug_comparisons.values()
        )


def _write(result: DemoResult, name: str, text: str) -> None:
    path = result.out / name
    path.write_text(text, encoding="utf-8")
    result.files.append(path)


def _draw_graphs(model: Classifier, out: Path, result: DemoResult) -> None:
    """The graph pictures and the backward frames; without Graphviz or Pillow, say so and go on."""
    from . import viz

    try:
        import PIL  # noqa: F401

        gif = True
    except ImportError:
        gif = False
        result.problems.append(
            "Pillow is missing, so the frames have no animated GIF: pip install 'tinygrad_softmax[demo]'"
        )
    try:
        result.files.append(viz.render(model.loss, out / "graph.png"))
        result.files.append(viz.render(model.loss, out / "graph-grads.png", show_grads=True))
        result.files += viz.backward_frames(model.loss, out / "frames", gif=gif)
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
        if name == "column":  # the seed's own layout: the table the lecture points at, in full
            log(comparison.to_text())
        else:
            log(f"{layout} layout, {dtype}: {comparison.conclusion()}")

    for bug in bugs.BUGS:
        result.bug_comparisons[bug] = compare("column", "float64", bug=bug)
    _write(result, "bugs.md", _bugs_markdown(result.bug_comparisons))
    _write(
        result,
        "bugs.json",
        json.dumps({k: c.to_dict() for k, c in result.bug_comparisons.items()}, indent=2, ensure_ascii=False)
        + "\n",
    )
    caught = sum(not c.passed for c in result.bug_comparisons.values())
    log(f"injected backward bugs caught by the check: {caught} of {len(bugs.BUGS)}")

    try:
        import matplotlib  # noqa: F401

        have_matplotlib = True
    except ImportError:
        have_matplotlib = False
        result.problems.append(
            "matplotlib is not installed, so the training pictures were skipped: "
            "pip install 'tinygrad_softmax[demo]'"
        )
    for dataset in ("iris", "digits"):
        lines: list[str] = []
        run = train(dataset, log=lines.append)
        result.trainings[dataset] = run
        result.training_logs[dataset] = lines
        log(lines[-1])
        _write(result, f"train-{dataset}.json", json.dumps(run.summary(), indent=2) + "\n")
        if have_matplotlib:
            result.files += save_pictures(run, out)

    _write(result, "report.md", _report(model, result))
    for problem in result.problems:
        log(problem)
    log(f"wrote {out / 'report.md'} and {len(result.files) - 1} more files into {out}/")
    return result


# ---------------------------------------------------------------- the report


def _matrix(a: np.ndarray) -> str:
    return np.array2string(a, precision=4, suppress_small=True, floatmode="fixed", max_line_width=100)


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


def _report(model: Classifier, result: DemoResult) -> str:
    out = result.out
    C, N = model.Z.shape
    D = model.X.shape[0]
    P = analytic.softmax(model.Z.data, axis=0)
    Y = analytic.one_hot(model.labels, C, axis=0)
    assert model.Z.grad is not None and model.W.grad is not None and model.b.grad is not None
    frames = sorted((out / "frames").glob("*.png")) if (out / "frames").is_dir() else []
    gif = out / "frames" / "frames.gif"
    iris, digits = result.trainings["iris"], result.trainings["digits"]
    ops = ", ".join(f"`{t.op}`" for t in topological_order(model.loss) if t.op)
    sanity_blind = [name for name, c in result.bug_comparisons.items() if all(s.passed for s in c.sanity)]

    def picture(name: str, alt: str) -> str:
        return (
            f"![{alt}]({name})"
            if (out / name).exists()
            else f"*({name} was not drawn: see the notes at the end.)*"
        )

    text = f"""# Reverse-mode autodiff rediscovers dz = p − y

This folder is written by `tinygrad-softmax demo` and nothing in it is written by hand:
run the command again and every file comes back the same (fixed seeds).
The derivation it checks is the one in `docs/derivation.md`.

## 1. The classifier and its graph

The seed's softmax linear classifier in the **column layout**, with D = {D} features,
N = {N} samples and C = {C} classes (`lecture.build_classifier`, seed 0):

| symbol | shape | meaning |
|---|---|---|
| X | {D}×{N} | one sample per column |
| W | {C}×{D} | weights |
| b | {C}×1 | bias, broadcast over the {N} columns |
| Z = W X + b | {C}×{N} | logits |
| P = softmax(Z) over axis 0 | {C}×{N} | probabilities |
| L = −(1/N) Σᵢ log P[yᵢ, i] | scalar | mean cross-entropy |

The engine builds L only from primitive ops, in this order: {ops}.
Nobody wrote `p − y` anywhere.

{picture("graph.png", "computation graph of the classifier")}

Labels y = {model.labels.tolist()}; loss L = {model.loss.item():.6f}.

## 2. What backward found

After `loss.backward()` the engine has a gradient on every tensor, the logits included.
The seed's derivation says it must be dZ = (P − Y)/N:

P = softmax(Z):
```
{_matrix(P)}
```
Y = one-hot labels:
```
{np.array2string(Y.astype(int))}
```
(P − Y)/N, the closed form:
```
{_matrix((P - Y) / N)}
```
Z.grad, what the chain rule produced through exp, sum, log and gather:
```
{_matrix(model.Z.grad)}
```
Each column sums to 0 (Σ_c p_c = 1 and Σ_c y_c = 1 over the classes c). Then the matmul's backward gives
W.grad = dZ Xᵀ, and the adjoint of broadcasting b over the N columns sums them, b.grad = Σᵢ dZ[:, i]:
```
b.grad          = {_matrix(model.b.grad.ravel())}
Σ_i Z.grad[:, i] = {_matrix(model.Z.grad.sum(axis=1))}
```

{picture("graph-grads.png", "the graph with every gradient written on its tensor")}

## 3. Backward, one step at a time

The walk visits the graph in reverse topological order; each frame shows one application of the
chain rule, the gradient just computed written on the highlighted node ({len(frames)} frames).

{f"![backward, step by step](frames/{gif.name})" if gif.exists() else picture("frames/frames.gif", "frames")}

The same walk as a table: every op's local rule, and what it sends back to its inputs.

{explain(model.loss, markdown=True, reference=(model.Z, model.labels, model.class_axis))}

## 4. Three witnesses: autograd, closed form, finite differences

Every gradient is computed three ways: the engine's backward, the seed's formulas in
`analytic` (dZ = (P − Y)/N, dW = dZ Xᵀ, db = Σᵢ dZ[:, i], dX = Wᵀ dZ), and central differences
of the forward loss. Relative error = max|a − b| / max(|a| + |b|). Files: `compare-*.md`, `compare-*.json`.

"""
    for comparison in result.comparisons.values():
        text += comparison.to_markdown() + "\n"

    shown = result.bug_comparisons[SHOWN_BUG]
    text += f"""## 5. What a failing check looks like

`tinygrad-softmax compare --inject-bug NAME` builds the same graph with one op's backward rule
replaced by a wrong one (`tinygrad_softmax/bugs.py`; the engine is never changed). The forward
pass, and so the loss and the numerical gradient, stay right; autograd goes wrong, and the check says where.

{_bugs_markdown(result.bug_comparisons)}
The sanity lines alone miss {_and(f"`{b}`" for b in sanity_blind) or "none of them"}: a gradient can be
wrong and still sum to 0 over the classes. Only the comparison with independent witnesses catches every bug.

The whole table for `{SHOWN_BUG}` ({bugs.get(SHOWN_BUG).symptom}):

{shown.to_markdown()}
## 6. Training on real data

The same forward and backward, repeated: full-batch gradient descent W ← W − lr·dW, b ← b − lr·db
on standardised features, 75% of each class for training and 25% held out (seed 0).
The loss starts at ln C, because small random weights give every class p ≈ 1/C.

| dataset | train / test | D | C | epochs | lr | loss: first → last (ln C) | train acc. | test acc. |
|---|---|---|---|---|---|---|---|---|
"""
    for run in (iris, digits):
        s = run.summary()
        text += (
            f"| {run.dataset.name} | {run.train_size} / {run.test_size} | {s['features']} | {s['classes']} "
            f"| {run.epochs} | {run.lr} | {run.initial_loss:.4f} → {run.train_loss[-1]:.4f} "
            f"({s['ln_C']:.4f}) | {100 * run.train_accuracy[-1]:.1f}% "
            f"| {100 * run.test_accuracy[-1]:.1f}% |\n"
        )
    text += f"""
Digits, as the command printed it:
```
{chr(10).join(result.training_logs["digits"])}
```

{picture("iris-loss.png", "iris: loss and accuracy")}

{picture("digits-loss.png", "digits: loss and accuracy")}

Each row of W is one class's template: the logit z_c = W[c] · x + b_c is large when the image
looks like the template. Drawn as 8×8 images (weights on standardised pixels):

{picture("digits-weights.png", "rows of W as images")}

## Files

"""
    files = sorted({p.relative_to(out).as_posix() for p in result.files} | {"report.md"})
    files += ["frames/frames.gif"] if gif.exists() and "frames/frames.gif" not in files else []
    text += "\n".join(f"- `{f}`" for f in files if not (f.startswith("frames/") and f.endswith(".png")))
    if frames:
        text += f"\n- `frames/`: {len(frames)} PNG frames, one per backward step"
    if result.problems:
        text += "\n\n## Notes\n\n" + "\n\n".join(f"```\n{p}\n```" for p in result.problems)
    return text + "\n"
