"""Reverse mode: order the graph, then walk it backwards applying the chain rule.

Both steps are loops, never recursion, so a chain of 100,000 ops is as easy as
a chain of ten. The walk works on any :class:`~.contracts.Node` (a Tensor).
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, TypeVar

import numpy as np

from . import anomaly
from .contracts import Node, Op, constant
from .ops import sum_to, unbroadcast

N = TypeVar("N", bound=Node)

# One lock for every write into `.grad`: two threads calling backward() into the
# same leaf would otherwise both read the old `.grad` and one sum would be lost.
_store_lock = threading.Lock()

# Nodes that keep their `.grad` even in backward(retain_intermediate_grads=False).
_retained: weakref.WeakSet[Any] = weakref.WeakSet()


def retain(node: Node) -> None:
    """Mark ``node`` to keep its gradient in ``backward(retain_intermediate_grads=False)``."""
    _retained.add(node)


def topological_order(root: N, sources: Collection[N] | None = None) -> list[N]:
    """Every node ``root`` depends on that requires grad, inputs first: collected with a stack (a node
    reached twice, as in a diamond, kept once), sorted by ``serial`` (a tensor is made after its inputs)."""
    seen = {root}
    stack = [root]
    see, push, pop = seen.add, stack.append, stack.pop  # bound once: they run for every node
    while stack:
        for parent in pop().parents:
            if parent.requires_grad and parent not in seen:
                see(parent)
                push(parent)
    order = sorted(seen, key=attrgetter("serial"))
    return order if sources is None else _depending_on(order, root, sources)


def _depending_on(order: list[N], root: N, sources: Collection[N]) -> list[N]:
    """The nodes of ``order`` that depend on one of ``sources``: the rest cannot change their gradients."""
    reached = set(sources)
    for node in order:  # inputs first, so a parent is decided before its children
        if node not in reached and any(parent in reached for parent in node.parents):
            reached.add(node)
    return [node for node in order if node in reached] if root in reached else []


def _chain_rule(
    root: N, grad: Any, create_graph: bool = False, sources: Collection[N] | None = None
) -> Iterator[tuple[N, Any, Sequence[Any]]]:
    """For each node, from ``root`` back: ``(node, ∂L/∂node, what its rule returned for each parent)``;
    nothing is written to any node. ``create_graph``: the rules run on the Tensors and are recorded."""
    checking = anomaly.is_enabled()
    reduce_to = sum_to if create_graph else unbroadcast  # ∂L/∂out summed back to the input's shape
    grads = {root: grad}
    pop, get = grads.pop, grads.get  # bound once: they run for every node and every parent
    for node in reversed(topological_order(root, sources)):
        node_grad = pop(node, None)
        if node_grad is None:  # requires_grad switched on after the forward: nothing was sent to it
            continue
        fn = node.grad_fn
        if fn is None:  # a leaf: nothing to pass on
            yield node, node_grad, ()
            continue
        rule_grads = fn.backward(node_grad, *(_recorded_arguments(node, fn) if create_graph else fn.saved))
        for parent, parent_grad in zip(node.parents, rule_grads):
            if parent_grad is None or not parent.requires_grad:
                continue
            if parent_grad.shape != parent._data.shape:  # broadcasting stretched the parent
                parent_grad = reduce_to(parent_grad, parent._data.shape)
            if checking:
                anomaly.check_backward(node, parent, constant(parent_grad))
            earlier = get(parent)  # `+` makes a new array: `earlier` may be another node's
            grads[parent] = parent_grad if earlier is None else earlier + parent_grad
        yield node, node_grad, rule_grads


def _recorded_arguments(node: Node, fn: Op) -> tuple[Node, ...]:
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


@dataclass(frozen=True)
class Step(Generic[N]):
    """One step of the backward walk: the chain rule applied at one node.

    ``grad`` is dL/d``node`` (complete when the step runs); ``parent_grads[i]``
    is the contribution this node sends to ``node.parents[i]`` (summed back to
    the parent's shape), or None when that parent needs no gradient.
    """

    node: N
    grad: np.ndarray
    parent_grads: tuple[np.ndarray | None, ...]


def walk(root: N, grad: np.ndarray) -> Iterator[Step[N]]:
    """Apply the chain rule node by node, from ``root`` back to the leaves.

    Gradients live in a dict local to this walk; nothing is written to any
    tensor. ``backward`` below stores the result; the explainers watch the steps.
    """
    for node, node_grad, rule_grads in _chain_rule(root, grad):
        sent = [
            None if g is None or not p.requires_grad else unbroadcast(g, p.shape)
            for p, g in zip(node.parents, rule_grads)
        ]
        yield Step(node, node_grad, tuple(sent))


def _pause_collector() -> bool:
    """Pause Python's cycle collector (return whether it ran): the walk makes no reference cycles;
    on a 100,000-op chain the collector scanning the graph as the walk allocates is a third of the time."""
    collecting = gc.isenabled()
    gc.disable()
    return collecting


# A graph being built is a growing heap of objects the cycle collector keeps rescanning in its full
# passes, though the graph holds no cycles (a node refers to its inputs only; refcounts free it).
# So every FREEZE_EVERY tensors recorded (tensor._record calls graph_grew), the young generations are
# collected and everything then alive is moved out of the collector's sight (gc.freeze); the next
# backward() or gradients() puts it back (gc.unfreeze), where the next full pass looks at it again.
FREEZE_EVERY = 10_000
_froze: list[bool] = [False]  # whether the frozen objects are this module's doing


def graph_grew() -> None:
    """A graph grew by FREEZE_EVERY tensors: freeze what is alive, unless the collector is off or the
    program freezes objects itself (its own frozen objects are never unfrozen from here)."""
    if not gc.isenabled() or (not _froze[0] and gc.get_freeze_count()):
        return
    gc.collect(1)  # the young garbage (cycles the user's code just dropped) is freed, not frozen
    gc.freeze()
    _froze[0] = True


def _thaw() -> None:
    """Give what graph_grew froze back to the collector (its oldest generation)."""
    if _froze[0]:
        _froze[0] = False
        gc.unfreeze()


def backward(root: Node, grad: np.ndarray, retain_intermediate_grads: bool = True) -> None:
    """Propagate ``grad`` (∂L/∂root) through root's graph and add it into every ``.grad``, once the
    walk is done. ``retain_intermediate_grads=False``: only the leaves' (and ``retain_grad()``'s)."""
    collecting = _pause_collector()
    try:
        steps = _chain_rule(root, grad)
        if retain_intermediate_grads:
            results = [(node, node_grad) for node, node_grad, _ in steps]
        else:
            results = [(node, g) for node, g, _ in steps if node.grad_fn is None or node in _retained]
    finally:
        if collecting:
            gc.enable()
        _thaw()
    _store(results)


def _store(results: list[tuple[Node, np.ndarray]]) -> None:
    """Add each gradient into its node's ``.grad``, one thread at a time: every new value is computed
    before the first is written, so an error (even out of memory) leaves every ``.grad`` as it was."""
    with _store_lock:
        new, handed_out = [], set()  # ids of the arrays already given to a .grad
        for node, g in results:
            data, old = node._data, node._grad
            if old is not None and (old.shape != data.shape or old.dtype != data.dtype):
                raise _mismatched_grad(node, old)
            if g.dtype is not data.dtype and g.dtype != data.dtype:  # (`is`: one object per usual dtype)
                g = g.astype(data.dtype)  # a new array of its own
            elif g.base is not None or id(g) in handed_out or not g.flags.writeable:
                g = g.copy()  # editing one .grad must never change another (add sends one array to both)
            handed_out.add(id(g))
            new.append(g if old is None else old + g)
        for (node, _), value in zip(results, new):
            node._grad = value


def _mismatched_grad(node: Node, old: np.ndarray) -> ValueError:
    return ValueError(
        f"backward: {anomaly.describe(node)} holds a .grad of shape {old.shape} ({old.dtype}) "
        f"that does not match its data ({node._data.dtype}); "
        "set its .grad to None (zero_grad()) before calling backward() again"
    )


def gradients(root: Node, grad: Any, sources: Sequence[Node], create_graph: bool = False) -> list[Any]:
    """d(root)/d(source) for each source, the walk starting from ``grad``; no ``.grad`` is touched.

    Only the part of the graph between the sources and ``root`` is walked. A
    source that ``root`` does not depend on gets None. With ``create_graph``,
    ``grad`` is a Tensor and so is every result (the caller records).
    """
    wanted = set(sources)
    found: dict[Node, Any] = {}
    collecting = _pause_collector()
    try:
        for node, node_grad, _ in _chain_rule(root, grad, create_graph, wanted):
            if node in wanted:
                found[node] = node_grad
    finally:
        if collecting:
            gc.enable()
        _thaw()
    return [found.get(source) for source in sources]
