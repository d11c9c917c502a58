"""Pictures that fit a slide: the rule, and the row wrapping that makes a long graph meet it.

The rule. A picture fits a slide when, scaled to fill a 1920×1080 slide (the
scale is ``min(1920 / width, 1080 / height)``),

* its aspect ratio width/height is in the band of the slide shape: 1.5–2.1 for
  16:9 (the default), 1.15–1.55 for 4:3;
* its smallest text is at least 24 px tall: 18 pt at 96 px per inch, the size
  of a slide's smallest readable text on a 20-inch-wide 1920 px screen. For a
  graph the smallest text is the smallest ``POINT-SIZE``/``fontsize`` in its
  DOT source, rendered at ``dpi/72`` px per point; for a plot, matplotlib's.

:func:`fit` gets a DOT graph there: a long left-to-right chain is wrapped onto
rows (each row left to right, rows top to bottom, a cluster cut by a row break
drawn as "name, continued"), trying 1 to 6 rows and keeping the layout whose
text comes out largest (rows that ``dot`` stacks out of order only as a last
resort); then the canvas is padded to the exact ratio and the resolution set so
the PNG is 1920 px wide.

A graph too big for one slide at that size is cut by :func:`split` into pieces
along its ranks, one slide each, the tensor where one piece ends drawn again
where the next begins.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import dot

__all__ = [
    "picture",
    "SLIDE",
    "MIN_TEXT_PX",
    "RATIOS",
    "BANDS",
    "min_font_pt",
    "text_px",
    "fits",
    "wrap_rows",
    "wrapped_rows",
    "in_row_order",
    "split_nodes",
    "split",
    "fit",
    "canvas_inches",
]

SLIDE = (1920, 1080)
MIN_TEXT_PX = 24.0  # 18 pt at 96 px per inch
RATIOS = {"16:9": 16 / 9, "4:3": 4 / 3}
BANDS = {"16:9": (1.5, 2.1), "4:3": (1.15, 1.55)}
MAX_ROWS = 6


def min_font_pt(source: str) -> float:
    """The smallest text size in a DOT source: POINT-SIZE in labels, fontsize attributes (14 if none)."""
    sizes = [float(s) for s in re.findall(r'POINT-SIZE="([\d.]+)"', source)]
    sizes += [float(s) for s in re.findall(r'fontsize="?([\d.]+)', source)]
    return min(sizes) if sizes else 14.0


def text_px(font_pt: float, dpi: float, size: tuple[int, int]) -> float:
    """How tall ``font_pt`` text is, in px, when a ``size`` picture made at ``dpi`` fills the slide."""
    width, height = size
    return font_pt * dpi / 72 * min(SLIDE[0] / width, SLIDE[1] / height)


def fits(size: tuple[int, int], font_pt: float, dpi: float, shape: str = "16:9") -> bool:
    """The rule: aspect ratio in the band, smallest text at least MIN_TEXT_PX on the slide."""
    low, high = BANDS[shape]
    return low <= size[0] / size[1] <= high and text_px(font_pt, dpi, size) >= MIN_TEXT_PX


# ---------------------------------------------------------------- wrapping onto rows


@dataclass
class _Parsed:
    """A DOT source as viz writes it: header lines, nodes (with their cluster), clusters, edges."""

    header: list[str]
    nodes: dict[str, str]  # name → its line
    cluster_of: dict[str, str]  # node name → cluster name
    cluster_attrs: dict[str, str]  # cluster name → its "graph [...]" line
    edges: list[tuple[str, str, str]]  # tail, head, the whole line


_NODE = re.compile(r"^\t+(\w+) \[")
_EDGE = re.compile(r"^\t+(\w+) -> (\w+)")


def _parse(source: str) -> _Parsed:
    lines = source.rstrip().splitlines()
    parsed = _Parsed([lines[0]], {}, {}, {}, [])
    cluster = None
    for line in lines[1:-1]:
        if line.startswith("\tsubgraph "):
            cluster = line.split()[1]
        elif cluster and line == "\t}":
            cluster = None
        elif cluster and line.startswith("\t\tgraph ["):
            parsed.cluster_attrs[cluster] = line.strip()
        elif match := _EDGE.match(line):
            parsed.edges.append((match.group(1), match.group(2), line))
        elif (match := _NODE.match(line)) and match.group(1) not in ("graph", "node", "edge"):
            parsed.nodes[match.group(1)] = line.strip()
            if cluster:
                parsed.cluster_of[match.group(1)] = cluster
        else:
            parsed.header.append(line)
    return parsed


def _ranks(parsed: _Parsed) -> dict[str, int]:
    """Longest-path depth of each node, a leaf placed just before its first consumer."""
    rank = dict.fromkeys(parsed.nodes, 0)
    for _ in parsed.nodes:  # a DAG: as many sweeps as nodes is always enough
        changed = False
        for tail, head, _line in parsed.edges:
            if rank[head] < rank[tail] + 1:
                rank[head], changed = rank[tail] + 1, True
        if not changed:
            break
    heads = {head for _, head, _ in parsed.edges}
    for name in parsed.nodes:
        consumers = [rank[h] for t, h, _ in parsed.edges if t == name]
        if name not in heads and consumers:
            rank[name] = min(consumers) - 1
    return rank


def wrap_rows(source: str, rows: int) -> str:
    """The same graph with its ranks cut into ``rows`` rows, stacked top to bottom.

    Each row is an invisible cluster; the rows' first nodes share a rank, tied
    in row order by invisible arrows. ``dot`` does not always keep that order
    (it places clusters as wholes), so the ways of saying it are tried in turn
    and the first that ``dot`` lays out top to bottom is kept (else the first).
    """
    return wrapped_rows(source, rows)[0]


def in_row_order(source: str) -> bool:
    """Whether ``dot`` stacks the rows of a :func:`wrap_rows` source in order (a source not wrapped: True)."""
    match = re.search(r"^\t\{rank=same; (.*)\}$", source, re.M)
    return match is None or _rows_in_order(source, match.group(1).split())


def wrapped_rows(source: str, rows: int) -> tuple[str, bool]:
    """:func:`wrap_rows`, and whether ``dot`` keeps its rows in order (:func:`in_row_order`)."""
    if rows <= 1:
        return source, True
    parsed = _parse(source)
    rank = _ranks(parsed)
    per = -(-(max(rank.values()) + 1) // rows)
    row = {name: rank[name] // per for name in parsed.nodes}
    used = sorted(set(row.values()))
    firsts = [min((n for n in parsed.nodes if row[n] == r), key=lambda n: rank[n]) for r in used]
    if len(firsts) == 1:
        return source, True
    tries = [_rows_source(parsed, row, used, firsts, order) for order in _ROW_ORDERS]
    for candidate in tries:
        if _rows_in_order(candidate, firsts):
            return candidate, True
    return tries[0], False


# Ways to ask for the rows in order: where the shared rank is said, which way the invisible arrows go.
_ROW_ORDERS = tuple(
    (same, arrows, declared) for declared in (1, -1) for same in ("last", "first") for arrows in (1, -1)
)


def _rows_source(
    parsed: _Parsed, row: dict[str, int], used: list[int], firsts: list[str], order: tuple[str, int, int]
) -> str:
    same_at, direction, declared = order
    same = "\t{rank=same; " + " ".join(firsts) + "}"
    out = [*parsed.header, "\tnewrank=true", *([same] if same_at == "first" else [])]
    first_row: dict[str, int] = {}  # where each cluster's box starts; after that it is "continued"
    for name, cluster in parsed.cluster_of.items():
        first_row[cluster] = min(first_row.get(cluster, row[name]), row[name])
    for r in used[::declared]:
        out.append(f'\tsubgraph cluster_row{r} {{\n\t\tgraph [label="" style=invis]')
        members = [n for n in parsed.nodes if row[n] == r]
        out += [f"\t\t{parsed.nodes[n]}" for n in members if n not in parsed.cluster_of]
        for cluster, attrs in parsed.cluster_attrs.items():
            inside = [n for n in members if parsed.cluster_of.get(n) == cluster]
            if not inside:
                continue
            if r != first_row[cluster]:  # the box goes on in this row
                attrs = re.sub(r"label=(\"[^\"]*\"|\S+)", lambda m: _continued(m.group(1)), attrs)
            out.append(f"\t\tsubgraph {cluster}_{r} {{\n\t\t\t{attrs}")
            out += [f"\t\t\t{parsed.nodes[n]}" for n in inside]
            out.append("\t\t}")
        out.append("\t}")
    for tail, head, line in parsed.edges:
        if row[tail] != row[head]:  # the arrow that wraps to the next row must not pull the ranks
            line = line[:-1] + " constraint=false]" if line.endswith("]") else line + " [constraint=false]"
        out.append(line)
    out += [f"\t{a} -> {b} [style=invis]" for a, b in itertools.pairwise(firsts[::direction])]
    if same_at == "last":
        out.append(same)
    return "\n".join([*out, "}"]) + "\n"


def _rows_in_order(source: str, firsts: list[str]) -> bool:
    """Whether ``dot`` puts the rows' first nodes in row order: top to bottom (LR), left to right (TB)."""
    layout = json.loads(dot.pipe(source, "json"))
    pos = {
        obj["name"]: obj["pos"] for obj in layout.get("objects", []) if "pos" in obj and "nodes" not in obj
    }
    x, y = zip(*((float(v) for v in pos[name].split(",")) for name in firsts))
    if re.search(r"\brankdir=(TB|BT)\b", source) or "rankdir" not in source:
        return all(a < b for a, b in itertools.pairwise(x))
    return all(a > b for a, b in itertools.pairwise(y))


