"""One hidden layer further: the slide after the linear softmax classifier.

A linear classifier cuts the plane into C convex regions with straight borders.
On spiral data, where the classes wrap around each other, no straight border
works: the linear softmax classifier stays near half accuracy. One hidden
layer of ReLUs bends the borders, and the same engine, the same cross-entropy
and the same gradient descent reach nearly all points:

    Z1 = W1 X + b1,   H1 = relu(Z1),   Z2 = W2 H1 + b2,   L = cross_entropy(Z2, y)

This module holds the lecture's pieces for that slide:

- :func:`build_two_layer_net`: a small two-layer net with fixed seeds, forward
  and backward run, for the graph, the backward frames and the ledger;
- :func:`compare_mlp`: autograd against finite differences for every parameter
  (there is no closed form for W1 and b1), and ``Z2.grad`` next to ``(P − Y)/N``:
  at the logits, the derivation's ``p − y`` still appears;
- :func:`run_hidden_layer`: linear vs MLP on spiral and moons, with pictures
  (the decision boundaries side by side, drawn by ``training.boundaries``).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import analytic, nn
from ... import functional as F
from ...analytic import CLASS_AXIS, Layout
from ...gradcheck import numerical_gradient, rel_error
from ...tensor import Tensor, no_grad
from ..training.boundaries import plot_decision_boundaries
from ..training.train import TrainResult, train
from .compare import BANDS, EPS, TOLERANCE, Bands

if TYPE_CHECKING:
    pass

__all__ = [
    "TwoLayerNet",
    "build_two_layer_net",
    "MLPComparison",
    "compare_mlp",
    "HiddenLayerRuns",
    "run_hidden_layer",
    "HiddenLayerSection",
    "demo_section",
    "DATASETS",
    "MODELS",
]

DTYPES = {"float64": np.float64, "float32": np.float32}
DATASETS = ("spiral", "moons")  # the two planar sets the section trains on
MODELS = ("linear", "mlp")


# ---------------------------------------------------------------- the small net for graphs and checks


@dataclass
class TwoLayerNet:
    """One forward (and backward) pass of a two-layer net, every intermediate kept by name."""

    layout: Layout
    model: nn.MLP
    X: Tensor
    labels: np.ndarray
    Z1: Tensor
    H1: Tensor
    Z2: Tensor  # the logits
    loss: Tensor

    @property
    def class_axis(self) -> int:
        return CLASS_AXIS[self.layout]

    @property
    def parameters(self) -> dict[str, Tensor]:
        return self.model.named_parameters()

    @property
    def equations(self) -> str:
        if self.layout == "column":
            return "Z1 = W1 X + b1,  H1 = relu(Z1),  Z2 = W2 H1 + b2,  L = cross_entropy(Z2, y)"
        return "Z1 = X W1 + b1,  H1 = relu(Z1),  Z2 = H1 W2 + b2,  L = cross_entropy(Z2, y)"


def build_two_layer_net(
    layout: Layout = "column",
    D: int = 2,
    H: int = 4,
    N: int = 5,
    C: int = 3,
    seed: int = 2,
    dtype: type = np.float64,
    backward: bool = True,
    inputs_require_grad: bool = False,
) -> TwoLayerNet:
    """``nn.MLP([D, H, C])`` on N random points with random labels, then the mean cross-entropy.

    Small on purpose: its graph (``tinygrad-softmax graph --model mlp``) and its
    backward frames fit a slide, and its finite differences are quick. With the
    default seed every class appears among the labels (one of them twice or more),
    and every hidden pre-activation is far enough from relu's kink at 0 for
    central differences, even float32's large step.
    """
    if layout not in CLASS_AXIS:
        raise ValueError(f"build_two_layer_net: layout must be 'column' or 'row', got {layout!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=N)
    points = rng.normal(size=(N, D))
    model = nn.MLP([D, H, C], layout=layout, rng=rng)
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    X = Tensor((points if layout == "row" else points.T).astype(dtype), inputs_require_grad, name="X")
    Z2 = model(X)
    H1 = Z2.parents[0].parents[1 if layout == "column" else 0]  # Z2 = W2 H1 + b2 or H1 W2 + b2
    Z1 = H1.parents[0]
    loss = F.cross_entropy(Z2, labels, axis=CLASS_AXIS[layout])
    loss.name = "loss"
    if backward:
        loss.backward()
    return TwoLayerNet(layout, model, X, labels, Z1, H1, Z2, loss)


# ---------------------------------------------------------------- autograd vs finite differences


@dataclass(frozen=True)
class GradientRow:
    """One tensor's gradient: autograd against central differences."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel: float
    worst_index: tuple[int, ...]
    worst_values: tuple[float, float]  # autograd, numerical
    verdict: str


