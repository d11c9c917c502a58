"""Pictures of the recorded graph: tensors as records, ops as ovals, the loss at the end.

A viewer only reads the graph (``parents``, ``op``, ``grad_fn.params()``, names,
data, grads) and never changes it. Node ids come from a counter in walk order,
so the same graph gives byte-identical DOT text on every run.

    to_dot(loss)                    a graphviz.Digraph (a notebook shows it inline)
    render(loss, "graph.png")       PNG, SVG or PDF by the file's extension
    render_slides(loss, "r.png")    the same on as many 16:9 slides as it takes (r-1.png, r-2.png)
    backward_frames(loss, "out")    one picture per step of the backward walk
    to_html(loss, "explorer.html")  one offline web page that steps through the walk (views/explorer.py)
    explore(loss)                   the same page inline in Jupyter

By concept: :mod:`.look` (colours and labels), :mod:`.drawing` (the DOT graph),
:mod:`.rendering` (files, slides), :mod:`.frames` (one frame of the backward
walk), :mod:`.animation` (the frames, their layout and the GIF).
"""

from __future__ import annotations

from typing import Any

from ..graph import graph_order, loss_steps, shape_text, summarize, tensor_labels
from .animation import FramesPlan, View, backward_frames, caption_delays, frames_plan, png_size
from .drawing import to_dot
from .frames import FRAME_TEXT_PT
from .look import CURRENT, CURRENT_FILL, FAINT, FILL, INK, OP_FILL, OP_LINE, RED
from .rendering import FORMATS, GraphvizNotFoundError, render, render_slides

__all__ = [
    "GraphvizNotFoundError",
    "graph_order",
    "tensor_labels",
    "shape_text",
    "summarize",
    "loss_steps",
    "to_dot",
    "render",
    "render_slides",
    "backward_frames",
    "frames_plan",
    "FramesPlan",
    "View",
    "caption_delays",
    "png_size",
    "FORMATS",
    "FRAME_TEXT_PT",
    "INK",
    "FAINT",
    "FILL",
    "OP_FILL",
    "OP_LINE",
    "RED",
    "CURRENT",
    "CURRENT_FILL",
]


def __getattr__(name: str) -> Any:
    # The explorer page draws with this package's records, so it is imported on first use.
    if name in ("to_html", "explore"):
        from .. import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