def _part_of(source: str, parsed: _Parsed, parts: int) -> dict[str, int]:
    """Each node's piece: consecutive ranks, each piece holding about the same drawn area, a
    leaf going with its first consumer."""
    rank = _ranks(parsed)
    heads = {head for _, head, _ in parsed.edges}
    for name in parsed.nodes:
        consumers = [h for t, h, _ in parsed.edges if t == name]
        if name not in heads and consumers:
            rank[name] = min(rank[h] for h in consumers)  # counted, and cut, with its consumer
    area = _node_areas(source)
    total = sum(area.values())
    before = {r: sum(area[n] for n in parsed.nodes if rank[n] < r) for r in set(rank.values())}
    part = {name: min(int(before[rank[name]] * parts / total), parts - 1) for name in parsed.nodes}
    for name in parsed.nodes:  # an op goes with the tensor it makes: a piece starts from a tensor
        if name.startswith("op") and f"t{name[2:]}" in part:
            part[name] = part[f"t{name[2:]}"]
    return part


def _node_areas(source: str) -> dict[str, float]:
    """Each node's width × height as ``dot`` draws it (square inches)."""
    layout = json.loads(dot.pipe(source, "json"))
    return {
        obj["name"]: float(obj["width"]) * float(obj["height"])
        for obj in layout.get("objects", [])
        if "width" in obj and "nodes" not in obj
    }