@dataclass(frozen=True)
class Check:
    """A line a lecturer can point at, with the numbers that decide it."""

    name: str
    detail: str
    passed: bool


@dataclass(frozen=True)
class MLPComparison:
    """The result of :func:`compare_mlp`: one row per parameter, the logits next to the closed form."""

    layout: str
    dtype: str
    shapes: dict[str, int]  # D, H, N, C
    seed: int
    eps: float
    bands: Bands
    equations: str
    loss: float
    rows: tuple[GradientRow, ...]  # W1, b1, W2, b2 (and X): autograd vs numerical
    logits_grad: np.ndarray  # Z2.grad from the engine
    closed_form: np.ndarray  # (P − Y)/N from analytic, on the same logits
    logits_row: GradientRow  # Z2.grad vs numerical
    logits_rel: float  # rel_error(Z2.grad, (P − Y)/N)
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return (
            all(r.verdict != "WRONG" for r in (*self.rows, self.logits_row))
            and self.bands.verdict(self.logits_rel) != "WRONG"
            and all(c.passed for c in self.checks)
        )

    def title(self) -> str:
        shapes = ", ".join(f"{k}={v}" for k, v in self.shapes.items())
        where = f"{self.layout} layout, {self.dtype} ({shapes}, seed {self.seed})"
        return f"Gradient check of the two-layer net: {where}"

    NO_CLOSED_FORM = (
        "There is no closed form for the hidden layer's W1 and b1 (nor for W2 and b2 in the "
        'derivation): "Demystifying Softmax Loss" derives the linear softmax classifier only. '
        "So every parameter is checked against finite differences of the loss instead."
    )

    def conclusion(self) -> str:
        names = ", ".join(r.name for r in self.rows)
        if self.passed:
            return (
                f"PASS: autograd = finite differences for {names}; at the logits "
                "Z2.grad = (P − Y)/N, the derivation's p − y."
            )
        wrong = [r.name for r in (*self.rows, self.logits_row) if r.verdict == "WRONG"]
        broken = [c.name for c in self.checks if not c.passed]
        parts = [f"wrong gradients: {', '.join(wrong)}"] if wrong else []
        if self.bands.verdict(self.logits_rel) == "WRONG":
            parts.append("Z2.grad differs from (P − Y)/N")
        parts += [f"failed checks: {'; '.join(broken)}"] if broken else []
        return "FAIL: " + "; ".join(parts) + "."

    def _bands_line(self) -> str:
        return (
            f"relative error = max|a − b| / max(|a| + |b|); bands for {self.dtype}: ok < {self.bands.ok:.0e} "
            f"≤ suspicious < {self.bands.fail:.0e} ≤ WRONG; central differences with eps = {self.eps:g}"
        )

    def _logits_side_by_side(self) -> list[str]:
        left = _matrix(self.logits_grad).splitlines()
        right = _matrix(self.closed_form).splitlines()
        width = max(len(line) for line in [*left, "Z2.grad (autograd)"])
        lines = [f"{'Z2.grad (autograd)':<{width}}   (P − Y)/N (closed form)"]
        lines += [f"{a:<{width}}   {b}" for a, b in zip(left, right)]
        return lines

    def to_text(self) -> str:
        """The table for the terminal (under 100 columns)."""
        head = ["tensor", "shape", "max|Δ|", "rel err", "worst", "verdict"]
        body = [
            [
                r.name,
                "×".join(map(str, r.shape)),
                _num(r.max_abs),
                _num(r.rel),
                "[" + ", ".join(map(str, r.worst_index)) + "]",
                r.verdict,
            ]
            for r in (*self.rows, self.logits_row)
        ]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

        def join(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )

        lines = [self.title(), f"  {self.equations}", "", *_wrap(self.NO_CLOSED_FORM), ""]
        lines += ["autograd vs numerical:", join(head).rstrip(), "  ".join("-" * w for w in widths)]
        lines += [join(cells).rstrip() for cells in body]
        lines += ["", *_wrap(self._bands_line()), ""]
        lines += [
            "At the logits the closed form still holds: Z2.grad = (P − Y)/N, "
            f"rel err {_num(self.logits_rel)}.",
            *self._logits_side_by_side(),
            "",
            "checks:",
        ]
        for c in self.checks:
            lines += _wrap(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}", subsequent="       ")
        lines += ["", *_wrap(self.conclusion())]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """The same content as a Markdown section."""
        lines = [
            f"### {self.title()}",
            "",
            f"`{self.equations}`; loss {self.loss:.10g}.",
            "",
            self.NO_CLOSED_FORM,
            "",
            "| gradient | shape | autograd vs numerical: max\\|Δ\\| | rel. error "
            "| worst element (autograd / numerical) | verdict |",
            "|---|---|---:|---:|---|---|",
        ]
        for r in (*self.rows, self.logits_row):
            index = ", ".join(map(str, r.worst_index))
            values = " / ".join(f"{v:.6g}" for v in r.worst_values)
            verdict = r.verdict if r.verdict == "ok" else f"**{r.verdict}**"
            lines.append(
                f"| `{r.name}.grad` | {'×'.join(map(str, r.shape))} | {_num(r.max_abs)} | {_num(r.rel)} "
                f"| [{index}]: {values} | {verdict} |"
            )
        lines += [
            "",
            self._bands_line().replace("|", "\\|") + ".",
            "",
            "At the logits the closed form still holds: `Z2.grad` = (P − Y)/N, relative error "
            f"{_num(self.logits_rel)}.",
            "",
            "```",
            *self._logits_side_by_side(),
            "```",
            "",
        ]
        lines += [f"- {'✅' if c.passed else '❌'} {c.name}: {c.detail}" for c in self.checks]
        lines += ["", f"**{self.conclusion()}**", ""]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        def row(r: GradientRow) -> dict[str, Any]:
            return {
                "name": r.name,
                "shape": list(r.shape),
                "max_abs": r.max_abs,
                "rel": r.rel,
                "worst": {
                    "index": list(r.worst_index),
                    "autograd": r.worst_values[0],
                    "numerical": r.worst_values[1],
                },
                "verdict": r.verdict,
            }

        return {
            "model": "mlp",
            "layout": self.layout,
            "dtype": self.dtype,
            "shapes": self.shapes,
            "seed": self.seed,
            "eps": self.eps,
            "bands": {"ok": self.bands.ok, "fail": self.bands.fail},
            "loss": self.loss,
            "closed_form": "none for W1, b1, W2, b2; (P − Y)/N at the logits Z2",
            "rows": [row(r) for r in self.rows],
            "logits": {
                **row(self.logits_row),
                "autograd_vs_closed_form_rel": self.logits_rel,
                "autograd": self.logits_grad.tolist(),
                "closed_form": self.closed_form.tolist(),
            },
            "checks": [{"name": c.name, "detail": c.detail, "passed": c.passed} for c in self.checks],
            "passed": self.passed,
            "conclusion": self.conclusion(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def _matrix(a: np.ndarray) -> str:
    text = np.array2string(a, precision=4, suppress_small=True, floatmode="fixed", max_line_width=46)
    return text.replace("-0.0000", " 0.0000")


def _wrap(text: str, width: int = 96, subsequent: str = "") -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=subsequent)


def _gradient_row(name: str, auto: np.ndarray, numeric: np.ndarray, bands: Bands) -> GradientRow:
    gap = np.abs(auto - numeric)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(gap)), gap.shape)) if gap.size else ()
    rel = rel_error(auto, numeric)
    values = (float(auto[worst]), float(numeric[worst])) if gap.size else (0.0, 0.0)
    return GradientRow(
        name, tuple(auto.shape), float(np.max(gap, initial=0.0)), rel, worst, values, bands.verdict(rel)
    )


