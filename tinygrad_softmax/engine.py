"""Reverse mode: order the graph, then walk it backwards applying the chain rule.

Both steps are loops, never recursion, so a chain of 100,000 ops is as easy as
a chain of ten.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from . import anomaly
from .ops import Op, constant, sum_to, unbroadcast

if TYPE_CHECKING:
    from .tensor import Tensor

_serial = attrgetter("serial")

# One lock for every write into `.grad`: two threads calling backward() into the
# same leaf would otherwise both read the old `.grad` and one sum would be lost.
_store_lock = threading.Lock()

# Tensors that keep their `.grad` even in backward(retain_intermediate_grads=False).
_retained: weakref.WeakSet[Any] = weakref.WeakSet()


N = TypeVar("N", bound="Node")


class Node(Protocol):
    """What the backward walk needs of a node of the graph (``Tensor`` is the one we have).

    ``parents`` are the op's inputs in order, ``grad_fn`` the op that made the
    node (None for a leaf; its ``saved`` arrays are what the rule reads),
    ``serial`` a number larger than every parent's. ``shape`` and ``dtype``
    are ``data``'s, read without touching ``data`` itself.
    """

    requires_grad: bool

    @property
    def data(self) -> np.ndarray: ...

    @property
    def grad(self) -> np.ndarray | None: ...

    @property
    def parents(self: N) -> Sequence[N]: ...

    @property
    def grad_fn(self) -> Op | None: ...

    @property
    def serial(self) -> int: ...

    @property
    def op(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...


def retain(node: Node) -> None:
    """Mark ``node`` to keep its gradient in ``backward(retain_intermediate_grads=False)``."""
    _retained.add(node)


def topological_order(root: N, sources: Collection[N] | None = None) -> list[N]:
    """Every tensor that ``root`` depends on and that requires grad, inputs first.

    First collect the graph with an explicit stack (a node reached twice, as in
    a diamond, is kept once), then sort it by ``serial``, the number each tensor
    got when it was made. A tensor is always made after its inputs, so in that
    order every parent comes before its children, the same way on every run.

    With ``sources``, keep only the tensors that depend on one of them: the
    rest of the graph cannot change their gradients.
    """
    seen = {root}
    stack = [root]
    see, push, pop = seen.add, stack.append, stack.pop  # bound once: they run for every node
    while stack:
        for parent in pop().parents:
            if parent.requires_grad and parent not in seen:
                see(parent)
                push(parent)
    order = sorted(seen, key=_serial)
    if sources is not None:
        reached = set(sources)
        for node in order:  # inputs first, so a parent is decided before its children
            if node not in reached and any(parent in reached for parent in node.parents):
                reached.add(node)
        order = [node for node in order if node in reached] if root in reached else []
    return order


@dataclass(frozen=True)
class Step:
    """One step of the backward walk: the chain rule applied at one node.

    ``grad`` is dL/d``node`` (complete when the step runs); ``parent_grads[i]``
    is the contribution this node sends to ``node.parents[i]`` (summed back to
    the parent's shape), or None when that parent needs no gradient.
    """

    node: Tensor
    grad: np.ndarray
    parent_grads: tuple[np.ndarray | None, ...]


def _recorded_arguments(node: Tensor, fn: Op) -> tuple[Tensor, ...]:
    """The node's parents and the node itself, for a rule that must be recorded.

    They must still hold the values the forward saw: the rule computes with
    them. (`.data` may have swapped in a copy since, copy on write: equal values
    are fine, edited ones are not.)
    """
    arguments = (*node.parents, node)
    for tensor, array in zip(arguments, fn.saved):
        current = tensor._data
        if current is not array and not (current.shape == array.shape and np.array_equal(current, array)):
            raise RuntimeError(
                f"{fn.name}: the data of {anomaly.describe(tensor)} was replaced after the forward pass, "
                "so its graph no longer describes the values; run the forward again"
            )
    return arguments


def _chain_rule(
    root: Tensor,
    grad: Any,
    create_graph: bool = False,
    sources: Collection[Tensor] | None = None,
    report_sent: bool = True,
) -> Iterator[tuple[Tensor, Any, tuple[Any, ...]]]:
    """The steps of :func:`walk` as plain tuples ``(node, grad, parent_grads)``.

    ``backward`` reads these directly: a ``Step`` object per node would cost
    about as much as a small op. It needs no ``parent_grads`` either: with
    ``report_sent=False`` they are not collected (always ``()``). The gradients are arrays, or with
    ``create_graph`` Tensors: each rule then runs on the node's parents and the
    node itself, and its ops are recorded (the caller turns recording on).
    """
    checking = anomaly.checking_threads and anomaly.is_enabled()
    # On arrays, `unbroadcast` itself: `sum_to` would ask of every gradient whether it is a Tensor.
    reduce_to = sum_to if create_graph else unbroadcast
    grads = {root: grad}  # dL/dt of each tensor t reached so far, local to this walk
    pop, get = grads.pop, grads.get  # bound once: they run for every node and every parent
    for node in reversed(topological_order(root, sources)):
        # Every node in the order lies on a path to root, so its gradient is complete
        # by the time the reversed walk reaches it.
        node_grad = pop(node, None)
        if node_grad is None:
            # Its requires_grad was switched on after the forward: the ops that used it
            # recorded it as a constant and send it nothing. It gets no gradient.
            continue
        fn = node.grad_fn
        if fn is None:  # a leaf: nothing to pass on
            yield node, node_grad, ()
            continue
        if create_graph:
            rule_grads = fn.backward(node_grad, *_recorded_arguments(node, fn))
        else:
            rule_grads = fn.backward(node_grad, *fn.saved)
        sent: list[Any] | None = [] if report_sent else None
        for parent, parent_grad in zip(node.parents, rule_grads):
            if parent_grad is None or not parent.requires_grad:
                if sent is not None:
                    sent.append(None)
                continue
            shape = parent._data.shape  # the slot itself: no property call on this hot path
            if parent_grad.shape != shape:
                parent_grad = reduce_to(parent_grad, shape)
            if checking:
                anomaly.check_backward(node, parent, constant(parent_grad))
            # `+` makes a new array: the one already there may be shared with another node.
            earlier = get(parent)  # one dict look-up, not `in` and then `[]`
            grads[parent] = parent_grad if earlier is None else earlier + parent_grad
            if sent is not None:
                sent.append(parent_grad)
        yield node, node_grad, (() if sent is None else tuple(sent))


def walk(root: Tensor, grad: np.ndarray) -> Iterator[Step]:
    """Apply the chain rule node by node, from ``root`` back to the leaves.

    Gradients live in a dict local to this walk; nothing is written to any
    tensor. ``backward`` below stores the result; the explainers watch the steps.
    """
    for node, node_grad, parent_grads in _chain_rule(root, grad):
        yield Step(node, node_grad, parent_grads)


def backward(root: Tensor, grad: np.ndarray, retain_intermediate_grads: bool = True) -> None:
    """Propagate ``grad`` (dL/droot) to every tensor in root's graph; add it to ``.grad``.

    The walk finishes, and every ``.grad`` about to be added to is checked,
    before any ``.grad`` is written, so an error half way leaves every ``.grad``
    as it was, and a second call sees none of the first's work.

    ``retain_intermediate_grads=False`` stores only the leaves' gradients (and
    those of tensors that asked with ``retain_grad()``), as PyTorch does: each
    intermediate gradient is then dropped as soon as the walk has passed it on,
    so the walk holds only the gradients still on their way, not all of them.
    """
    # The walk makes no reference cycles, so Python's cycle collector would find
    # nothing in it; pausing it keeps it from scanning the whole graph again and
    # again while the walk allocates (on a 100,000-op chain that is a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if retain_intermediate_grads:
            results = [(node, node_grad) for node, node_grad, _ in _chain_rule(root, grad, report_sent=False)]
        else:
            retained = _retained
            results = [
                (node, node_grad)
                for node, node_grad, _ in _chain_rule(root, grad, report_sent=False)
                if node.grad_fn is None or node in retained
            ]
    finally:
        if collecting:
            gc.enable()
    _store(results)


def _store(results: list[tuple[Tensor, np.ndarray]]) -> None:
    """Add each gradient into its tensor's ``.grad``: all or nothing, one thread at a time.

    The first loop checks every ``.grad`` and computes every new value; only
    then does the second loop write them, so an error (a mismatched ``.grad``,
    or even running out of memory for a sum) leaves every ``.grad`` as it was.
    """
    with _store_lock:
        new: list[np.ndarray] = []
        handed_out: set[int] = set()  # ids of the arrays already given to a .grad
        hand_out = handed_out.add
        for node, g in results:
            data = node._data
            dtype = data.dtype
            old = node._grad
            if old is not None and (old.shape != data.shape or old.dtype != dtype):
                raise ValueError(
                    f"backward: {anomaly.describe(node)} holds a .grad of shape {old.shape} ({old.dtype}) "
                    f"that does not match its data ({dtype}); "
                    "set its .grad to None (zero_grad()) before calling backward() again"
                )
            # (`is` first: the usual dtypes are one object each, so the `!=` is rarely asked.)
            key = id(g)
            if g.dtype is not dtype and g.dtype != dtype:
                g = g.astype(dtype)  # a new array of its own
                key = id(g)
            elif g.base is not None or key in handed_out or not g.flags.writeable:
                # Give each .grad an array of its own, so that editing one in place
                # never changes another (add's backward hands one array to both inputs).
                g = g.copy()
                key = id(g)
            hand_out(key)
            new.append(g if old is None else old + g)
        for (node, _), value in zip(results, new):
            node._grad = value


def gradients(root: Tensor, grad: Any, sources: Sequence[Tensor], create_graph: bool = False) -> list[Any]:
    """d(root)/d(source) for each source, the walk starting from ``grad``; no ``.grad`` is touched.

    Only the part of the graph between the sources and ``root`` is walked. A
    source that ``root`` does not depend on gets None. With ``create_graph``,
    ``grad`` is a Tensor and so is every result (the caller records).
    """
    wanted = set(sources)
    found: dict[Tensor, Any] = {}
    collecting = gc.isenabled()  # paused for the same reason as in backward()
    gc.disable()
    try:
        for node, node_grad, _ in _chain_rule(root, grad, create_graph, wanted, report_sent=False):
            if node in wanted:
                found[node] = node_grad
    finally:
        if collecting:
            gc.enable()
    return [found.get(source) for source in sources]
