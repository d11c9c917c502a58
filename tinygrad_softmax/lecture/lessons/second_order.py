"""Second order and forward mode: the lessons after ``p − y`` (docs/second-order.md).

- :func:`hessian_check`: the engine's Hessian of the linear softmax classifier
  with respect to W next to the closed form ``analytic.weights_hessian``, its
  eigenvalues (convex: all ≥ 0; D of them zero) and a heat map.
- :func:`newton_vs_gd`: Newton's method with a small L2 term against gradient
  descent, from the same start, on Iris or the digits.
- :func:`modes`: ∂L/∂W by forward mode (C·D Jacobian-vector products) and by
  reverse mode (one vector-Jacobian product), timed for growing D.

Every derivative here comes from the engine (``hessian``, ``grad``,
``jacobian``); the closed form is only the witness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ... import analytic
from ... import functional as F
from ...analytic import Layout
from ...compiler import compile
from ...derivatives import grad, hessian, jacobian
from ...gradcheck import rel_error
from ...tensor import Tensor
from ..outputs import SLIDE_DPI, SLIDE_FIGSIZE, atomic_path
from ..training.datasets import load, standardise
from .lab import MAX_JACOBIAN_BYTES as MAX_BYTES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "HessianCheck",
    "hessian_check",
    "format_hessian_check",
    "hessian_figure",
    "NewtonRun",
    "newton_vs_gd",
    "format_newton",
    "newton_figure",
    "ModesRow",
    "modes",
    "format_modes",
    "modes_figure",
    "save_figure",
    "SecondOrderSection",
    "demo_section",
]

ZERO = 1e-10  # eigenvalues below this (in absolute value) count as zero


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, whole or not at all."""
    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=SLIDE_DPI, format="png")
    return path


# ---------------------------------------------------------------- the Hessian of the classifier


def _classifier_loss(b: np.ndarray, X: np.ndarray, labels: np.ndarray, layout: Layout) -> Any:
    """W ↦ the mean cross-entropy of Z = W X + b (column) or X W + b (row), built from the primitives."""
    axis = analytic.CLASS_AXIS[layout]

    def loss(W: Tensor) -> Tensor:
        Z = (W @ Tensor(X) if axis == 0 else Tensor(X) @ W) + Tensor(b)
        return F.cross_entropy(Z, labels, axis=axis)

    return loss


@dataclass
class HessianCheck:
    """The engine's Hessian next to the closed form, for one small classifier."""

    layout: Layout
    samples: int
    features: int
    classes: int
    engine: np.ndarray  # W.size × W.size, vec(W) row by row
    closed_form: np.ndarray
    eigenvalues: np.ndarray  # ascending

    @property
    def max_difference(self) -> float:
        return float(np.abs(self.engine - self.closed_form).max())

    @property
    def rel_error(self) -> float:
        return rel_error(self.engine, self.closed_form)

    @property
    def zero_eigenvalues(self) -> int:
        return int(np.sum(np.abs(self.eigenvalues) < ZERO))

    @property
    def passed(self) -> bool:
        return (
            self.rel_error < 1e-12
            and self.eigenvalues.min() > -ZERO
            and self.zero_eigenvalues >= self.features
        )


def hessian_check_bytes(samples: int, features: int, classes: int) -> int:
    """Memory :func:`hessian_check` needs, in bytes, known before any work.

    With k = C·D entries in W: about four k×k float64 matrices (the engine's H, the
    closed form, eigvalsh's copy and its workspace), the data X (D×N), the closed
    form's N blocks of C×C, and a dozen C×N arrays in the recorded graph.
    """
    k = classes * features
    return 8 * (4 * k * k + features * samples + samples * classes * classes + 12 * classes * samples)


def _refuse_too_large(who: str, need: int, sizes: str) -> None:
    if need > MAX_BYTES:
        raise ValueError(
            f"{who}: {sizes} need about {need / 2**30:.3g} GiB, more than {MAX_BYTES / 2**30:.0f} GiB; "
            "take smaller sizes"
        )


