"""Lab tools for the lecture: Jacobians, the "why we subtract the max" demo, the float32 lesson.

* :func:`jacobian` builds the full Jacobian of any function of one Tensor by
  reverse mode, one backward walk per output element. The softmax demo checks
  it against the closed form ``diag(p) − p pᵀ`` and multiplies it by
  ``∂L/∂p = −y/p`` to land on ``p − y``.
* :func:`naive_cross_entropy` is softmax cross-entropy written the textbook way,
  without the shift. At logits of 1000 ``exp`` overflows; :func:`anomaly_demo`
  catches it with ``detect_anomaly()`` and draws the offending node in red.
* :func:`epsilon_sweep` measures how the central-difference gradient's error
  depends on the step ``eps`` in float32 and float64: too big a step and the
  Taylor series bites (truncation, ∝ eps²), too small and rounding does
  (∝ machine epsilon / eps). The valley between is why gradchecks use float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import analytic
from ... import functional as F
from ...anomaly import AnomalyError, detect_anomaly
from ...derivatives import jacobian
from ...engine import topological_order
from ...gradcheck import numerical_gradient, rel_error
from ...tensor import Tensor, no_grad
from ..numbers import array_text
from ..outputs import atomic_path
from ..training.classifier import Classifier, build_classifier, logits

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "jacobian",
    "numerical_jacobian",
    "SoftmaxJacobianDemo",
    "softmax_jacobian_demo",
    "format_softmax_jacobian",
    "naive_cross_entropy",
    "AnomalyDemo",
    "anomaly_demo",
    "format_anomaly_demo",
    "EPSILONS",
    "SweepRow",
    "epsilon_sweep",
    "best_epsilon",
    "format_epsilon_sweep",
    "epsilon_figure",
    "plot_epsilon_sweep",
]

# ---------------------------------------------------------------- Jacobians


def numerical_jacobian(f: Callable[[Tensor], Tensor], x: Tensor | Any, eps: float = 1e-6) -> np.ndarray:
    """J by central differences: row i is ``gradcheck.numerical_gradient`` of output element i.

    J[i, j] = (f_i(x + eps e_j) − f_i(x − eps e_j)) / 2 eps. Same shape convention
    as :func:`jacobian`; use float64 inputs.
    """
    base = np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64)

    def output(a: np.ndarray) -> np.ndarray:
        with no_grad():
            return f(Tensor(a)).data

    def element(i: int) -> Callable[[np.ndarray], float]:
        return lambda a: float(output(a).reshape(-1)[i])

    out_shape = output(base).shape
    rows = [numerical_gradient(element(i), base, eps) for i in range(int(np.prod(out_shape)))]
    return np.array(rows).reshape(out_shape + base.shape)


@dataclass
class SoftmaxJacobianDemo:
    """The softmax Jacobian three ways, and the chain rule that turns it into p − y."""

    z: np.ndarray  # logits, shape (C,)
    label: int  # the true class y
    p: np.ndarray  # softmax(z)
    y: np.ndarray  # one-hot label
    engine_jacobian: np.ndarray  # jacobian(F.softmax, z), C×C
    closed_form: np.ndarray  # diag(p) − p pᵀ
    finite_differences: np.ndarray  # numerical_jacobian(F.softmax, z)
    dL_dp: np.ndarray  # ∂L/∂p for L = −log p_y: −y/p
    chain: np.ndarray  # Jᵀ · ∂L/∂p = ∂L/∂z
    p_minus_y: np.ndarray  # the derivation's dz

    @property
    def closed_form_error(self) -> float:
        return float(np.max(np.abs(self.engine_jacobian - self.closed_form)))

    @property
    def finite_difference_error(self) -> float:
        return rel_error(self.engine_jacobian, self.finite_differences)

    @property
    def chain_error(self) -> float:
        return float(np.max(np.abs(self.chain - self.p_minus_y)))


# The demo holds about this many C×C float64 matrices at once (the engine's rows and their stack, the
# closed form and p pᵀ, the finite differences and their columns); its size is known before any work.
JACOBIAN_MATRICES = 6
MAX_JACOBIAN_BYTES = 2**30


def jacobian_demo_bytes(classes: int) -> int:
    """Memory the softmax Jacobian demo needs for ``classes`` classes, in bytes."""
    return JACOBIAN_MATRICES * 8 * classes * classes


def softmax_jacobian_demo(classes: int = 4, seed: int = 0) -> SoftmaxJacobianDemo:
    """For random logits z: the engine's ∂p/∂z equals diag(p) − p pᵀ, and Jᵀ(−y/p) = p − y."""
    if classes < 2:
        raise ValueError(f"jacobian demo: needs at least 2 classes, got {classes}")
    if jacobian_demo_bytes(classes) > MAX_JACOBIAN_BYTES:
        raise ValueError(
            f"jacobian demo: {classes} classes need {jacobian_demo_bytes(classes) / 2**30:.1f} GiB "
            f"of C×C matrices, more than {MAX_JACOBIAN_BYTES / 2**30:.0f} GiB"
        )
    rng = np.random.default_rng(seed)
    z = rng.normal(size=classes)
    label = int(rng.integers(classes))
    p = analytic.softmax(z)
    y = analytic.one_hot(np.array(label), classes)
    engine_jacobian = jacobian(F.softmax, Tensor(z, name="z"))
    # L = −log p_y depends on p only through p_y:  ∂L/∂p_i = −y_i / p_i (written so 0 prints as 0, not −0).
    dL_dp = np.where(y > 0, -1.0 / p, 0.0)
    return SoftmaxJacobianDemo(
        z=z,
        label=label,
        p=p,
        y=y,
        engine_jacobian=engine_jacobian,
        closed_form=np.diag(p) - np.outer(p, p),
        finite_differences=numerical_jacobian(F.softmax, z),
        dL_dp=dL_dp,
        chain=engine_jacobian.T @ dL_dp,
        p_minus_y=p - y,
    )


