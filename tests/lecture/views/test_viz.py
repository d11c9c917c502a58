"""The graph as a picture: DOT structure, determinism, options, files, and a missing Graphviz."""

from __future__ import annotations

import html
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax import Tensor, ledger, viz
from tinygrad_softmax import functional as F
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import build_classifier

NODE = re.compile(r"^\s*(\w+) \[label=<(.*)>(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)")


def parse(source: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """DOT text → ({node id: the first bold text of its label}, [(tail, head), ...])."""
    nodes, edges = {}, []
    for line in source.splitlines():
        if match := EDGE.match(line):
            edges.append((match.group(1), match.group(2)))
        elif match := NODE.match(line):
            bold = re.search(r"<B>(.*?)</B>", match.group(2))
            assert bold is not None, line
            nodes[match.group(1)] = html.unescape(bold.group(1))
    return nodes, edges


def successors(edges: list[tuple[str, str]], node: str) -> list[str]:
    return [head for tail, head in edges if tail == node]


def predecessors(edges: list[tuple[str, str]], node: str) -> list[str]:
    return [tail for tail, head in edges if head == node]


def node_id(nodes: dict[str, str], title: str) -> str:
    matches = [k for k, v in nodes.items() if v == title]
    assert len(matches) == 1, (title, matches)
    return matches[0]


@pytest.fixture(params=["column", "row"])
def model(request):
    return build_classifier(request.param)


def test_every_op_of_the_graph_appears_once_with_its_name(model):
    nodes, _ = parse(viz.to_dot(model.loss).source)
    ops_in_graph = Counter()
    stack, seen = [model.loss], set()
    while stack:  # the test's own walk over the recorded graph
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.op:
            ops_in_graph[t.op] += 1
        stack.extend(t.parents)
    drawn_ops = Counter(title for key, title in nodes.items() if key.startswith("op"))
    assert drawn_ops == ops_in_graph
    assert set(ops_in_graph) >= {"matmul", "add", "sub", "exp", "sum", "log", "gather", "mean", "neg"}
    for name in ("W", "X", "b", "Z", "loss", "max (detached)"):
        node_id(nodes, name)  # exactly one node with that name
    tensors = [k for k in nodes if k.startswith("t")]
    assert len(tensors) == len(seen)


def test_edges_follow_the_forward_pass(model):
    nodes, edges = parse(viz.to_dot(model.loss).source)
    for tail, head in edges:  # tensor → op → tensor, never tensor → tensor or op → op
        assert tail[0] != head[0]
    W, X, b, Z, loss = (node_id(nodes, n) for n in ("W", "X", "b", "Z", "loss"))
    for leaf in (W, X, b):
        assert predecessors(edges, leaf) == []
    assert successors(edges, loss) == []
    (matmul,) = successors(edges, W)
    assert nodes[matmul] == "matmul" and set(predecessors(edges, matmul)) == {W, X}
    (product,) = successors(edges, matmul)
    (add,) = successors(edges, product)
    assert nodes[add] == "add" and set(predecessors(edges, add)) == {product, b}
    assert successors(edges, add) == [Z]
    # From Z the chain of ops runs forward to the loss.
    seen_ops, frontier = [], [Z]
    while frontier:
        node = frontier.pop(0)
        for op in successors(edges, node):
            seen_ops.append(nodes[op])
            frontier.extend(successors(edges, op))
    assert seen_ops[-3:] == ["gather", "mean", "neg"]
    (neg,) = predecessors(edges, loss)
    assert nodes[neg] == "neg"


def test_two_runs_give_identical_dot_text():
    options = dict(show_values=True, show_grads=True, show_rules=True)
    first = build_classifier()
    second = build_classifier()
    a = viz.to_dot(first.loss, **options, clusters={"cross_entropy": (first.loss, [first.Z])}).source
    b = viz.to_dot(second.loss, **options, clusters={"cross_entropy": (second.loss, [second.Z])}).source
    assert a == b
    assert "0x" not in a  # no memory addresses in node ids


def test_kinds_shapes_and_dtypes_are_written():
    model = build_classifier()
    source = viz.to_dot(model.loss).source
    nodes, _ = parse(source)
    lines = {
        node: next(line for line in source.splitlines() if line.strip().startswith(f"{node} "))
        for node in nodes
    }
    assert "parameter" in lines[node_id(nodes, "W")] and "parameter" in lines[node_id(nodes, "b")]
    assert "input" in lines[node_id(nodes, "X")] and "parameter" not in lines[node_id(nodes, "X")]
    assert "root" in lines[node_id(nodes, "loss")]
    assert "3×4  float64" in lines[node_id(nodes, "W")]
    assert "scalar  float64" in lines[node_id(nodes, "loss")]
    gather = lines[node_id(nodes, "gather")]
    assert "axis=0" in gather and "index 1×5" in gather
    assert "keepdims" in lines[node_id(nodes, "sum")]
    assert "float32" in viz.to_dot(build_classifier(dtype=np.float32).loss).source


def test_values_and_grads_small_in_full_large_as_a_summary():
    model = build_classifier()
    assert model.W.grad is not None
    plain = viz.to_dot(model.loss).source
    rich = viz.to_dot(model.loss, show_values=True, show_grads=True).source
    w_value, w_grad = f"{model.W.data[0, 0]:.3f}", f"{model.W.grad[0, 1]:.3f}"
    assert w_value in rich and w_grad in rich
    assert w_value not in plain and w_grad not in plain
    big = build_classifier(D=40, N=30)
    text = viz.to_dot(big.loss, show_values=True).source
    assert f"mean {big.X.data.mean():.3g}" in text
    assert f"min {big.X.data.min():.3g}" in text


def test_show_rules_writes_each_ops_local_rule():
    model = build_classifier()
    with_rules = viz.to_dot(model.loss, show_rules=True).source
    without = viz.to_dot(model.loss).source
    stack, ops = [model.loss], {}
    while stack:
        t = stack.pop()
        if t.grad_fn is not None:
            ops[t.op] = t.grad_fn.rule
        stack.extend(t.parents)
    for op, rule in ops.items():
        first_clause = rule.split(", ")[0].split(" ")[0]
        assert html.escape(first_clause) in with_rules, op
    assert "∂L/∂in = ∂L/∂out / in" in with_rules and "∂L/∂in" not in without


def test_highlight_draws_only_the_given_tensors_in_red():
    model = build_classifier()
    source = viz.to_dot(model.loss, highlight=[model.Z]).source
    red = [line for line in source.splitlines() if viz.RED in line]
    assert len(red) == 1 and "<B>Z</B>" in red[0]
    assert viz.RED not in viz.to_dot(model.loss).source


def test_cluster_boxes_the_cross_entropy_and_collapse_makes_it_one_node():
    model = build_classifier()
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    source = viz.to_dot(model.loss, clusters=clusters).source
    block = source[source.index("subgraph cluster_0") :]
    block = block[: block.index("}")]
    assert "label=cross_entropy" in block
    inside, _ = parse(block)
    titles = set(inside.values())
    assert {"loss", "max (detached)", "gather", "exp", "log", "neg"} <= titles
    assert not titles & {"Z", "W", "X", "b", "matmul", "add"}

    collapsed = viz.to_dot(model.loss, clusters=clusters, collapse=True).source
    nodes, edges = parse(collapsed)
    assert "subgraph" not in collapsed
    assert set(nodes.values()) == {"W", "X", "b", "t2", "Z", "matmul", "add", "cross_entropy", "loss"}
    fn = node_id(nodes, "cross_entropy")
    assert predecessors(edges, fn) == [node_id(nodes, "Z")]
    assert successors(edges, fn) == [node_id(nodes, "loss")]
    assert "8 ops" in collapsed


def test_cluster_errors_name_the_cluster():
    model = build_classifier()
    stranger = Tensor([1.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"'ce'.*not in the drawn graph"):
        viz.to_dot(model.loss, clusters={"ce": (stranger, [model.Z])})
    with pytest.raises(ValueError, match=r"'ce'.*does not depend"):
        viz.to_dot(model.loss, clusters={"ce": (model.Z, [model.loss])})
    with pytest.raises(ValueError, match="overlap"):
        viz.to_dot(model.loss, clusters={"a": (model.loss, [model.Z]), "b": (model.loss, [model.W])})


def test_a_tensor_used_twice_keeps_both_arrows():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    nodes, edges = parse(viz.to_dot((x * x).sum()).source)
    mul = node_id(nodes, "mul")
    assert predecessors(edges, mul) == [node_id(nodes, "x")] * 2


def test_drawing_changes_nothing_in_the_graph(tmp_path):
    model = build_classifier()
    before = {name: getattr(model, name).grad.copy() for name in ("W", "b", "Z")}
    parents = model.loss.parents
    viz.render(model.loss, tmp_path / "g.png", show_grads=True, show_values=True, show_rules=True)
    for name, grad in before.items():
        np.testing.assert_array_equal(getattr(model, name).grad, grad)
    assert model.loss.parents is parents


def test_png_svg_pdf_by_extension(tmp_path):
    model = build_classifier()
    png = viz.render(model.loss, tmp_path / "graph.png")
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        width, height = image.size
        assert image.format == "PNG"
    assert 800 < width < 20000 and 100 < height < 5000
    assert b"<svg" in viz.render(model.loss, tmp_path / "graph.svg").read_bytes()[:1000]
    assert viz.render(model.loss, tmp_path / "graph.pdf").read_bytes().startswith(b"%PDF")


def test_dpi_scales_the_png(tmp_path):
    model = build_classifier()
    small = viz.png_size(viz.render(model.loss, tmp_path / "a.png", dpi=72))
    large = viz.png_size(viz.render(model.loss, tmp_path / "b.png", dpi=144))
    assert large[0] == pytest.approx(2 * small[0], rel=0.05)


def test_unknown_extension_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"'\.jpg'.*\.png, \.svg, \.pdf"):
        viz.render(build_classifier().loss, tmp_path / "graph.jpg")


def _assert_install_help(message: str) -> None:
    from tinygrad_softmax.lecture.extras import GRAPHVIZ_INSTALL

    # One line: what was skipped, and the one copy of the install commands.
    assert message.strip().count("\n") == 0
    assert "skipped " in message and "dot is not installed" in message
    assert f"install it with: {GRAPHVIZ_INSTALL}" in message


def test_without_dot_the_error_says_how_to_install_and_the_dot_text_is_saved(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    model = build_classifier()
    target = tmp_path / "out" / "graph.png"
    with pytest.raises(viz.GraphvizNotFoundError) as caught:
        viz.render(model.loss, target, show_grads=True)
    assert isinstance(caught.value, RuntimeError)
    message = str(caught.value)
    _assert_install_help(message)
    saved = tmp_path / "out" / "graph.dot"
    assert caught.value.dot_path == saved and str(saved) in message
    assert saved.read_text(encoding="utf-8") == viz.to_dot(model.loss, show_grads=True).source
    assert not target.exists()


def test_when_the_bindings_cannot_run_dot_the_same_error_is_raised(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(viz.rendering.shutil, "which", lambda name: f"/usr/bin/{name}")  # a stale lookup
    with pytest.raises(viz.GraphvizNotFoundError, match="dot is not installed"):
        viz.render(build_classifier().loss, tmp_path / "graph.svg")
    assert (tmp_path / "graph.dot").exists()


def test_rankdir_is_checked():
    with pytest.raises(ValueError, match=r"rankdir.*'XY'"):
        viz.to_dot(build_classifier().loss, rankdir="XY")


# ---------------------------------------------------------------- compact drawing

FOLDED = re.compile(r">([^<>]+?) · ([^<]+)</FONT>")


def unnamed_intermediates(root: Tensor) -> list[Tensor]:
    """The test's own pick of what compact folds: made by an op, no name of its own, not the root.

    The names cross_entropy gives its steps (``exp``, ``log S``, ...) are not a user's own.
    """
    return [
        t
        for t in viz.graph_order(root)
        if t.parents and (not t.name or t.name in F.STEP_NAMES) and t is not root
    ]


def node_lines(source: str) -> dict[str, str]:
    return {m.group(1): line for line in source.splitlines() if (m := NODE.match(line))}


def test_compact_folds_each_unnamed_intermediate_into_its_op(model):
    full_nodes, full_edges = parse(viz.to_dot(model.loss).source)
    source = viz.to_dot(model.loss, compact=True).source
    nodes, edges = parse(source)
    folded = unnamed_intermediates(model.loss)
    assert len(folded) >= 8
    assert len(nodes) == len(full_nodes) - len(folded)
    # Every op still appears, as often as in the full drawing.
    ops = Counter(title for key, title in nodes.items() if key.startswith("op"))
    assert ops == Counter(title for key, title in full_nodes.items() if key.startswith("op"))
    for name in ("W", "X", "b", "Z", "loss", "max (detached)"):
        node_id(nodes, name)
    # No unnamed record is left; each op node names the tensor it made, with the full drawing's id.
    assert not [title for key, title in nodes.items() if key.startswith("t") and re.fullmatch(r"t\d+", title)]
    labels = viz.tensor_labels(model.loss)
    ids = {t: f"t{k}" for k, t in enumerate(viz.graph_order(model.loss))}
    lines = node_lines(source)
    for t in folded:
        tid = ids[t]
        (op,) = predecessors(full_edges, tid)
        assert full_nodes[tid] == labels[t] and nodes[op] == t.op
        assert FOLDED.findall(lines[op]) == [(labels[t], viz.shape_text(t.shape))]
    # The arrows are the full drawing's, with each folded record merged into its op.
    merge = {ids[t]: predecessors(full_edges, ids[t])[0] for t in folded}
    contracted = [(merge.get(a, a), merge.get(b, b)) for a, b in full_edges]
    assert edges == [(a, b) for a, b in contracted if a != b]


def test_compact_ids_are_the_ledgers_ids():
    model = build_classifier()
    lines = node_lines(viz.to_dot(model.loss, compact=True).source)
    drawn = {tid: key for key, line in lines.items() for tid, _ in FOLDED.findall(line)}
    rows = {row.node: row for row in ledger.ledger_rows(model.loss)}
    assert drawn and set(drawn) <= set(rows)
    nodes, _ = parse(viz.to_dot(model.loss, compact=True).source)
    for tid, key in drawn.items():
        assert rows[tid].op.startswith(nodes[key] + "(")


def test_compact_png_is_markedly_less_wide(tmp_path):
    model = build_classifier("column")
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    full = viz.render(model.loss, tmp_path / "full.png", clusters=clusters, slide=None)
    compact = viz.render(model.loss, tmp_path / "compact.png", clusters=clusters, compact=True, slide=None)
    with Image.open(full) as a, Image.open(compact) as b:
        assert (a.size, b.size) == (viz.png_size(full), viz.png_size(compact))
        (full_w, full_h), (compact_w, compact_h) = a.size, b.size
    assert compact_w < 0.75 * full_w
    assert compact_h < 1.5 * full_h
    assert compact_w / compact_h < full_w / full_h


def test_compact_dot_text_is_deterministic():
    options = dict(show_values=True, show_grads=True, show_rules=True, compact=True)
    first, second = build_classifier(), build_classifier()
    a = viz.to_dot(first.loss, **options, clusters={"cross_entropy": (first.loss, [first.Z])}).source
    b = viz.to_dot(second.loss, **options, clusters={"cross_entropy": (second.loss, [second.Z])}).source
    assert a == b
    assert a != viz.to_dot(first.loss, show_values=True, show_grads=True, show_rules=True).source


def test_compact_op_node_carries_the_outputs_values_grad_and_rule():
    model = build_classifier()
    exp = next(t for t in viz.graph_order(model.loss) if t.op == "exp")
    assert exp.grad is not None and exp.name == F.STEP_NAMES[1]
    source = viz.to_dot(model.loss, compact=True, show_values=True, show_grads=True, show_rules=True).source
    nodes, _ = parse(source)
    line = node_lines(source)[node_id(nodes, "exp")]
    for text in (f"{exp.data[0, 0]:.3f}", f"{exp.grad[1, 2]:.3f}", "data", "grad"):
        assert text in line
    assert html.escape(exp.grad_fn.rule.split(", ")[0].split(" ")[0]) in line
    plain = node_lines(viz.to_dot(model.loss, compact=True).source)[node_id(nodes, "exp")]
    assert f"{exp.data[0, 0]:.3f}" not in plain and "grad" not in plain


def test_compact_highlight_turns_the_op_of_a_folded_tensor_red():
    model = build_classifier()
    exp = next(t for t in viz.graph_order(model.loss) if t.op == "exp")
    source = viz.to_dot(model.loss, compact=True, highlight=[exp]).source
    red = [line for line in source.splitlines() if viz.RED in line]
    assert len(red) == 1 and "<B>exp</B>" in red[0]
    named = viz.to_dot(model.loss, compact=True, highlight=[model.Z]).source
    red = [line for line in named.splitlines() if viz.RED in line]
    assert len(red) == 1 and "<B>Z</B>" in red[0]
    assert viz.RED not in viz.to_dot(model.loss, compact=True).source


def test_compact_keeps_clusters_and_collapse():
    model = build_classifier()
    clusters = {"cross_entropy": (model.loss, [model.Z])}
    source = viz.to_dot(model.loss, clusters=clusters, compact=True).source
    block = source[source.index("subgraph cluster_0") :]
    inside, _ = parse(block[: block.index("}")])
    ce_ops = {"sub", "exp", "sum", "log", "gather", "mean", "neg"}
    assert set(inside.values()) == {"max (detached)", *ce_ops, "loss"}
    collapsed = viz.to_dot(model.loss, clusters=clusters, collapse=True, compact=True).source
    nodes, edges = parse(collapsed)
    assert set(nodes.values()) == {"W", "X", "b", "Z", "matmul", "add", "cross_entropy", "loss"}
    fn = node_id(nodes, "cross_entropy")
    assert predecessors(edges, fn) == [node_id(nodes, "Z")]
    assert successors(edges, node_id(nodes, "matmul")) == [node_id(nodes, "add")]


def test_compact_keeps_an_unnamed_root_and_both_arrows_of_x_times_x():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    loss = (x * x).sum()
    nodes, edges = parse(viz.to_dot(loss, compact=True).source)
    assert set(nodes.values()) == {"x", "mul", "sum", viz.tensor_labels(loss)[loss]}
    mul, total = node_id(nodes, "mul"), node_id(nodes, "sum")
    assert predecessors(edges, mul) == [node_id(nodes, "x")] * 2
    assert successors(edges, mul) == [total]


# ---------------------------------------------------------------- the command line


def test_cli_graph_writes_a_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["graph", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 800


def test_cli_graph_options(tmp_path):
    out = tmp_path / "g.png"
    argv = ["graph", "--out", str(out), "--layout", "row", "--show-grads", "--show-values", "--show-rules"]
    assert main([*argv, "--collapse", "--rankdir", "TB", "--dpi", "120", "--format", "svg"]) == 0
    svg = (tmp_path / "g.svg").read_text(encoding="utf-8")
    assert "cross_entropy" in svg and "∂L/∂in₁ = ∂L/∂out" in svg
    assert not out.exists()


def test_cli_graph_without_dot_saves_the_dot_text(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["graph", "--out", str(tmp_path / "g.png")]) == 1
    _assert_install_help(capsys.readouterr().err)
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")


def test_cli_graph_bad_extension(tmp_path, capsys):
    assert main(["graph", "--out", str(tmp_path / "g.gif")]) == 2
    assert "'.gif'" in capsys.readouterr().err


def test_a_notebook_shows_the_digraph_inline():
    dot = viz.to_dot(build_classifier().loss, title="Softmax classifier")
    bundle = dot._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and "Softmax classifier" in svg and "matmul" in svg


def test_cli_graph_compact(tmp_path, capsys):
    full, compact = tmp_path / "full.svg", tmp_path / "compact.svg"
    assert main(["graph", "--out", str(full), "--wide"]) == 0
    assert main(["graph", "--out", str(compact), "--compact"]) == 0
    assert str(compact) in capsys.readouterr().out
    assert "exp · 3×5" in compact.read_text(encoding="utf-8")
    assert "exp · 3×5" not in full.read_text(encoding="utf-8")