def compare_mlp(
    layout: Layout = "column",
    dtype: str = "float64",
    with_dx: bool = False,
    seed: int = 2,
    D: int = 2,
    H: int = 4,
    N: int = 5,
    C: int = 3,
) -> MLPComparison:
    """Autograd vs finite differences for every parameter of the two-layer net, and Z2.grad vs (P − Y)/N."""
    if dtype not in DTYPES:
        raise ValueError(f"compare: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    net = build_two_layer_net(
        layout, D=D, H=H, N=N, C=C, seed=seed, dtype=DTYPES[dtype], inputs_require_grad=with_dx
    )
    axis = net.class_axis
    eps = EPS[dtype]
    bands = BANDS[dtype]

    tensors = {**net.parameters, **({"X": net.X} if with_dx else {})}
    rows = []
    for name, t in tensors.items():
        assert t.grad is not None, f"compare_mlp: autograd left {name} empty"
        numeric = numerical_gradient(_loss_as_function_of(net, t), t.data.copy(), eps)
        rows.append(_gradient_row(name, t.grad, numeric, bands))

    # At the logits: the derivation's closed form, and central differences of the loss of Z2 alone.
    assert net.Z2.grad is not None and net.Z1.grad is not None
    closed = analytic.logits_grad(net.Z2.data, net.labels, axis)

    def loss_of_logits(z: np.ndarray) -> float:
        with no_grad():
            return F.cross_entropy(Tensor(z), net.labels, axis=axis).item()

    logits_row = _gradient_row(
        "Z2", net.Z2.grad, numerical_gradient(loss_of_logits, net.Z2.data.copy(), eps), bands
    )
    return MLPComparison(
        layout=layout,
        dtype=dtype,
        shapes={"D": D, "H": H, "N": N, "C": C},
        seed=seed,
        eps=eps,
        bands=bands,
        equations=net.equations,
        loss=net.loss.item(),
        rows=tuple(rows),
        logits_grad=net.Z2.grad.copy(),
        closed_form=closed,
        logits_row=logits_row,
        logits_rel=rel_error(net.Z2.grad, closed),
        checks=_checks(net, TOLERANCE[dtype], eps),
    )