def _matrix(a: np.ndarray, indent: str = "    ") -> str:
    text = array_text(a, precision=4, suppress_small=True, floatmode="fixed", sign=" ")
    return "\n".join(indent + line for line in text.splitlines())


def format_softmax_jacobian(demo: SoftmaxJacobianDemo) -> str:
    """The demo as a short printed lecture."""
    return "\n".join(
        [
            f"Logits z ({demo.z.size} classes) and the true class y = {demo.label}:",
            _matrix(demo.z),
            "p = softmax(z):",
            _matrix(demo.p),
            "",
            "Engine's Jacobian ∂p/∂z (one backward walk per output p_i, rows stacked):",
            _matrix(demo.engine_jacobian),
            "Closed form diag(p) − p pᵀ:",
            _matrix(demo.closed_form),
            f"  {'max |engine − closed form|':37} = {demo.closed_form_error:.2e}",
            f"  {'rel_error(engine, finite differences)':37} = {demo.finite_difference_error:.2e}",
            "",
            "Chain rule for L = −log p_y:  ∂L/∂z = (∂p/∂z)ᵀ · ∂L/∂p  with  ∂L/∂p = −y/p:",
            "  ∂L/∂p      =" + _matrix(demo.dL_dp, indent=" "),
            "  Jᵀ · ∂L/∂p =" + _matrix(demo.chain, indent=" "),
            "  p − y      =" + _matrix(demo.p_minus_y, indent=" "),
            f"  max |Jᵀ · ∂L/∂p − (p − y)| = {demo.chain_error:.2e}",
        ]
    )


# ---------------------------------------------------------------- anomaly demo