def hessian_check(
    layout: Layout = "column", samples: int = 40, features: int = 4, classes: int = 3, seed: int = 0
) -> HessianCheck:
    """The engine's ``hessian`` of the loss with respect to W, and ``analytic.weights_hessian``."""
    if layout not in analytic.CLASS_AXIS:
        raise ValueError(f"hessian: layout must be 'column' or 'row', got {layout!r}")
    sizes = (("samples", samples, 1), ("features", features, 1), ("classes", classes, 2))
    for name, value, smallest in sizes:
        if value < smallest:
            raise ValueError(f"hessian: {name} must be at least {smallest}, got {value}")
    need = hessian_check_bytes(samples, features, classes)
    asked = f"N = {samples} samples, D = {features} features and C = {classes} classes"
    _refuse_too_large("hessian", need, asked)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=samples)
    if layout == "column":  # X D×N, W C×D, b C×1
        W, b = rng.normal(size=(classes, features)), rng.normal(size=(classes, 1))
        X = rng.normal(size=(features, samples))
    else:  # X N×D, W D×C, b (C,)
        W, b = rng.normal(size=(features, classes)), rng.normal(size=(classes,))
        X = rng.normal(size=(samples, features))
    size = W.size
    engine = hessian(_classifier_loss(b, X, labels, layout), W).reshape(size, size)
    closed = analytic.weights_hessian(W, b, X, layout).reshape(size, size)
    return HessianCheck(layout, samples, features, classes, engine, closed, np.linalg.eigvalsh(engine))


def format_hessian_check(check: HessianCheck) -> str:
    c, d = check.classes, check.features
    shape = f"{c}×{d}" if check.layout == "column" else f"{d}×{c}"
    blocks = (
        f"{c}×{c} blocks of {d}×{d}: block (i, k) is (1/N) Σ_n (δ_ik p_in − p_in p_kn) x_n x_nᵀ"
        if check.layout == "column"
        else f"{d}×{d} blocks of {c}×{c}: block (j, l) is (1/N) Σ_n x_jn x_ln (diag(p_n) − p_n p_nᵀ)"
    )
    eig = check.eigenvalues
    lines = [
        f"Hessian of the mean cross-entropy with respect to W ({check.layout} layout, W {shape}, "
        f"N = {check.samples}),",
        f"vec(W) taken row by row: {eig.size}×{eig.size}, {blocks.split(': ')[0]}:",
        f"  {blocks.split(': ')[1]}.",
        "",
        "  engine  hessian(loss, W)          vs  closed form analytic.weights_hessian:",
        f"  max |difference| {check.max_difference:.2e}, rel error {check.rel_error:.2e}",
        "",
        "  eigenvalues (ascending):",
        "    "
        + np.array2string(
            np.where(np.abs(eig) < ZERO, 0.0, eig), precision=3, max_line_width=96, prefix="    "
        ),
        f"  smallest {eig.min():.1e}: none below −{ZERO:g} (zero up to rounding), so the loss is convex.",
        f"  {check.zero_eigenvalues} zero (|λ| < {ZERO:g}), at least D = {d}: adding the same vector to "
        "every class's row of W",
        "  shifts all C logits of each sample by the same amount, and softmax does not change under a shift",
        "  common to all classes, so the loss is flat along those D directions.",
        "",
        f"check: {'passed' if check.passed else 'FAILED'}",
    ]
    return "\n".join(lines)


def order_of_rounding(error: float) -> str:
    """A rounding error by its order of magnitude, ``< 1e-16``: the digits of 2.8e-17 are the CPU's
    (another BLAS kernel sums in another order), so a picture that printed them would differ there."""
    return "0" if error == 0 else f"< 1e{math.floor(math.log10(error)) + 1}"