def _loss_as_function_of(net: TwoLayerNet, t: Tensor) -> Callable[[np.ndarray], float]:
    """The loss as a function of one tensor's values, the others fixed: what finite differences perturb."""

    def loss(values: np.ndarray) -> float:
        saved = t.data
        t.data = values
        try:
            with no_grad():
                return F.cross_entropy(net.model(net.X), net.labels, axis=net.class_axis).item()
        finally:
            t.data = saved

    return loss


def _checks(net: TwoLayerNet, tol: float, eps: float) -> tuple[Check, ...]:
    """What the lecture points at, each judged on autograd's own numbers."""
    axis = net.class_axis
    sample_axis = 1 - axis
    params = net.parameters
    dz2, dz1 = net.Z2.grad, net.Z1.grad
    db2, db1 = params["b2"].grad, params["b1"].grad
    assert dz2 is not None and dz1 is not None and db2 is not None and db1 is not None
    sums = float(np.abs(dz2.sum(axis=axis)).max())
    gap2 = float(np.abs(db2 - dz2.sum(axis=sample_axis).reshape(db2.shape)).max())
    gap1 = float(np.abs(db1 - dz1.sum(axis=sample_axis).reshape(db1.shape)).max())
    # Moving one entry of W1, b1 or X by eps moves Z1 by at most eps·max(|X|, 1, |W1|): if every
    # |Z1| is larger, no relu changes side during the finite differences, and they see a smooth function.
    kink = float(np.abs(net.Z1.data).min())
    W1 = params["W1"].data
    reach = eps * max(1.0, float(np.abs(net.X.data).max()), float(np.abs(W1).max()))
    return (
        Check(
            "each sample's dZ2 sums to 0",
            f"max |Σ_classes Z2.grad| = {_num(sums)} (allowed {tol:.0e}): Σ_c (p_c − y_c) = 1 − 1",
            sums < tol,
        ),
        Check(
            "db2 = Σ over samples of dZ2",
            f"max |b2.grad − Σ_samples Z2.grad| = {_num(gap2)}: the adjoint of broadcasting b2",
            gap2 < tol,
        ),
        Check(
            "db1 = Σ over samples of dZ1",
            f"max |b1.grad − Σ_samples Z1.grad| = {_num(gap1)}: the same rule, one layer down",
            gap1 < tol,
        ),
        Check(
            "no hidden unit sits on the ReLU kink",
            f"min |Z1| = {kink:.3g} > {reach:.2g}, the most a step of eps = {eps:g} moves Z1: "
            "no relu switches during the finite differences",
            kink > reach,
        ),
    )