def split_nodes(source: str, parts: int) -> list[tuple[list[str], list[str]]]:
    """For each piece :func:`split` cuts: the nodes it owns, and every node it draws (in source order).

    The nodes drawn are the ones it owns and each node of an earlier piece that feeds one of them.
    """
    parsed = _parse(source)
    part = _part_of(source, parsed, parts) if parts > 1 else dict.fromkeys(parsed.nodes, 0)
    pieces = []
    for p in range(parts):
        own = [n for n in parsed.nodes if part[n] == p]
        if not own:
            continue
        feeding = {t for t, h, _ in parsed.edges if h in own}
        pieces.append((own, [n for n in parsed.nodes if n in feeding or part[n] == p]))
    return pieces


def split(source: str, parts: int, context: Mapping[str, str] | None = None) -> list[str]:
    """The graph cut into ``parts`` pieces along its ranks, each a DOT source of its own.

    A piece holds the nodes whose rank falls in its share of the ranks (about
    the same drawn area in each; a leaf goes with its first consumer) and,
    drawn again, each node of an earlier piece that feeds it: the tensor one
    slide ends with is the one the next starts from. ``context`` gives the line
    to draw for such a node instead of its own (a compact op box is handed
    over as just the tensor it holds). A cluster cut by the boundary is "name,
    continued" after its first piece. A piece left empty (a graph with fewer
    ranks than ``parts``) is dropped.
    """
    if parts <= 1:
        return [source]
    context = context or {}
    parsed = _parse(source)
    sources = []
    started: set[str] = set()  # clusters already begun on an earlier piece
    for own, drawn in split_nodes(source, parts):

        def line(n: str, own: list[str] = own) -> str:
            return parsed.nodes[n] if n in own else context.get(n, parsed.nodes[n])

        out = list(parsed.header)
        out += [f"\t{line(n)}" for n in drawn if n not in parsed.cluster_of]
        for cluster, attrs in parsed.cluster_attrs.items():
            inside = [n for n in drawn if parsed.cluster_of.get(n) == cluster]
            if not inside:
                continue
            if cluster in started:
                attrs = re.sub(r"label=(\"[^\"]*\"|\S+)", lambda m: _continued(m.group(1)), attrs)
            started.add(cluster)
            out.append(f"\tsubgraph {cluster} {{\n\t\t{attrs}")
            out += [f"\t\t{line(n)}" for n in inside]
            out.append("\t}")
        out += [line for _, head, line in parsed.edges if head in own]
        sources.append("\n".join([*out, "}"]) + "\n")
    return sources


