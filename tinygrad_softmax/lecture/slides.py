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
text comes out largest; then the canvas is padded to the exact ratio and the
resolution set so the PNG is 1920 px wide.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass

import graphviz

__all__ = [
    "SLIDE",
    "MIN_TEXT_PX",
    "RATIOS",
    "BANDS",
    "min_font_pt",
    "text_px",
    "fits",
    "wrap_rows",
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
    """The same graph with its ranks cut into ``rows`` rows, stacked top to bottom."""
    if rows <= 1:
        return source
    parsed = _parse(source)
    rank = _ranks(parsed)
    per = -(-(max(rank.values()) + 1) // rows)
    row = {name: rank[name] // per for name in parsed.nodes}
    used = sorted(set(row.values()))
    out = [*parsed.header, "\tnewrank=true"]
    first_part: dict[str, int] = {}
    for r in used:
        out.append(f'\tsubgraph cluster_row{r} {{\n\t\tgraph [label="" style=invis]')
        members = [n for n in parsed.nodes if row[n] == r]
        out += [f"\t\t{parsed.nodes[n]}" for n in members if n not in parsed.cluster_of]
        for cluster, attrs in parsed.cluster_attrs.items():
            inside = [n for n in members if parsed.cluster_of.get(n) == cluster]
            if not inside:
                continue
            if cluster in first_part:  # the box goes on in this row
                attrs = re.sub(r"label=(\"[^\"]*\"|\S+)", lambda m: _continued(m.group(1)), attrs)
            first_part.setdefault(cluster, r)
            out.append(f"\t\tsubgraph {cluster}_{r} {{\n\t\t\t{attrs}")
            out += [f"\t\t\t{parsed.nodes[n]}" for n in inside]
            out.append("\t\t}")
        out.append("\t}")
    for tail, head, line in parsed.edges:
        if row[tail] != row[head]:  # the arrow that wraps to the next row must not pull the ranks
            line = line[:-1] + " constraint=false]" if line.endswith("]") else line + " [constraint=false]"
        out.append(line)
    firsts = [min((n for n in parsed.nodes if row[n] == r), key=lambda n: rank[n]) for r in used]
    out += [f"\t{a} -> {b} [style=invis]" for a, b in itertools.pairwise(firsts)]
    out.append("\t{rank=same; " + " ".join(firsts) + "}")
    return "\n".join([*out, "}"]) + "\n"


def _continued(label: str) -> str:
    name = label.strip('"')
    return f'label="{name}, continued"'


def _bounding_box(source: str) -> tuple[float, float]:
    """Width and height of the laid-out drawing, in points."""
    layout = json.loads(graphviz.Source(source).pipe(format="json"))
    _, _, width, height = (float(v) for v in layout["bb"].split(","))
    return width, height


def fit(source: str, shape: str = "16:9", dpi: float | None = None) -> str:
    """``source`` wrapped onto the number of rows that gives the largest text, padded to ``shape``.

    Without ``dpi`` the resolution makes the PNG 1920 px wide (a slide's width).
    """
    ratio = RATIOS[shape]
    best: tuple[float, str, tuple[float, float]] | None = None
    for rows in range(1, MAX_ROWS + 1):
        candidate = wrap_rows(source, rows)
        width, height = _bounding_box(candidate)
        scale = min(SLIDE[0] / width, SLIDE[1] / height)  # slide px per point, the picture filling it
        if best is None or scale > best[0]:
            best = (scale, candidate, (width, height))
        if width / height < ratio:  # already taller than the slide: more rows only shrink the text
            break
    assert best is not None
    _, chosen, (width, height) = best
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


def canvas_inches(source: str) -> float:
    """The width of the canvas :func:`fit` chose for ``source``, in inches."""
    return float(re.findall(r"// canvas ([\d.]+) ", source)[-1])