def naive_cross_entropy(logits: Tensor, labels: Any, axis: int = -1) -> Tensor:
    """L = −(1/N) Σ log( exp(z_y) / Σ_j exp(z_j) ), written without subtracting the max.

    Mathematically equal to ``functional.cross_entropy``; numerically, exp(z)
    overflows to Inf once z > 709.78 in float64 (88.72 in float32), and
    Inf / Inf is NaN.
    """
    labels = F.check_labels(labels, logits.shape, axis, "naive_cross_entropy")
    e = logits.exp()
    p = e / e.sum(axis=axis, keepdims=True)
    return -p.log().gather(axis, np.expand_dims(labels, axis)).mean()


@dataclass
class AnomalyDemo:
    """The naive softmax caught by detect_anomaly, and the stable one beside it."""

    shift: float  # added to every logit: softmax does not change, exp does
    logits_range: tuple[float, float]
    silent_loss: float  # the naive loss without detect_anomaly: NaN, no error
    error: AnomalyError  # what detect_anomaly raised for the naive version
    stable_loss: float  # functional.cross_entropy at the same logits
    unshifted_loss: float  # the same classifier without the shift
    stable_grad_error: float  # max |Z.grad − (P − Y)/N| for the stable version
    graph_path: Path | None  # the naive graph with the offending node in red
    stable_graph_path: Path | None  # the stable graph up to its exp, the values that stay ≤ 1 written on
    skipped: list[str] = field(default_factory=list)  # pictures not drawn (no `dot`), one line each


def anomaly_demo(
    out_dir: str | Path | None = None,
    shift: float = 1000.0,
    seed: int = 0,
    D: int = 4,
    N: int = 5,
    C: int = 3,
    labels: Any = None,  # a Sequence[int] of the classes, one per sample; None: drawn at random
) -> AnomalyDemo:
    """Why we subtract the max: the linear softmax classifier with every logit shifted by ``shift``.

    ``Z = W X + b`` with ``b = shift`` in every class, so the probabilities,
    the loss and the gradient are those of the unshifted classifier. The
    naive cross-entropy overflows in ``exp``; ``detect_anomaly()`` names that
    op. The stable ``functional.cross_entropy`` passes under the same check.
    With ``out_dir``, both graphs are drawn there, the offending node in red.
    """
    model = build_classifier("column", D=D, N=N, C=C, seed=seed, labels=labels)
    X, W, labels = model.X, model.W, model.labels
    b = Tensor(np.full(model.b.shape, shift), requires_grad=True, name="b")

    def shifted_logits() -> Tensor:
        Z = logits(W, b, X, "column")
        Z.name = "Z"
        return Z

    with np.errstate(over="ignore", invalid="ignore"):
        silent_loss = naive_cross_entropy(shifted_logits(), labels, axis=0).item()

    error: AnomalyError | None = None
    try:
        with detect_anomaly(), np.errstate(over="ignore"):
            naive_cross_entropy(shifted_logits(), labels, axis=0)
    except AnomalyError as caught:
        error = caught
    if error is None:
        raise RuntimeError(f"anomaly demo: the naive softmax did not overflow at a shift of {shift}")

    with detect_anomaly():
        Z = shifted_logits()
        loss = F.cross_entropy(Z, labels, axis=0)
        loss.name = "loss"
        loss.backward()
    assert Z.grad is not None
    stable_grad_error = float(np.max(np.abs(Z.grad - analytic.logits_grad(Z.data, labels, axis=0))))

    graph_path = stable_graph_path = None
    skipped: list[str] = []
    if out_dir is not None:
        from ..views import viz  # a viewer: imported only when a picture is asked for

        out = Path(out_dir)
        node = error.node
        assert isinstance(node, Tensor)
        node.name = node.name or f"{error.op}({', '.join(t.name or '…' for t in error.inputs)})"
        # The stable graph up to its exp, with the values: exp sees z − max z ≤ 0, so exp(·) ≤ exp(0) = 1.
        stable_exp = next(t for t in topological_order(loss) if t.op == "exp")
        stable_exp.name = stable_exp.name or "exp(Z − max)"
        pictures = [
            (node, out / "anomaly_naive.png", [node], "naive softmax: exp(Z) overflows to inf"),
            (
                stable_exp,
                out / "anomaly_stable.png",
                [],
                "stable softmax: exp sees Z − max ≤ 0, so exp(·) ≤ 1",
            ),
        ]
        drawn: list[Path | None] = []
        for root, path, red, title in pictures:
            try:
                drawn.append(viz.render(root, path, highlight=red, show_values=True, title=title))
            except viz.GraphvizNotFoundError as missing:  # draw what can be drawn, say what was not
                drawn.append(None)
                skipped.append(str(missing))
        graph_path, stable_graph_path = drawn

    return AnomalyDemo(
        shift=shift,
        logits_range=(float(Z.data.min()), float(Z.data.max())),
        silent_loss=silent_loss,
        error=error,
        stable_loss=loss.item(),
        unshifted_loss=model.loss.item(),
        stable_grad_error=stable_grad_error,
        graph_path=graph_path,
        stable_graph_path=stable_graph_path,
        skipped=skipped,
    )


