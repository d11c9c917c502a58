"""The three-way comparison: autograd vs closed form vs finite differences, and its renderers."""

import json

import numpy as np
import pytest

from tinygrad_softmax import analytic
from tinygrad_softmax.cli import main
from tinygrad_softmax.gradcheck import numerical_gradient, rel_error
from tinygrad_softmax.lecture import build_classifier
from tinygrad_softmax.lecture.lessons.compare import BANDS, PAIRS, Bands, compare

# Numbers whose last bits depend on the CPU's BLAS kernel: .ci/run runs these again under another.
pytestmark = pytest.mark.numerics


@pytest.mark.parametrize("layout", ["column", "row"])
def test_float64_comparison_passes_with_tiny_errors(layout):
    result = compare(layout, "float64")
    assert result.passed and result.failures() == []
    assert [row.name for row in result.rows] == ["dZ", "dW", "db"]
    for row in result.rows:
        auto_closed, auto_num, closed_num = row.diffs
        assert auto_closed.rel < 1e-13  # same formula, two routes: rounding only
        assert 0 < auto_num.rel < 1e-7  # central differences are never exact
        assert closed_num.rel < 1e-7
        assert row.verdict == "ok" and row.dtype == "float64"
    assert all(s.passed for s in result.sanity)


@pytest.mark.parametrize("layout", ["column", "row"])
def test_table_numbers_are_the_real_differences(layout):
    result = compare(layout, "float64")
    model = build_classifier(layout)  # the same seed-0 classifier, built independently here
    axis = analytic.CLASS_AXIS[layout]
    ref = analytic.linear_classifier(model.W.data, model.b.data, model.X.data, model.labels, layout)
    dz = result.rows[0]
    assert dz.shape == model.Z.shape
    assert dz.diffs[0].max_abs == pytest.approx(np.abs(model.Z.grad - ref.dZ).max(), abs=1e-18)
    assert dz.diffs[0].rel == pytest.approx(rel_error(model.Z.grad, ref.dZ), abs=1e-18)
    # The three distances obey the triangle inequality, as distances between three real arrays must.
    for row in result.rows:
        auto_closed, auto_num, closed_num = (d.max_abs for d in row.diffs)
        assert abs(auto_num - closed_num) <= auto_closed + 1e-18

    # The numerical witness is central differences: redo them here on the closed-form loss.
    numeric = numerical_gradient(lambda z: analytic.cross_entropy(z, model.labels, axis), model.Z.data.copy())
    assert rel_error(numeric, ref.dZ) < 1e-7
    assert dz.worst_values[2] == pytest.approx(numeric[dz.worst_index], rel=1e-6)
    db = result.rows[2]
    assert db.shape == model.b.shape
    assert db.worst_values[0] == pytest.approx(model.b.grad[db.worst_index])
    assert db.worst_values[1] == pytest.approx(ref.db[db.worst_index])


def test_with_dx_adds_the_input_gradient_row():
    result = compare("column", with_dx=True)
    names = [row.name for row in result.rows]
    assert names == ["dZ", "dW", "db", "dX"]
    dx = result.rows[3]
    assert dx.shape == (4, 5) and dx.formula == "Wᵀ dZ" and dx.verdict == "ok"
    assert compare("row", with_dx=True).rows[3].shape == (5, 4)


def test_float32_uses_looser_stated_bands():
    result = compare("column", "float32", with_dx=True)
    assert result.passed
    assert result.bands == BANDS["float32"] and BANDS["float32"].ok > BANDS["float64"].ok
    for row in result.rows:
        assert row.dtype == "float32"
        # Finite differences in float32 are visibly worse than in float64 ...
        assert row.diffs[1].rel > 1e-7
        # ... but inside the float32 band.
        assert row.diffs[1].rel < BANDS["float32"].ok
    assert "float32" in result.to_text() and f"{BANDS['float32'].ok:.0e}" in result.to_text()


