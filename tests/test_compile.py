"""compile: the generated NumPy program against the eager engine."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest

import tinygrad_softmax as tg
from tinygrad_softmax import CompileError, Tensor, compile
from tinygrad_softmax import functional as F
from tinygrad_softmax.analytic import CLASS_AXIS
from tinygrad_softmax.lecture.classifier import logits


def classifier_step(layout: str, fused: bool = False) -> Any:
    axis = CLASS_AXIS[layout]  # type: ignore[index]
    loss_fn = F.softmax_cross_entropy if fused else F.cross_entropy

    def step(W: Tensor, b: Tensor, X: Tensor, y: np.ndarray) -> Tensor:
        Z = logits(W, b, X, layout)  # type: ignore[arg-type]
        Z.name = "Z"
        return loss_fn(Z, y, axis=axis)

    return step


def classifier_inputs(layout: str, D: int, N: int, C: int, dtype: Any, seed: int = 0) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, size=N)
    X = rng.normal(size=(D, N) if layout == "column" else (N, D)).astype(dtype)
    W = rng.normal(size=(C, D) if layout == "column" else (D, C)).astype(dtype)
    b = rng.normal(size=(C, 1) if layout == "column" else (C,)).astype(dtype)
    return (
        Tensor(W, requires_grad=True, name="W"),
        Tensor(b, requires_grad=True, name="b"),
        Tensor(X, name="X"),
        y,
    )


def eager(fn: Any, *args: Any) -> tuple[float, list[Any]]:
    fresh = [
        Tensor(a.data.copy(), requires_grad=a.requires_grad) if isinstance(a, Tensor) else a for a in args
    ]
    loss = fn(*fresh)
    loss.backward()
    return loss.item(), [a.grad if isinstance(a, Tensor) and a.requires_grad else None for a in fresh]


@pytest.mark.numerics
@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [1, 7])
def test_classifier_bit_for_bit(layout: str, dtype: Any, N: int) -> None:
    step = classifier_step(layout)
    compiled = compile(step)
    for seed in range(3):  # the first call traces, the second checks, the third runs the program only
        args = classifier_inputs(layout, D=4, N=N, C=3, dtype=dtype, seed=seed)
        loss, grads = compiled(*args)
        expected_loss, expected = eager(step, *args)
        assert loss == expected_loss
        assert grads[2] is None and grads[3] is None
        for got, want in zip(grads[:2], expected[:2]):
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want), "the compiled gradient differs from the eager one"
    assert compiled.cache_info().traces == 2 and compiled.cache_info().hits == 2


@pytest.mark.numerics
@pytest.mark.parametrize("layout", ["column", "row"])
def test_fused_classifier_and_new_labels(layout: str) -> None:
    """The fused op's Y is built from each call's labels, not the labels of the trace."""
    step = classifier_step(layout, fused=True)
    compiled = compile(step)
    for seed in range(4):
        args = classifier_inputs(layout, D=5, N=9, C=4, dtype=np.float64, seed=seed)
        loss, grads = compiled(*args)
        expected_loss, expected = eager(step, *args)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        for got, want in zip(grads[:2], expected[:2]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.numerics
def test_mlp_matches_eager() -> None:
    model = tg.nn.MLP([4, 16, 8, 3], layout="row", rng=0)
    linears = [layer for layer in model if isinstance(layer, tg.nn.Linear)]

    def step(
        W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, W3: Tensor, b3: Tensor, X: Tensor, y: Any
    ) -> Tensor:
        for layer, W, b in zip(linears, (W1, W2, W3), (b1, b2, b3)):
            layer.W, layer.b = W, b
        return F.cross_entropy(model(X), y)

    rng = np.random.default_rng(3)
    params = [Tensor(p.data.copy(), requires_grad=True) for p in model.parameters()]
    compiled = compile(step)
    for _ in range(3):
        X, y = Tensor(rng.normal(size=(10, 4))), rng.integers(0, 3, size=10)
        loss, grads = compiled(*params, X, y)
        expected_loss, expected = eager(step, *params, X, y)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        for got, want in zip(grads[:6], expected[:6]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        assert grads[6] is None and grads[7] is None
    assert "relu" in compiled.ops() and "np.maximum(Z1, 0)" in compiled.source()


def random_program(rng: np.random.Generator) -> tuple[Any, list[Tensor]]:
    """A random chain of the op set on a few tensors, ending in a scalar."""
    shapes = {"a": (3, 4), "v": (4,), "m": (4, 3)}
    tensors = [
        Tensor(rng.normal(size=s) + 0.1, requires_grad=bool(rng.integers(0, 4))) for s in shapes.values()
    ]
    tensors[0].requires_grad = True
    plan = rng.integers(0, 12, size=8).tolist()

    def fn(a: Tensor, v: Tensor, m: Tensor) -> Tensor:
        h = a
        for k in plan:
            if k == 0:
                h = h * v if h.shape[-1] == 4 else h * 2.0
            elif k == 1:
                h = (h * h + 1.0).log()
            elif k == 2:
                h = (-h).exp() / (h * h + 1.0)
            elif k == 3:
                h = h.relu() - h
            elif k == 4:
                h = h @ m if h.shape[-1] == 4 else h @ m.T
            elif k == 5:
                h = h.T
            elif k == 6:
                h = h - h.max(axis=-1, keepdims=True)
            elif k == 7:
                h = h + h.mean(axis=0)
            elif k == 8:
                h = h.reshape(h.shape[::-1])
            elif k == 9:
                h = h.gather(0, np.zeros((1, h.shape[1]), dtype=np.int64) + 1) * h
            elif k == 10:
                h = (h * h) ** 1.5
            else:
                h = h + h.sum(axis=1, keepdims=True) / 3.0
        return (h * h).sum() + (a @ v).sum() + m.max()

    return fn, tensors


@pytest.mark.numerics
@pytest.mark.parametrize("seed", range(25))
def test_random_programs_match_eager(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fn, tensors = random_program(rng)
    compiled = compile(fn)
    for _ in range(2):
        loss, grads = compiled(*tensors)
        expected_loss, expected = eager(fn, *tensors)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        for t, got, want in zip(tensors, grads, expected):
            if not t.requires_grad:
                assert got is None
            else:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        tensors = [Tensor(t.data + 0.05, requires_grad=t.requires_grad) for t in tensors]


def test_random_programs_reuse_buffers() -> None:
    """Most random programs have a dead array to write into, so the comparisons above test reuse."""
    reused = 0
    for seed in range(25):
        fn, tensors = random_program(np.random.default_rng(seed))
        compiled = compile(fn)
        compiled(*tensors)
        reused += "out=" in compiled.source()
    assert reused >= 15


def test_retraces_on_a_new_shape_and_dtype() -> None:
    compiled = compile(classifier_step("column"))
    compiled(*classifier_inputs("column", 4, 5, 3, np.float64))
    compiled(*classifier_inputs("column", 4, 6, 3, np.float64))
    assert "(1, 6)" in compiled.source()
    compiled(*classifier_inputs("column", 4, 6, 3, np.float32))
    assert "np.float32" in compiled.source()
    assert compiled.cache_info().traces == 3 and compiled.cache_info().size == 3


def test_cache_is_bounded() -> None:
    compiled = compile(classifier_step("row"), cache_size=3)
    for n in range(1, 8):
        compiled(*classifier_inputs("row", 4, n, 3, np.float64))
    info = compiled.cache_info()
    assert info.size == 3 and info.maxsize == 3 and info.traces == 7
    compiled(*classifier_inputs("row", 4, 7, 3, np.float64))  # still cached (the second call checks)
    compiled(*classifier_inputs("row", 4, 1, 3, np.float64))  # dropped long ago: traced again
    assert compiled.cache_info().traces == 9
    with pytest.raises(ValueError, match="cache_size"):
        compile(classifier_step("row"), cache_size=0)


def test_returned_gradients_are_never_reused() -> None:
    """Mutating a returned gradient changes nothing in the next call, and no two are the same array."""

    def fn(a: Tensor, b: Tensor) -> Tensor:
        return ((a + b) * 3.0).sum()  # add hands one gradient array to both inputs

    compiled = compile(fn)
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)
    for _ in range(3):
        _, (da, db) = compiled(a, b)
        assert not np.shares_memory(da, db)
        da[...] = 99.0
        db[...] = -1.0
    _, (da2, db2) = compiled(a, b)
    assert np.array_equal(da2, [3.0, 3.0, 3.0]) and np.array_equal(db2, [3.0, 3.0, 3.0])

    classifier = compile(classifier_step("column"))
    args = classifier_inputs("column", 4, 5, 3, np.float64)
    _, (dW, db_, _, _) = classifier(*args)
    keep = dW.copy()
    dW[...] = 0.0
    db_[...] = 0.0
    for _ in range(2):
        _, (dW2, _, _, _) = classifier(*args)
        assert np.array_equal(dW2, keep) and not np.shares_memory(dW, dW2)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_buffer_reuse_writes_no_argument_and_no_returned_array(layout: str) -> None:
    """``out=`` goes only into dead intermediates: never an argument, never what a call hands back."""
    step = classifier_step(layout)
    compiled = compile(step)
    # D = N: W has the logits' shape and is read by no line after the first, so an argument is
    # among the arrays of the right shape that no later line reads.
    W, b, X, y = classifier_inputs(layout, D=9, N=9, C=4, dtype=np.float64)
    compiled(W, b, X, y)
    source = compiled.source()
    assert source.count("out=") >= 5, source
    for t in (W, b, X):
        t._data.setflags(write=False)  # a write into an argument would raise
    y.setflags(write=False)
    expected_loss, expected = eager(step, W, b, X, y)
    first = compiled(W, b, X, y)
    kept = [g.copy() for g in first[1][:2]]
    for g in first[1][:2]:
        g[...] = np.nan  # the caller edits what it was handed
    second = compiled(W, b, X, y)
    assert first[0] == second[0] == expected_loss
    for got, again, want, before in zip(first[1][:2], second[1][:2], expected[:2], kept):
        assert np.array_equal(again, want) and np.array_equal(before, want)
        assert not np.shares_memory(got, again)
        assert not any(np.shares_memory(again, t._data) for t in (W, b, X))
    assert not np.shares_memory(second[1][0], second[1][1])


def test_lines_run_once_are_never_handed_back() -> None:
    """A gradient that reads no input is computed once, above the function, and copied when returned."""
    compiled = compile(lambda a, b: (a * 2.0).sum() + (b * b).sum())
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.arange(3.0), requires_grad=True)
    _, (da, _) = compiled(a, b)
    once = compiled.source().split("def ")[0]
    assert "np.ones" in once and "spread" in once  # the starting gradient and d(sum): no input read
    da[...] = -5.0
    for _ in range(2):
        _, (da2, db2) = compiled(a, b)
        assert np.array_equal(da2, [2.0, 2.0, 2.0]) and np.array_equal(db2, [0.0, 2.0, 4.0])
        da2[...] = -7.0


def test_a_value_the_loss_does_not_need_gets_no_line() -> None:
    def fn(a: Tensor) -> Tensor:
        a.exp()  # computed and dropped: the program never runs it
        return (a * a).sum()

    compiled = compile(fn)
    loss, (da,) = compiled(Tensor([1.0, 2.0], requires_grad=True))
    assert loss == 5.0 and np.array_equal(da, [2.0, 4.0])
    assert "exp" in compiled.ops() and "np.exp" not in compiled.source()


@pytest.mark.numerics
def test_a_gather_of_a_difference_is_picked_first_only_when_that_is_the_same_numbers() -> None:
    """``(A - b)[picked]`` is ``A[picked] - b`` only if ``b`` has one entry per picked line.

    Here ``b`` has A's shape and each line has four picks: traced with the identity as the index,
    the two agree on that call's numbers, but not on the next call's index.
    """

    def fn(A: Tensor, b: Tensor, index: np.ndarray) -> Tensor:
        return ((A - b).gather(1, index) ** 2).sum()

    compiled = compile(fn)
    A = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    b = Tensor(np.linspace(0.0, 1.0, 12).reshape(3, 4), requires_grad=True)
    identity = np.tile(np.arange(4), (3, 1))
    for index in (identity, identity[:, ::-1].copy(), identity[:, ::-1].copy()):
        loss, grads = compiled(A, b, index)
        expected_loss, expected = eager(fn, A, b, index)
        assert loss == expected_loss
        assert np.array_equal(grads[0], expected[0]) and np.array_equal(grads[1], expected[1])
    assert "[picked] -" not in compiled.source()


def test_source_compiles_with_one_line_per_recorded_op() -> None:
    compiled = compile(classifier_step("column"))
    compiled(*classifier_inputs("column", 4, 5, 3, np.float64))
    source = compiled.source()
    recorded = compiled.ops()
    assert recorded == ["matmul", "add", "max", "sub", "exp", "sum", "log", "sub", "gather", "mean", "neg"]
    forward = source.split("    # forward")[1].split("    # backward")[0]
    tagged = [
        line.split("  # ", 1)[1].split()[0]
        for line in forward.splitlines()
        if " = " in line and "  # " in line
    ]
    # log_p = sub1 - log1 (the second sub) is computed on the gather's line, for the picked entries only.
    assert tagged == recorded[:7] + recorded[8:]
    assert "gather1 = np.subtract(sub1[picked], log1, out=log1)  # gather (sub2's picked entries" in source
    namespace: dict[str, Any] = {}
    exec(compile_source(source), {"np": np, **runtime()}, namespace)
    assert callable(namespace["step"])
    assert "    Z = np.add(WX, b, out=WX)  # add" in source and "dW = dZ @ X.T" in source


def compile_source(source: str) -> Any:
    import builtins

    return builtins.compile(source, "<test>", "exec")


def runtime() -> dict[str, Any]:
    from tinygrad_softmax.compiler.runtime import RUNTIME

    return dict(RUNTIME)


def test_a_data_dependent_branch_is_caught() -> None:
    def fn(w: Tensor, x: Tensor) -> Tensor:
        if x.data.sum() > 0:  # Python control flow on a value: frozen at trace time
            return (w * x).sum()
        return (w * x).exp().sum()

    compiled = compile(fn)
    w = Tensor(np.ones(3), requires_grad=True)
    compiled(w, Tensor(np.ones(3)))
    with pytest.raises(CompileError, match="another path"):
        compiled(w, Tensor(-np.ones(3)))
    unchecked = compile(fn, check=False)
    unchecked(w, Tensor(np.ones(3)))
    unchecked(w, Tensor(-np.ones(3)))  # not checked: the frozen path runs, as documented


def test_a_value_computed_outside_the_engine_is_caught() -> None:
    def fn(w: Tensor, x: Tensor) -> Tensor:
        scale = Tensor(x.data.mean(axis=0))  # NumPy on .data: a constant to the trace
        return (w * x * scale).sum()

    compiled = compile(fn)
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    compiled(w, Tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(CompileError, match="constant const changed"):
        compiled(w, Tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]]))
    number = compile(lambda w, x: (w * Tensor(x.data.sum())).sum())
    number(w, Tensor(np.ones(2)))
    with pytest.raises(CompileError, match="outside the engine"):
        number(w, Tensor(np.zeros(2)))


def test_errors() -> None:
    with pytest.raises(CompileError, match="scalar"):
        compile(lambda a: a * 2.0)(Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(CompileError, match="must return a Tensor"):
        compile(lambda a: 1.0)(Tensor(np.ones(3), requires_grad=True))
    hidden = Tensor(np.ones(3), requires_grad=True, name="hidden")
    with pytest.raises(CompileError, match=r"hidden.*not an argument"):
        compile(lambda a: (a * hidden).sum())(Tensor(np.ones(3)))
    with pytest.raises(TypeError, match="callable"):
        compile(3)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="nothing compiled"):
        compile(lambda a: a.sum()).source()
    step = compile(classifier_step("column"))
    W, b, X, y = classifier_inputs("column", 4, 5, 3, np.float64)
    step(W, b, X, y)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        step(W, b, X, np.array([0, 1, -1, 2, 0]))


def test_no_grad_arguments_and_unused_gradients() -> None:
    compiled = compile(lambda a, b: (a * a).sum())
    loss, (da, db) = compiled(Tensor([1.0, 2.0], requires_grad=True), Tensor([5.0], requires_grad=True))
    assert loss == 5.0 and np.array_equal(da, [2.0, 4.0]) and np.array_equal(db, [0.0])
    loss, grads = compile(lambda a: (a * a).sum())(Tensor([1.0, 2.0]))
    assert loss == 5.0 and grads == (None,)


def test_callers_tensors_are_untouched() -> None:
    W, b, X, y = classifier_inputs("row", 4, 5, 3, np.float64)
    compile(classifier_step("row"))(W, b, X, y)
    assert W.grad is None and b.grad is None and W.grad_fn is None


def test_docstring_example_and_core_only() -> None:
    from tinygrad_softmax import compile as module_function

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(module_function, "compile", globs={}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0 and runner.summarize(verbose=False).attempted > 0


@pytest.mark.parametrize("layout", ["column", "row"])
def test_cli_prints_the_program_with_the_lines_that_make_dz_marked(layout: str, capsys: Any) -> None:
    from tinygrad_softmax import cli
    from tinygrad_softmax.lecture.program import MarkedProgram

    assert cli.main(["compile", "--layout", layout]) == 0
    out = capsys.readouterr().out
    marked = [line[2:].strip() for line in out.splitlines() if line.startswith("▶ ") and " = " in line]
    # Exactly the backward lines dZ depends on: from dloss = 1 (run once, above the function) down
    # to dZ, not dW or db.
    assert marked[0].startswith("dloss = np.ones") and marked[-1].startswith("dZ = ")
    assert len(marked) == 9 and not any(line.startswith(("dW", "db")) for line in marked)
    assert any(line.startswith("dsub1 = np.add(dsub2, dsub1_2, out=") for line in marked)
    assert "dZ = (P − Y)/N" in out and "def step(W, b, X, y):" in out
    assert "neg, mean, sub, gather, log, sum, exp" in out  # sum's spread is done by broadcasting
    program = MarkedProgram.for_classifier(layout, N=1)
    assert program.difference < 1e-15 and len(program.marked) == 9


def test_lines_computing_follows_the_names() -> None:
    from tinygrad_softmax.lecture.program import lines_computing

    lines = [
        "def f(a):",
        "# forward",
        "x = a + 1",
        "# backward",
        "d1 = x",
        "d2 = 3",
        "d3 = d1 * x",
        "d4 = d2",
        "d5 = np.add(d2, d2, out=d1)",  # d1's array holds d5, but d5 is not computed from d1
    ]
    source = "\n".join([lines[0]] + ["    " + line for line in lines[1:]]) + "\n"
    assert lines_computing(source, "d3") == (4, 6)
    assert lines_computing(source, "d4") == (5, 7)
    assert lines_computing(source, "d5") == (5, 8)
    with pytest.raises(KeyError):
        lines_computing(source, "x")


@pytest.mark.parametrize("turned", [False, True])
def test_matmul_either_way_round_in_both_engines(turned: bool) -> None:
    """Forced either way round, the compiled step writes that product and agrees with the eager one."""
    from tinygrad_softmax import orientation

    args = classifier_inputs("column", D=784, N=256, C=10, dtype=np.float64)
    with orientation.forced(turned):
        step = classifier_step("column")
        compiled = compile(step)
        loss, grads = compiled(*args)
        source = compiled.source()
        expected_loss, expected = eager(step, *args)
        _, again = compiled(*args)
    if turned:
        assert "WX = (X.T @ W.T).T" in source and "dW = (X @ dZ.T).T  #" in source  # no .copy()
        # The transposed view of a product no other name holds: an array of its own without a copy.
        assert grads[0].flags.f_contiguous and grads[0].base.base is None
    else:
        assert "WX = W @ X" in source and "(X.T @ W.T).T" not in source
    assert loss == expected_loss
    assert np.array_equal(grads[0], expected[0]) and np.array_equal(grads[1], expected[1])
    assert not np.shares_memory(grads[0], again[0]) and np.array_equal(grads[0], again[0])


def test_matmul_either_way_round_agrees_to_rounding() -> None:
    from tinygrad_softmax import orientation

    args = classifier_inputs("column", D=784, N=256, C=10, dtype=np.float64)
    results = []
    for turned in (False, True):
        with orientation.forced(turned):
            results.append(eager(classifier_step("column"), *args))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-12)
    assert any(g is not None for g in grads_a)
    for a, b in zip(grads_a, grads_b):
        if a is None or b is None:
            assert a is b
            continue
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.numerics
@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_training_compiled_is_training_eager_bit_for_bit(model: str) -> None:
    from tinygrad_softmax.lecture.train import train

    eager_run = train("iris", epochs=12, model=model, hidden=8, log=None)
    compiled_run = train("iris", epochs=12, model=model, hidden=8, log=None, compiled=True)
    assert compiled_run.train_loss == eager_run.train_loss
    assert compiled_run.test_accuracy == eager_run.test_accuracy
    assert np.array_equal(compiled_run.W, eager_run.W) and np.array_equal(compiled_run.b, eager_run.b)


def test_cli_train_compile(capsys: Any) -> None:
    from tinygrad_softmax import cli

    assert cli.main(["train", "--dataset", "iris", "--epochs", "5", "--compile"]) == 0
    assert "iris: train accuracy" in capsys.readouterr().out


def test_has_aux_hands_back_a_tensor_it_computed() -> None:
    step = classifier_step("row")

    def with_logits(W: Tensor, b: Tensor, X: Tensor, y: Any) -> tuple[Tensor, Tensor]:
        Z = logits(W, b, X, "row")
        return F.cross_entropy(Z, y, axis=1), Z

    compiled = compile(with_logits, has_aux=True)
    args = classifier_inputs("row", 4, 6, 3, np.float64)
    for _ in range(3):
        loss, grads, Z = compiled(*args)
        assert np.array_equal(Z, args[2].data @ args[0].data + args[1].data)
        expected_loss, expected = eager(step, *args)
        assert loss == expected_loss and np.array_equal(grads[0], expected[0])
    with pytest.raises(CompileError, match="has_aux"):
        compile(step, has_aux=True)(*args)


def test_the_benchmark_judges_the_compiled_step() -> None:
    from tinygrad_softmax import bench

    def result(size: str, compiled: float, torch_fused: float) -> Any:
        timings = {
            f"{bench.NUMPY_PREFIX}: a": bench.Timing(1.0, 1.0, 1.0),
            bench.COMPILED: bench.Timing(compiled, compiled, compiled),
            bench.ENGINE: bench.Timing(5.0, 5.0, 5.0),
            bench.ENGINE_FUSED: bench.Timing(3.0, 3.0, 3.0),
            bench.TORCH_FUSED: bench.Timing(torch_fused, torch_fused, torch_fused),
        }
        kinds = {name: "numpy" if name.startswith(bench.NUMPY_PREFIX) else "other" for name in timings}
        return bench.SizeResult(size, "column", timings, kinds)

    from tinygrad_softmax.bench.judging import _step_targets

    got = {
        t.claim: t.met
        for r in [result("tiny", 1.55, 1.5), result("small", 1.35, 3.0)]
        for t in _step_targets(r)
    }
    assert got[f"tiny, column, 1 thread: {bench.COMPILED} ≤ 1.6 × closed form"] is True
    assert got[f"tiny, column, 1 thread: {bench.COMPILED} faster than {bench.TORCH_FUSED}"] is False
    assert got[f"small, column, 1 thread: {bench.COMPILED} ≤ 1.3 × closed form"] is False
    assert got[f"small, column, 1 thread: {bench.COMPILED} faster than {bench.TORCH_FUSED}"] is True
    large = {t.claim: t.met for t in _step_targets(result("mnist-like", 1.02, 0.5))}
    assert large[f"mnist-like, column, 1 thread: {bench.COMPILED} ≤ 1.03 × closed form"] is True
    assert not any("JAX" in claim for claim in large)  # JAX is not installed: no peer row


def test_docs_show_the_program_the_cli_prints(capsys: Any) -> None:
    from pathlib import Path

    from tinygrad_softmax import cli

    cli.main(["compile"])
    printed = capsys.readouterr().out.rstrip("\n")
    docs = (Path(__file__).resolve().parents[1] / "docs" / "compile.md").read_text(encoding="utf-8")
    assert f"```text\n{printed}\n```" in docs, "docs/compile.md shows an older program: paste the new one"


def test_the_compiler_is_a_module_and_compile_the_function() -> None:
    """``tinygrad_softmax.compile`` is the function; the package that writes programs is ``compiler``."""
    import importlib
    from pathlib import Path

    import tinygrad_softmax.compiler as compiler

    assert callable(tg.compile) and tg.compile is compiler.compile
    assert compiler.__name__ == "tinygrad_softmax.compiler" and compiler.__file__.endswith("__init__.py")
    assert tg.CompileError is compiler.CompileError
    for room in ("symbolic", "program", "trace", "backward", "runtime", "cache"):
        module = importlib.import_module(f"tinygrad_softmax.compiler.{room}")
        lines = Path(module.__file__ or "").read_text(encoding="utf-8").count("\n")
        assert lines < 400, f"compiler/{room}.py has {lines} lines: more than one sitting"