# ---------------------------------------------------------------- the section: linear vs MLP


@dataclass
class HiddenLayerRuns:
    """Linear vs MLP on each planar dataset: the runs, their logs, the pictures."""

    runs: dict[tuple[str, str], TrainResult] = field(default_factory=dict)  # (dataset, model) → run
    logs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)  # dataset → side-by-side picture

    def table(self) -> str:
        """A Markdown table: one row per dataset and model."""
        lines = [
            "| data | model | parameters | optimiser | epochs | loss: first → last | train acc. "
            "| test acc. |",
            "|---|---|---:|---|---:|---|---:|---:|",
        ]
        for (dataset, _), run in self.runs.items():
            count = sum(p.data.size for p in run.network.parameters()) if run.network else 0
            lines.append(
                f"| {dataset} | {run.model_name} | {count} | {run.optimizer_name} "
                f"| {run.epochs} | {run.initial_loss:.4f} → {run.train_loss[-1]:.4f} "
                f"| {100 * run.train_accuracy[-1]:.1f}% | {100 * run.test_accuracy[-1]:.1f}% |"
            )
        return "\n".join(lines) + "\n"

    def accuracy_line(self, dataset: str) -> str:
        linear, mlp = self.runs[(dataset, "linear")], self.runs[(dataset, "mlp")]
        return (
            f"{dataset}: linear softmax classifier train {100 * linear.train_accuracy[-1]:.1f}% / "
            f"test {100 * linear.test_accuracy[-1]:.1f}%; two-layer net ({mlp.hidden} hidden ReLUs) "
            f"train {100 * mlp.train_accuracy[-1]:.1f}% / test {100 * mlp.test_accuracy[-1]:.1f}%"
        )