def hessian_figure(check: HessianCheck) -> Figure:
    """H as a heat map, the block structure ruled in (C×C blocks of D×D in the column layout)."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    c, d = check.classes, check.features
    outer, inner = (c, d) if check.layout == "column" else (d, c)
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    ax_h, ax_e = fig.subplots(1, 2, width_ratios=(1.15, 1))
    limit = float(np.abs(check.engine).max())
    image = ax_h.imshow(check.engine, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit))
    for k in range(1, outer):
        ax_h.axhline(k * inner - 0.5, color="black", linewidth=1.2)
        ax_h.axvline(k * inner - 0.5, color="black", linewidth=1.2)
    names = [f"class {i}" for i in range(c)] if check.layout == "column" else [f"x{j}" for j in range(d)]
    centres = [k * inner + (inner - 1) / 2 for k in range(outer)]
    ax_h.set_xticks(centres, names)
    ax_h.set_yticks(centres, names, rotation=90, va="center")
    ax_h.tick_params(length=0)
    fig.colorbar(image, ax=ax_h, shrink=0.8)
    what = f"{c}×{c} blocks of {d}×{d}" if check.layout == "column" else f"{d}×{d} blocks of {c}×{c}"
    ax_h.set_title(f"H = ∂²L/∂W², {check.layout} layout: {what}")
    eig = check.eigenvalues
    zero = np.abs(eig) < ZERO
    ax_e.bar(np.arange(eig.size)[~zero], eig[~zero], color="tab:blue", label="positive")
    ax_e.bar(np.arange(eig.size)[zero], np.full(zero.sum(), limit * 0.01), color="tab:orange", label="zero")
    ax_e.set(xlabel="eigenvalue index (ascending)", ylabel="eigenvalue", title="eigenvalues: convex, D zero")
    ax_e.legend(loc="upper left")
    fig.suptitle(
        f"engine Hessian = closed form (max |difference| {order_of_rounding(check.max_difference)}); "
        f"N = {check.samples}, D = {d}, C = {c}"
    )
    return fig


# ---------------------------------------------------------------- Newton vs gradient descent


@dataclass
class NewtonRun:
    """Newton's method and gradient descent on the same loss from the same start."""

    dataset: str
    l2: float
    shape: tuple[int, int]  # W with the bias folded in: C × (D + 1)
    newton_loss: list[float] = field(default_factory=list)  # entry k: after k steps
    newton_grad_norm: list[float] = field(default_factory=list)
    gd_loss: list[float] = field(default_factory=list)
    gd_grad_norm: list[float] = field(default_factory=list)
    gd_lr: float = 0.0
    gd_budget: int = 0
    tolerance: float = 1e-8
    newton_seconds: float = 0.0
    gd_seconds: float = 0.0

    @property
    def newton_steps(self) -> int:
        return len(self.newton_loss) - 1

    @property
    def converged(self) -> bool:
        return self.newton_grad_norm[-1] < self.tolerance

    @property
    def gd_steps_to_newton_loss(self) -> int | None:
        """The first gradient-descent step whose loss is within 1e-10 of Newton's last, or None."""
        target = self.newton_loss[-1] + 1e-10
        reached = np.flatnonzero(np.asarray(self.gd_loss) <= target)
        return int(reached[0]) if reached.size else None


def _newton_problem(dataset: str, l2: float) -> tuple[Any, np.ndarray, np.ndarray]:
    """The loss W ↦ mean cross-entropy + (λ/2)‖W‖², column layout, the bias folded into W."""
    data = load(dataset)
    (features,) = standardise(data.X)
    X = np.vstack([features.T, np.ones(len(data.labels))])  # (D + 1) × N: the last row is the bias's input
    labels = data.labels

    def loss(W: Tensor) -> Tensor:
        return F.cross_entropy(W @ X, labels, axis=0) + (W * W).sum() * (l2 / 2)

    return loss, X, labels


# Gradient-descent budgets that finish in seconds on a laptop: Iris's steps cost ~0.2 ms, the digits' ~20 ms.
GD_BUDGET = {"iris": 20000, "digits": 2000}