def _continued(label: str) -> str:
    name = label.strip('"').removesuffix(", continued")
    return f'label="{name}, continued"'


def _bounding_box(source: str) -> tuple[float, float]:
    """Width and height of the laid-out drawing, in points."""
    layout = json.loads(dot.pipe(source, "json"))
    _, _, width, height = (float(v) for v in layout["bb"].split(","))
    return width, height


def fit(source: str, shape: str = "16:9", dpi: float | None = None) -> str:
    """``source`` wrapped onto the number of rows that gives the largest text, padded to ``shape``.

    Without ``dpi`` the resolution makes the PNG 1920 px wide (a slide's width).
    """
    ratio = RATIOS[shape]
    best: tuple[bool, float, str, tuple[float, float]] | None = None
    for rows in range(1, MAX_ROWS + 1):
        candidate, in_order = wrapped_rows(source, rows)
        width, height = _bounding_box(candidate)
        scale = min(SLIDE[0] / width, SLIDE[1] / height)  # slide px per point, the picture filling it
        # Rows stacked out of order are a last resort: a reader follows the arrows row by row.
        if best is None or (in_order, scale) > best[:2]:
            best = (in_order, scale, candidate, (width, height))
        if width / height < ratio:  # already taller than the slide: more rows only shrink the text
            break
    assert best is not None
    _, _, chosen, (width, height) = best
    margin = 6.0  # points around the drawing
    canvas_w, canvas_h = width + 2 * margin, height + 2 * margin
    if canvas_w / canvas_h > ratio:
        canvas_h = canvas_w / ratio
    else:
        canvas_w = canvas_h * ratio
    pad = f'pad="{(canvas_w - width) / 2 / 72:.4f},{(canvas_h - height) / 2 / 72:.4f}"'
    resolution = dpi if dpi is not None else SLIDE[0] / (canvas_w / 72)
    lines = chosen.rstrip().splitlines()  # the last assignment of a graph attribute wins: put these last
    canvas = f"\t// canvas {canvas_w / 72:.4f} {canvas_h / 72:.4f} inches"
    return "\n".join([*lines[:-1], f"\t{pad} dpi={resolution:.3f}", canvas, lines[-1]]) + "\n"


def picture(source: str, fmt: str) -> bytes:
    """The picture of a :func:`fit` source in format ``fmt``, its row-wrapping arrows routed by ``neato``.

    ``dot`` routes an arrow that wraps to the next row (``constraint=false``) around the row below,
    where it can cross that row's last arrow at its head (``add → Z`` met ``cross_entropy → loss``
    at the arrowhead into ``loss``, as if ``add`` fed the loss). So the nodes and the other arrows
    stay where ``dot`` put them, and ``neato -n2`` draws the wrapping arrows straight across, round
    the nodes in their way; the canvas keeps :func:`fit`'s size.
    """
    if "constraint=false" not in source:
        return dot.pipe(source, fmt)
    placed = dot.pipe(source, "dot").decode()
    parts = placed.split(";\n")
    parts = [
        re.sub(r'\s*\bpos="[^"]*",?', "", part) if "constraint=false" in part else part for part in parts
    ]
    routed = ";\n".join(parts).rstrip().removesuffix("}") + "\tgraph [splines=true];\n}\n"
    if "// canvas" not in source:  # not fitted to a slide: the drawing's own size
        return dot.pipe(routed, fmt, "neato", neato_no_op=2)
    laid = json.loads(dot.pipe(routed, "json", "neato", neato_no_op=2))
    _, _, width, height = (float(v) for v in laid["bb"].split(","))
    canvas_w, canvas_h = (
        float(v) * 72 for v in re.findall(r"// canvas ([\d.]+) ([\d.]+) inches", source)[-1]
    )
    pad = f"{max(canvas_w - width, 0) / 2 / 72:.4f},{max(canvas_h - height, 0) / 2 / 72:.4f}"
    routed = routed.rstrip().removesuffix("}") + f'\tgraph [pad="{pad}"];\n}}\n'
    return dot.pipe(routed, fmt, "neato", neato_no_op=2)


def canvas_inches(source: str) -> float:
    """The width of the canvas :func:`fit` chose for ``source``, in inches."""
    return float(re.findall(r"// canvas ([\d.]+) ", source)[-1])