def format_anomaly_demo(demo: AnomalyDemo) -> str:
    """The demo as a short printed lecture."""
    low, high = demo.logits_range
    lines = [
        f"Logits Z = W X + b with b = {demo.shift:g} in every class: values from {low:.1f} to {high:.1f}.",
        "softmax(z + c) = softmax(z), so the answer should not change; exp(z) overflows past 709.78.",
        "",
        "Naive softmax  p = exp(z) / Σ exp(z), no shift:",
        f"  without detect_anomaly: loss = {demo.silent_loss} (no error, just a NaN)",
        f"  with detect_anomaly():  {type(demo.error).__name__}: {demo.error}",
    ]
    if demo.graph_path is not None:
        lines.append(f"  graph up to the offending node (in red): {demo.graph_path}")
    lines += [
        "",
        "Stable softmax  p = exp(z − max z) / Σ exp(z − max z)  (functional.cross_entropy):",
        f"  with detect_anomaly():  loss = {demo.stable_loss:.6f}, no anomaly",
        f"  the unshifted classifier's loss = {demo.unshifted_loss:.6f}",
        f"  max |Z.grad − (P − Y)/N| = {demo.stable_grad_error:.2e}",
    ]
    if demo.stable_graph_path is not None:
        lines.append(f"  graph: {demo.stable_graph_path}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the float32 lesson

EPSILONS: tuple[float, ...] = tuple(10.0**-k for k in range(1, 11))  # 1e-1 … 1e-10


@dataclass(frozen=True)
class SweepRow:
    """rel_error of the central-difference dW at one step ``eps``, per dtype."""

    eps: float
    errors: dict[str, float]  # dtype name → rel_error vs the closed-form dW


def _numerical_dW(model: Classifier, dtype: type, eps: float) -> np.ndarray:
    """Central-difference dW of the engine's loss, every array cast to ``dtype``."""
    X, b = Tensor(model.X.data.astype(dtype)), Tensor(model.b.data.astype(dtype))

    def loss(W: np.ndarray) -> float:
        with no_grad():
            return F.cross_entropy(logits(Tensor(W), b, X, "column"), model.labels, axis=0).item()

    # astype copies, so the in-place perturbation never touches the model's W.
    return numerical_gradient(loss, model.W.data.astype(dtype), eps)


def epsilon_sweep(
    epsilons: Sequence[float] = EPSILONS,
    dtypes: Sequence[type] = (np.float32, np.float64),
    seed: int = 0,
) -> list[SweepRow]:
    """rel_error(numerical dW, closed-form dW) for each step ``eps`` and each dtype.

    The numerical gradient is the engine's loss, evaluated in the given dtype,
    differenced centrally with ``gradcheck.numerical_gradient``. The reference
    is the closed form ``dW = (1/N)(P − Y)Xᵀ`` in float64 on the same numbers.
    """
    model = build_classifier("column", seed=seed, backward=False)
    reference = analytic.linear_classifier(
        model.W.data, model.b.data, model.X.data, model.labels, "column"
    ).dW
    return [
        SweepRow(eps, {np.dtype(d).name: rel_error(_numerical_dW(model, d, eps), reference) for d in dtypes})
        for eps in epsilons
    ]


def best_epsilon(rows: Sequence[SweepRow], dtype: str) -> SweepRow:
    """The row at the bottom of the valley for ``dtype``."""
    return min(rows, key=lambda row: row.errors[dtype])


def format_epsilon_sweep(rows: Sequence[SweepRow]) -> str:
    """The sweep as a table, the best step per dtype underneath."""
    names = list(rows[0].errors)
    header = f"{'eps':>8}" + "".join(f"{name:>14}" for name in names)
    lines = [
        "rel_error of the central-difference dW vs the closed form (1/N)(P − Y)Xᵀ",
        header,
        "-" * len(header),
    ]
    for row in rows:
        lines.append(f"{row.eps:>8.0e}" + "".join(f"{row.errors[name]:>14.2e}" for name in names))
    lines.append("")
    for name in names:
        best = best_epsilon(rows, name)
        lines.append(
            f"{name}: best eps {best.eps:.0e} (rel_error {best.errors[name]:.1e}); "
            f"machine epsilon {np.finfo(name).eps:.1e}"
        )
    lines.append(
        "Big eps: truncation error (∝ eps²) wins; small eps: round-off (∝ machine epsilon / eps) does."
    )
    return "\n".join(lines)


def epsilon_figure(rows: Sequence[SweepRow]) -> Figure:
    """The sweep as a log-log plot: one line per dtype, the best step marked, ∛(machine epsilon) dotted.

    A plain ``matplotlib.figure.Figure`` (no pyplot, no backend chosen), so it
    shows inline in a notebook and saves anywhere.
    """
    from matplotlib.figure import Figure

    eps = np.array([row.eps for row in rows])
    from ..outputs import SLIDE_DPI, SLIDE_FIGSIZE

    fig = Figure(figsize=SLIDE_FIGSIZE, dpi=SLIDE_DPI)  # 1920×1080 px: a slide's own size
    ax = fig.add_subplot()
    for name, color in zip(rows[0].errors, ("tab:red", "tab:blue", "tab:green", "tab:purple")):
        errors = np.array([row.errors[name] for row in rows])
        best = best_epsilon(rows, name)
        # The best step goes into the legend, not next to the point, where a guide line would cross it.
        ax.loglog(eps, errors, "o-", color=color, label=name)
        ax.loglog(
            [best.eps],
            [best.errors[name]],
            "o",
            color=color,
            markersize=14,
            fillstyle="none",
            label=f"best {name}: eps {best.eps:.0e}",
        )
        # Truncation ∝ eps² and round-off ∝ ε/eps balance near eps = ∛ε (ε: machine epsilon).
        ax.axvline(np.cbrt(np.finfo(name).eps), color=color, linestyle=":", linewidth=1)
    low = min(min(row.errors.values()) for row in rows)
    ax.set_ylim(low / 20, 10)
    ax.text(eps.min(), 2.2, "steps lost to rounding: f(x+eps) = f(x−eps)", fontsize=10, color="0.3")
    ax.plot([], [], color="0.4", linestyle=":", label="∛(machine epsilon)")
    ax.set_xlabel("finite-difference step eps")
    ax.set_ylabel("relative error of numerical dW")
    ax.set_title("Central differences: truncation (big eps) vs round-off (small eps)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left")  # the empty corner: no curve or guide line runs through it
    fig.tight_layout()
    return fig


def plot_epsilon_sweep(rows: Sequence[SweepRow], path: str | Path) -> Path:
    """Save :func:`epsilon_figure` to ``path`` (.png, .svg or .pdf); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(
            f"plot_epsilon_sweep: cannot write {path.name!r}: the extension must be .png, .svg or .pdf"
        )
    with atomic_path(path) as temporary:
        epsilon_figure(rows).savefig(temporary, format=path.suffix.lower().lstrip("."))
    return path