def run_hidden_layer(
    out: str | Path | None = None,
    datasets: Sequence[str] = DATASETS,
    hidden: int = 100,
    optimizer: str = "sgd",
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> HiddenLayerRuns:
    """Train the linear softmax classifier and the two-layer net on each dataset, with the same
    split, seed and optimiser; with ``out``, draw ``<dataset>-boundaries.png`` for each (needs matplotlib)."""
    result = HiddenLayerRuns()
    for dataset in datasets:
        for model in MODELS:
            lines: list[str] = []
            # compiled: the same numbers bit for bit as the eager engine, without a graph per step
            run = train(
                dataset,
                model=model,
                hidden=hidden,
                optimizer=optimizer,
                seed=seed,
                log=lines.append,
                compiled=True,
            )
            result.runs[(dataset, model)] = run
            result.logs[(dataset, model)] = lines
        if log is not None:
            log(result.accuracy_line(dataset))
        if out is not None:
            pair = [result.runs[(dataset, m)] for m in MODELS]
            result.pictures[dataset] = plot_decision_boundaries(pair, Path(out) / f"{dataset}-boundaries.png")
    return result


# ---------------------------------------------------------------- the demo's section


@dataclass
class HiddenLayerSection:
    """What the demo's "one hidden layer further" section wrote, and the values its report text needs."""

    runs: HiddenLayerRuns
    comparison: MLPComparison
    net: TwoLayerNet
    files: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def graph_size(self) -> str:
        """The sizes of the net drawn in ``graph-mlp.png``, which the table's nets are not."""
        axis = self.net.class_axis
        D, N, H = self.net.X.shape[axis], self.net.X.shape[1 - axis], self.net.H1.shape[axis]
        hidden = self.runs.runs[("spiral", "mlp")].hidden
        return (
            f"It is drawn for a net small enough to read on a slide, D = {D} inputs, {H} hidden units and "
            f"N = {N} samples, the one whose gradients are checked below; the {hidden}-unit nets of the "
            f"table have the same nodes and edges, with {hidden} in place of {H} in the shapes."
        )

    def start_note(self) -> str:
        """Why the two-layer net's first loss is not ln C, as the linear softmax classifier's is."""
        run = self.runs.runs[("spiral", "mlp")]
        classes = run.dataset.num_classes
        return (
            f"The linear softmax classifier starts at ln C = {np.log(classes):.4f} (C = {classes}): "
            "its small "
            f"random weights give every class p ≈ 1/C. The two-layer net starts higher, at "
            f"{run.initial_loss:.4f} on the spiral: its weights are drawn for ReLUs "
            "(He: variance 2 / inputs), "
            "large enough that its first logits differ from class to class, so p is not 1/C and the first "
            "loss is the cross-entropy of those uneven guesses."
        )

    def values(self, out: Path) -> dict[str, object]:
        """``${name}`` → text for the report template."""

        def picture(name: str, alt: str) -> str:
            if (out / name).exists():
                return f"![{alt}]({name})"
            return f"*({name} was not drawn: see the notes at the end.)*"

        spiral_linear = self.runs.runs[("spiral", "linear")]
        spiral_mlp = self.runs.runs[("spiral", "mlp")]
        return {
            "hidden_table": self.runs.table(),
            "hidden_spiral_linear": f"{100 * spiral_linear.train_accuracy[-1]:.1f}%",
            "hidden_spiral_mlp": f"{100 * spiral_mlp.train_accuracy[-1]:.1f}%",
            "hidden_width": spiral_mlp.hidden,
            "hidden_spiral_picture": picture("spiral-boundaries.png", "spiral: linear vs two-layer net"),
            "hidden_moons_picture": picture("moons-boundaries.png", "moons: linear vs two-layer net"),
            "hidden_graph_picture": picture("graph-mlp.png", "computation graph of the two-layer net"),
            "hidden_graph_size": self.graph_size(),
            "hidden_start": self.start_note(),
            "hidden_equations": self.net.equations,
            "hidden_comparison": self.comparison.to_markdown(),
        }


def demo_section(out: Path, log: Callable[[str], None] = print) -> HiddenLayerSection:
    """Train linear vs MLP on spiral and moons, draw the boundaries and the net's graph, check its gradients.

    Writes ``spiral-boundaries.png``, ``moons-boundaries.png`` (matplotlib),
    ``graph-mlp.png`` (Graphviz), ``hidden-layer.json`` and ``compare-mlp.md``/``.json``.
    Without matplotlib or Graphviz their pictures are skipped; the demo reports each
    missing part once, from its own pictures.
    """
    from ..extras import have
    from ..outputs import write_text
    from ..views import viz

    # A missing matplotlib or Graphviz skips the pictures here without a word: the demo's training
    # pictures and first graph have already said so, and the policy is one line per missing part.
    runs = run_hidden_layer(out if have("matplotlib") else None, log=log)
    section = HiddenLayerSection(runs, compare_mlp(), build_two_layer_net())
    section.files += runs.pictures.values()
    if have("dot"):
        net = section.net
        section.files.append(
            viz.render(
                net.loss,
                out / "graph-mlp.png",
                clusters={"cross_entropy": (net.loss, [net.Z2])},
                collapse=True,
                compact=True,
            )
        )
    summaries = {f"{dataset}-{model}": run.summary() for (dataset, model), run in runs.runs.items()}
    section.files.append(write_text(out / "hidden-layer.json", json.dumps(summaries, indent=2) + "\n"))
    section.files.append(write_text(out / "compare-mlp.md", section.comparison.to_markdown()))
    section.files.append(write_text(out / "compare-mlp.json", section.comparison.to_json()))
    log(f"two-layer net: {section.comparison.conclusion()}")
    return section