def test_bands_give_the_three_verdicts():
    bands = Bands(ok=1e-7, fail=1e-4)
    assert bands.verdict(3e-9) == "ok"
    assert bands.verdict(1e-6) == "suspicious"
    assert bands.verdict(2e-3) == "WRONG"


def test_sanity_lines_hold_with_the_numbers_that_decide_them():
    result = compare("column")
    initial, sums, bias = result.sanity
    assert initial.passed and "ln 3 = 1.098612" in initial.detail
    assert sums.passed and "sums to 0" in sums.name
    assert bias.passed and "db" in bias.name


def test_text_markdown_and_json_carry_the_same_rows():
    result = compare("row", with_dx=True)
    text, markdown, data = result.to_text(), result.to_markdown(), json.loads(result.to_json())
    assert data == json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is True and data["layout"] == "row"
    assert list(data["rows"][0]["pairs"]) == [f"{a} vs {b}" for a, b in PAIRS]
    table_lines = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert len(table_lines) == len(result.rows) == len(data["rows"])
    for line, row in zip(table_lines, data["rows"]):
        assert line.startswith(f"| `{row['name']}`")
        for pair in row["pairs"].values():
            # An exact zero prints as 0 (on some BLAS kernels, autograd = closed form to the bit).
            figure = "0" if pair["rel"] == 0 else f"{pair['rel']:.1e}"
            assert f" {figure} |" in line and f" {figure}" in text
        assert line.rstrip(" |").endswith(row["verdict"])
    # The terminal table is aligned: every body line of the table has the same width up to the verdict.
    body = [line for line in text.splitlines() if line.startswith(("dZ =", "dW =", "db =", "dX ="))]
    assert len(body) == 4 and len({line.index(" ok") for line in body}) == 1
    assert text.rstrip().endswith("every sanity line holds.")


def test_unknown_dtype_or_bug_is_a_clear_error():
    with pytest.raises(ValueError, match="float16"):
        compare(dtype="float16")
    with pytest.raises(ValueError, match="no-such-bug"):
        compare(bug="no-such-bug")


def test_cli_compare_writes_markdown_and_json(tmp_path, capsys):
    md, js = tmp_path / "table.md", tmp_path / "table.json"
    status = main(["compare", "--layout", "row", "--with-dx", "--markdown", str(md), "--json", str(js)])
    out = capsys.readouterr().out
    assert status == 0
    assert "row layout, float64" in out and "PASS" in out
    assert md.read_text(encoding="utf-8").startswith("### Gradient check: row layout, float64")
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["passed"] and [r["name"] for r in data["rows"]] == ["dZ", "dW", "db", "dX"]


def test_cli_compare_float32(capsys):
    assert main(["compare", "--dtype", "float32"]) == 0
    assert "column layout, float32" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nan_or_an_infinity_in_autograd_is_wrong_not_ok(bad):
    """Every verdict reads rel_error with `<`: NaN compares False, so it lands on WRONG, never on ok."""
    from tinygrad_softmax.lecture.lessons.compare import _row, _sanity

    good = np.array([[0.25, -0.5], [0.125, 0.125]])
    auto = good.copy()
    auto[1, 0] = bad
    row = _row("dZ", "(P − Y)/N", auto, good, good, BANDS["float64"])
    assert row.verdict == "WRONG" and row.worst_index == (1, 0)
    assert all(d.rel == 1.0 for d in row.diffs[:2]) and row.diffs[2].rel == 0.0
    model = build_classifier("column")
    w, b, x, labels = model.W.data, model.b.data, model.X.data, model.labels
    dz = np.full((3, labels.size), bad)
    with np.errstate(invalid="ignore"):  # inf − inf in the db line: NaN, judged below
        sanity = _sanity(
            w, b, x, labels, "column", {"dZ": dz, "db": dz.sum(axis=1, keepdims=True)}, "float64", 3
        )
    assert [s.passed for s in sanity] == [True, False, False]