def newton_vs_gd(
    dataset: str = "iris",
    l2: float = 1e-3,
    max_steps: int = 15,
    gd_budget: int | None = None,
    tolerance: float = 1e-8,
    log: Callable[[str], None] | None = None,
) -> NewtonRun:
    """Newton's method (engine Hessian, damped by backtracking) and gradient descent, from W = 0.

    Without the L2 term the Hessian is singular (D + 1 zero eigenvalues, see
    :func:`hessian_check`) and on separable classes (Iris's setosa) the loss
    has no minimum at all: it keeps falling as W grows. ``(λ/2)‖W‖²`` adds λ to
    every eigenvalue, so H is positive definite and the minimum exists and is unique.
    Gradient descent takes a fixed step. The curvature lies between μ = λ (the
    L2 term) and L = ½ λ_max(X Xᵀ/N) + λ (‖diag(p) − p pᵀ‖ ≤ ½ bounds it
    everywhere), so every step below 2/L decreases the loss; among those, 2/(L + μ)
    has the best guaranteed rate, and that is the step taken. Its thousands of
    steps run the step program :func:`~tinygrad_softmax.compile` writes from the
    same loss (``simplify=False``: the engine's rules line by line, eager's
    numbers bit for bit), which builds no graph per step.

    ``log``, when given, is called with each line of :func:`format_newton`'s
    table as its step is taken, then with a line of gradient descent's progress
    every tenth of its budget, so a long run is never silent.
    """
    if l2 <= 0:
        raise ValueError(f"newton: the L2 strength must be positive (it makes H positive definite), got {l2}")
    if gd_budget is None:
        gd_budget = GD_BUDGET.get(dataset, 2000)
    if max_steps < 1 or gd_budget < 1:
        raise ValueError(f"newton: max_steps and gd_budget must be ≥ 1, got {max_steps} and {gd_budget}")
    loss_fn, X, labels = _newton_problem(dataset, l2)
    classes = int(labels.max()) + 1
    shape = (classes, X.shape[0])
    run = NewtonRun(dataset, l2, shape, gd_budget=gd_budget, tolerance=tolerance)
    say = log if log is not None else (lambda line: None)
    for line in _newton_header(run):
        say(line)

    def value_and_grad(W: np.ndarray) -> tuple[float, np.ndarray]:
        leaf = Tensor(W, requires_grad=True)
        loss = loss_fn(leaf)
        (g,) = grad(loss, leaf)
        return loss.item(), g.data

    start = time.perf_counter()
    W = np.zeros(shape)
    value, g = value_and_grad(W)
    run.newton_loss.append(value)
    run.newton_grad_norm.append(float(np.linalg.norm(g)))
    say(_newton_row(0, value, run.newton_grad_norm[-1]))
    while run.newton_grad_norm[-1] >= tolerance and run.newton_steps < max_steps:
        H = hessian(loss_fn, W).reshape(W.size, W.size)
        direction = np.linalg.solve(H, g.reshape(-1)).reshape(shape)
        step = 1.0  # backtracking: halve until the loss falls enough (Armijo); near the minimum 1 is taken
        while True:
            candidate, candidate_grad = value_and_grad(W - step * direction)
            if candidate <= value - 0.25 * step * float(np.sum(g * direction)) or step < 1e-10:
                break
            step /= 2
        W, value, g = W - step * direction, candidate, candidate_grad
        run.newton_loss.append(value)
        run.newton_grad_norm.append(float(np.linalg.norm(g)))
        say(_newton_row(run.newton_steps, value, run.newton_grad_norm[-1]))
    run.newton_seconds = time.perf_counter() - start

    run.gd_lr = best_fixed_step(X, l2)
    say("")
    say(f"Gradient descent with {gd_step_words(run.gd_lr)}, same start: at most {gd_budget} steps ...")
    every = max(gd_budget // 10, 1)
    start = time.perf_counter()
    step_program = compile(loss_fn, simplify=False)
    W = np.zeros(shape)
    for k in range(gd_budget + 1):
        value, (g,) = step_program(Tensor(W, requires_grad=True))
        run.gd_loss.append(value)
        run.gd_grad_norm.append(float(np.linalg.norm(g)))
        if k % every == 0 and k:
            say(f"  step {k:5d}  loss {value:.15f}  ‖∇L‖ {run.gd_grad_norm[-1]:.3e}")
        if run.gd_grad_norm[-1] < tolerance:
            break
        W = W - run.gd_lr * g
    run.gd_seconds = time.perf_counter() - start
    return run


def best_fixed_step(X: np.ndarray, l2: float) -> float:
    """2/(L + μ) for the loss of :func:`newton_vs_gd` on the (D + 1)×N data ``X``: L = ½ λ_max(X Xᵀ/N) + λ
    bounds its curvature from above, μ = λ from below. Every step below 2/L decreases the loss;
    2/(L + μ) is the fixed step with the best guaranteed rate, (L − μ)/(L + μ) per step."""
    smooth = 0.5 * float(np.linalg.eigvalsh(X @ X.T / X.shape[1]).max()) + l2
    return 2.0 / (smooth + l2)


def gd_step_words(lr: float) -> str:
    """How the report names gradient descent's step."""
    return f"the fixed step 2/(L + λ) = {lr:.4g}"


def gd_step_reason(run: NewtonRun) -> str:
    """Why that step: the range of steps that descend, and the one with the best guaranteed rate."""
    smooth = 2 / run.gd_lr - run.l2
    return (
        f"(L = {smooth:.3g} bounds the curvature from above, λ from below: every fixed step below "
        f"2/L = {2 / smooth:.4g} descends, and 2/(L + λ) has the best guaranteed rate.)"
    )


def _newton_header(run: NewtonRun) -> list[str]:
    c, d1 = run.shape
    return [
        f"{run.dataset}: linear softmax classifier, W {c}×{d1} (bias folded in as a last column), "
        f"loss = mean cross-entropy + (λ/2)‖W‖², λ = {run.l2:g}.",
        "The L2 term adds λ to every eigenvalue of the Hessian: without it H is singular (softmax ignores",
        "a shift common to all classes) and on separable classes the loss has no minimum at all.",
        "",
        "Newton's method (engine Hessian, backtracking line search), from W = 0:",
        "  step  loss                 ‖∇L‖",
    ]


def _newton_row(k: int, value: float, norm: float) -> str:
    return f"  {k:4d}  {value:.15f}  {norm:.3e}"


def format_newton(run: NewtonRun, timings: bool = True, table: bool = True) -> str:
    """The Newton steps and the gradient-descent verdict; ``timings=False`` leaves out the seconds,
    ``table=False`` the header and the steps (already printed as they happened)."""

    def took(seconds: float) -> str:
        return f" ({seconds:.2f} s)" if timings else ""

    lines = _newton_header(run) if table else []
    if table:
        for k, (value, norm) in enumerate(zip(run.newton_loss, run.newton_grad_norm)):
            lines.append(_newton_row(k, value, norm))
    verdict = (
        f"‖∇L‖ < {run.tolerance:g} after {run.newton_steps} Newton steps{took(run.newton_seconds)}"
        if run.converged
        else f"NOT converged: ‖∇L‖ = {run.newton_grad_norm[-1]:.2e} after {run.newton_steps} steps"
    )
    lines += ["", f"Newton: {verdict}."] if table else [f"Newton: {verdict}."]
    reached = run.gd_steps_to_newton_loss
    gd_last = len(run.gd_loss) - 1
    lines.append(
        f"Gradient descent with {gd_step_words(run.gd_lr)}, same start: "
        + (
            f"Newton's loss (to 1e-10) after {reached} steps{took(run.gd_seconds)}."
            if reached is not None
            else f"did not reach Newton's loss in its budget of {run.gd_budget} steps "
            f"(loss {run.gd_loss[-1]:.10f}, ‖∇L‖ {run.gd_grad_norm[-1]:.2e} after {gd_last} steps)"
            f"{took(run.gd_seconds)}."
        )
    )
    lines.append(gd_step_reason(run))
    return "\n".join(lines)


def newton_figure(run: NewtonRun) -> Figure:
    """Loss above the best loss seen and gradient norm, per step, log scales: Newton vs gradient descent."""
    from matplotlib.figure import Figure

    best = min(min(run.newton_loss), min(run.gd_loss))
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    floor = 1e-16  # the gap to the best loss reaches 0 exactly at that point: drawn at the floor
    for ax, newton, gd, label in (
        (ax_loss, np.asarray(run.newton_loss) - best, np.asarray(run.gd_loss) - best, "loss − best loss"),
        (ax_grad, np.asarray(run.newton_grad_norm), np.asarray(run.gd_grad_norm), "‖∇L‖"),
    ):
        ax.plot(
            np.arange(1, gd.size + 1),
            np.maximum(gd, floor),
            color="tab:blue",
            label=f"gradient descent, fixed step 2/(L + λ) = {run.gd_lr:.4g}",
        )
        ax.plot(
            np.arange(1, newton.size + 1),
            np.maximum(newton, floor),
            "o-",
            color="tab:red",
            label="Newton",
        )
        ax.set(xscale="log", yscale="log", xlabel="step + 1 (log scale)", ylabel=label)
        ax.grid(True, which="major", alpha=0.3)
    ax_grad.axhline(run.tolerance, color="grey", linestyle=":", linewidth=1)
    ax_grad.annotate(
        f"{run.tolerance:g}", (1, run.tolerance), xytext=(2, 3), textcoords="offset points", color="dimgrey"
    )
    ax_loss.set_title("loss above the best loss reached")
    ax_grad.set_title("gradient norm")
    fig.legend(*ax_loss.get_legend_handles_labels(), loc="outside lower center", ncols=2)  # under both panels
    reached = run.gd_steps_to_newton_loss
    gd_text = f"{reached} steps" if reached is not None else f"not within {run.gd_budget} steps"
    if reached is not None and reached < len(run.gd_loss):
        # The title's count is where gradient descent first matches Newton's loss; its curve goes
        # on until its own ‖∇L‖ is below the tolerance, so the point is marked on it.
        gap = max(run.gd_loss[reached] - best, floor)
        ax_loss.plot(reached + 1, gap, "s", color="tab:blue", markersize=7)
        ax_loss.annotate(
            f"Newton's loss,\nstep {reached}",
            (reached + 1, gap),
            xytext=(-8, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            color="tab:blue",
        )
    fig.suptitle(
        f"{run.dataset}, λ = {run.l2:g}: Newton {run.newton_steps} steps to ‖∇L‖ < {run.tolerance:g}; "
        f"gradient descent to the same loss: {gd_text}"
    )
    return fig


# ---------------------------------------------------------------- forward vs reverse mode


@dataclass
class ModesRow:
    """∂L/∂W for one size, by both modes: how many passes, how long, and whether they agree."""

    features: int
    classes: int
    forward_passes: int  # one JVP per entry of W: C·D
    reverse_passes: int  # one VJP per output: the loss is a scalar, so 1
    forward_seconds: float
    reverse_seconds: float
    max_difference: float


def modes_bytes(features: int, classes: int, samples: int) -> int:
    """Memory :func:`modes` needs for its largest D, in bytes: X (D×N), and W, its
    gradients and the Jacobian row (C×D each, a dozen of them in the recorded passes)."""
    return 8 * (features * samples + 12 * classes * features + 12 * classes * samples)


def modes(
    features: Sequence[int] = (2, 4, 8, 16, 32, 64), classes: int = 3, samples: int = 16, seed: int = 0
) -> list[ModesRow]:
    """``jacobian(loss, W, mode=...)`` for each D: forward needs C·D passes, reverse one."""
    if not features or min(features) < 1 or classes < 2 or samples < 1:
        raise ValueError("modes: features must be ≥ 1, classes ≥ 2 and samples ≥ 1")
    d = max(features)
    need = modes_bytes(d, classes, samples)
    _refuse_too_large("modes", need, f"D = {d} features, C = {classes} classes and N = {samples} samples")
    rng = np.random.default_rng(seed)
    rows = []
    for d in features:
        X, b = rng.normal(size=(d, samples)), rng.normal(size=(classes, 1))
        labels = rng.integers(0, classes, size=samples)
        W = rng.normal(size=(classes, d))
        loss = _classifier_loss(b, X, labels, "column")
        timings = {}
        results = {}
        both: tuple[Literal["forward", "reverse"], ...] = ("forward", "reverse")
        for mode in both:
            best = np.inf
            for _ in range(3):  # the fastest of three: the least disturbed by other work on the machine
                start = time.perf_counter()
                results[mode] = jacobian(loss, W, mode=mode)
                best = min(best, time.perf_counter() - start)
            timings[mode] = best
        difference = float(np.abs(results["forward"] - results["reverse"]).max())
        rows.append(ModesRow(d, classes, W.size, 1, timings["forward"], timings["reverse"], difference))
    return rows


def format_modes(rows: Sequence[ModesRow], timings: bool = True) -> str:
    """One line per D: passes, times (unless ``timings=False``) and the largest difference."""
    lines = [
        f"∂L/∂W of the linear softmax classifier (C = {rows[0].classes} classes), both ways:",
        "  forward mode: one Jacobian-vector product J e_j per entry of W, C·D of them (each a walk",
        "                back through the recorded reverse pass: the double-VJP trick, see jvp);",
        "  reverse mode: one vector-Jacobian product 1·J for the one output, the loss.",
        "",
        "     D   W entries   forward passes   reverse passes"
        + ("   forward ms   reverse ms   ratio" if timings else "")
        + "   max |diff|",
    ]
    for r in rows:
        times = (
            f"{1e3 * r.forward_seconds:10.2f}   {1e3 * r.reverse_seconds:10.2f}   "
            f"{r.forward_seconds / r.reverse_seconds:5.0f}×   "
        )
        lines.append(
            f"  {r.features:4d}   {r.classes * r.features:9d}   "
            f"{r.forward_passes:14d}   {r.reverse_passes:14d}   "
            + (times if timings else "")
            + f"{r.max_difference:.1e}"
        )
    lines += [
        "",
        "The same numbers both ways; forward mode's cost grows with the number of inputs, reverse mode's",
        "with the number of outputs. A loss has one output and many inputs: that is why backpropagation",
        "is reverse mode.",
    ]
    return "\n".join(lines)


def modes_figure(rows: Sequence[ModesRow]) -> Figure:
    """Time to get ∂L/∂W against D, forward vs reverse mode, log-log, each point labelled with its passes."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    d = np.array([r.features for r in rows])
    fig = Figure(figsize=SLIDE_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    forward = np.array([r.forward_seconds for r in rows]) * 1e3
    reverse = np.array([r.reverse_seconds for r in rows]) * 1e3
    ax.plot(d, forward, "o-", color="tab:red", label="forward mode: C·D Jacobian-vector products")
    ax.plot(d, reverse, "s-", color="tab:blue", label="reverse mode: one vector-Jacobian product")
    for r, f in zip(rows, forward):
        ax.annotate(
            f"{r.forward_passes}", (r.features, f), xytext=(0, 8), textcoords="offset points", ha="center"
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="D, features (W has C·D entries)",
        ylabel="time for ∂L/∂W (ms)",
        title=f"Why backprop is reverse mode: ∂L/∂W for C = {rows[0].classes} (labels: forward passes)",
    )
    ax.set_xticks(d, [str(x) for x in d])
    ax.xaxis.set_minor_locator(NullLocator())  # only the D values measured, no 3×10⁰ in between
    ax.set_ylim(top=forward.max() * 2.5)  # room for the top point's label
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    return fig


# ---------------------------------------------------------------- the demo's section


@dataclass
class SecondOrderSection:
    """What the demo's second-order section computed and wrote, and the values its report text needs."""

    check: HessianCheck
    newton: NewtonRun
    modes: list[ModesRow]
    files: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.check.passed and self.newton.converged and all(r.max_difference < 1e-12 for r in self.modes)
        )

    def values(self, out: Path) -> dict[str, object]:
        """``${name}`` → text for the report template."""

        def picture(name: str, alt: str) -> str:
            if (out / name).exists():
                return f"![{alt}]({name})"
            return f"*({name} was not drawn: see the notes at the end.)*"

        reached = self.newton.gd_steps_to_newton_loss
        last = self.modes[-1]
        return {
            "hessian_text": format_hessian_check(self.check),
            "hessian_picture": picture("hessian-column.png", "H as a heat map, and its eigenvalues"),
            "newton_text": format_newton(self.newton, timings=False),
            "newton_steps": self.newton.newton_steps,
            "newton_gd": f"{reached} steps" if reached is not None else f"over {self.newton.gd_budget} steps",
            "newton_picture": picture("newton-iris.png", "Newton vs gradient descent on Iris"),
            "modes_text": format_modes(self.modes, timings=False),
            "modes_largest": f"At D = {last.features}: {last.forward_passes} forward passes against one "
            "reverse pass; the times, which vary from run to run, are in the picture",
            "modes_picture": picture("modes.png", "time for dL/dW against D, forward vs reverse mode"),
        }


def demo_section(out: Path, log: Callable[[str], None] = print) -> SecondOrderSection:
    """The Hessian check, Newton vs gradient descent on Iris, forward vs reverse mode, with their pictures.

    Writes ``hessian-column.png``, ``newton-iris.png``, ``modes.png`` (matplotlib)
    and ``second-order.txt`` (without the times, so that a second run writes the same
    text); without matplotlib the pictures are skipped without a word (the demo's
    training pictures already said so).
    """
    from ..extras import have
    from ..outputs import write_text

    section = SecondOrderSection(hessian_check("column"), newton_vs_gd("iris"), modes())
    if have("matplotlib"):
        section.files.append(save_figure(hessian_figure(section.check), out / "hessian-column.png"))
        section.files.append(save_figure(newton_figure(section.newton), out / "newton-iris.png"))
        section.files.append(save_figure(modes_figure(section.modes), out / "modes.png"))
    text = "\n\n".join(
        [
            format_hessian_check(section.check),
            format_newton(section.newton, timings=False),
            format_modes(section.modes, timings=False),
        ]
    )
    section.files.append(write_text(out / "second-order.txt", text + "\n"))
    log(
        f"second order: engine Hessian = closed form (rel error {section.check.rel_error:.1e}); "
        f"Newton on Iris {section.newton.newton_steps} steps; forward mode {last_ratio(section.modes)}"
    )
    return section


def last_ratio(rows: Sequence[ModesRow]) -> str:
    last = rows[-1]
    return f"{last.forward_seconds / last.reverse_seconds:.0f}× slower than reverse at D = {last.features}"
