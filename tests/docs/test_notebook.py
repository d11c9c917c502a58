"""docs/lecture.ipynb runs top to bottom, so the lecture can never rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tinygrad_softmax import viz

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "lecture.ipynb"


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in code_cells(notebook):
        assert cell.outputs == [], f"cell {cell.source[:40]!r} was committed with outputs"
        assert cell.execution_count is None


def _execute(folder):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}
    ).execute()
    return notebook


@pytest.fixture(scope="session")
def executed(made_once):
    """The notebook executed in a fresh kernel, in an empty folder, once per test run; any cell error
    fails here."""
    return made_once("notebook", _execute)


def outputs_of(notebook, mime):
    """Every output of type ``mime`` ('stream' for printed text), in cell order."""
    found = []
    for cell in code_cells(notebook):
        for output in cell.outputs:
            if mime == "stream" and output.output_type == "stream" and output.name == "stdout":
                found.append(output.text)
            elif output.output_type in ("display_data", "execute_result") and mime in output.data:
                found.append(output.data[mime])
    return found


def test_every_code_cell_ran_without_errors_or_warnings(executed):
    for cell in code_cells(executed):
        assert cell.execution_count is not None
        for output in cell.outputs:
            assert output.output_type != "error"
            assert not (output.output_type == "stream" and output.name == "stderr"), output.text


def test_the_lecture_shows_its_pictures_and_tables(executed):
    graphs = outputs_of(executed, "image/svg+xml")
    assert len(graphs) == 4  # the forward graph, the graph with gradients, the red anomaly, the two-layer net
    red = [svg for svg in graphs if viz.RED in svg]
    assert len(red) == 1 and "exp(Z + 1000)" in red[0]  # only the offending node is drawn in red
    assert "H1" in graphs[3] and "W2" in graphs[3]
    # the derived formulas' slide, the bias gradient (broadcasting's adjoint), the epsilon sweep,
    # the decision boundaries, the Hessian's heat map, Newton vs gradient descent
    assert len(outputs_of(executed, "image/png")) == 6
    markdown = "\n".join(outputs_of(executed, "text/markdown"))
    assert "PASS" in markdown  # the comparison table
    assert "Chain-rule ledger" in markdown


def test_the_printed_numbers_agree_with_the_derivation(executed):
    text = "\n".join(outputs_of(executed, "stream"))
    for check in ("Z.grad vs (P − Y)/N", "W.grad vs dZ Xᵀ", "b.grad vs Σ_n dZ"):
        line = next(line for line in text.splitlines() if line.startswith(check))
        assert float(line.rsplit("=", 1)[1]) < 1e-14
    assert "∂L/∂Z = (softmax(Z) − onehot(y))/N" in text and "∂L/∂W = ∂L/∂Z · Xᵀ" in text
    assert "naive loss: nan" in text
    assert "AnomalyError: exp: forward produced Inf" in text
    assert "float64: best eps" in text
    linear, mlp = (
        float(line.rsplit(" ", 1)[1].rstrip("%")) for line in text.splitlines() if "train accuracy" in line
    )
    assert linear < 60 and mlp >= 97  # one hidden layer separates the spiral
    hessian = next(line for line in text.splitlines() if "max |engine − closed form|" in line)
    assert float(hessian.rsplit("=", 1)[1]) < 1e-14
    newton = next(line for line in text.splitlines() if line.startswith("Newton: "))
    assert int(newton.split()[1]) <= 15
    line = next(line for line in text.splitlines() if line.startswith("max |Z2.grad − (P − Y)/N|"))
    assert float(line.rsplit("=", 1)[1]) < 1e-15


def test_the_graphs_fit_a_slide_as_the_graph_command_draws_them(executed):
    """Each inline graph is the slide-fit drawing: a 16:9 canvas, not a chain thousands of points wide."""
    import re

    from tinygrad_softmax.lecture.views import slides

    low, high = slides.BANDS["16:9"]
    for svg in outputs_of(executed, "image/svg+xml"):
        width, height = (float(v) for v in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
        assert low <= width / height <= high, (width, height)


def test_the_explorer_steps_through_the_walk_inline(executed):
    pages = [page for page in outputs_of(executed, "text/html") if "backward pass explorer" in page]
    assert len(pages) == 1 and pages[0].startswith("<iframe srcdoc=")
