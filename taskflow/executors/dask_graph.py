"""A window of planned steps as one Dask graph (client side).

:func:`to_dask_graph` turns :class:`~taskflow.engine.steps.Step` objects into Dask
tasks (the worker-side runner applied to each task run's spec, probes, lengths and
items), referencing what earlier windows sent through their held futures, with
annotated layers only where a task has resources or priorities; :func:`named`
gives the graph its name so that ``client.get`` does not tokenize every task.

Examples
--------
>>> to_dask_graph([], {})
{}
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

from dask._task_spec import List, Task, TaskRef
from distributed import Future

from taskflow.engine.markers import StateMarker
from taskflow.engine.outputs import ChildKeys, nothing
from taskflow.engine.plan import Item, Length, PlannedTask, Probe, Step
from taskflow.executors import dask_groups
from taskflow.executors.dask_groups import GroupTask, Siblings, parts_of
from taskflow.executors.dask_plugins import on_scheduler
from taskflow.executors.dask_spec import RunFacts, SentTask
from taskflow.executors.dask_whole import item_of, length_of, state_probe

__all__ = ["Shared", "given_order", "named", "send", "send_parts", "split_at_wide", "taken_in",
           "to_dask_graph"]


# A batch with at most this many kept tasks (the run's return and terminal tasks) has
# each of them send its worker's events with its result (run_kept_on_worker), so the
# run's end rarely needs to ask the workers for their last events; a wide map whose
# children are all terminal keeps batching.
_FLUSH_KEPT_AT_MOST = 16

# The task runs of a window that can start at once carry its facts whole to the worker
# they go to: the first _CARRIERS_AT_MOST of them, or all of them in the first window
# of a batch sent in several (a wide map's first children: the scheduler starts them
# in no order taskflow sets, and a worker's first one must not wait on asking the
# scheduler, busy with the next window, for them); the others carry a token (dask_spec)
_CARRIERS_AT_MOST = 16

# id(task) -> the facts that hold a Task of a run, and its index there: kept across the
# run's windows, so a Task sent once keeps its facts' token (the workers have them)
Shared = dict[int, tuple[RunFacts, int]]


def to_dask_graph(steps: list[Step], held: Mapping[Any, Future], hold: Any = None,
                  holding: list[Any] | None = None, shared: Shared | None = None,
                  carry_all: bool = False) -> Any:
    """Steps as one Dask graph: a dict, or annotated layers when needed.

    Keys of earlier submissions are referenced through their held futures, or by
    key (:mod:`~taskflow.executors.dask_wants`).  With ``hold``, the graph has one
    more key, ``hold``, depending on the keys ``holding``: asking for it makes the
    scheduler take those keys in (it takes only what the keys asked for depend on).
    Given ``shared`` (one per run, kept across its windows), a task whose Task an
    earlier window sent has that window's facts again, under their token: the
    workers that have them do not ask for them; only new Tasks make new facts.
    With ``carry_all``, every task that can start at once carries the facts.
    """
    here = {s.key for s in steps}
    refs: dict[Any, Any] = {}  # one reference per key: pickled once per window

    def ref(key: Any) -> Any:
        found = refs.get(key)
        if found is None:
            future = held.get(key) if key not in here else None
            # a future, or a key of this window or of an earlier one kept without a
            # future (dask_wants): a reference either way
            found = refs[key] = future if future is not None else TaskRef(key)
        return found

    plain: dict[Any, Any] = {}
    annotated: dict[tuple[tuple[str, Any], ...], dict[Any, Any]] = {}
    kept = [s.key for s in steps if isinstance(s, PlannedTask) and s.keep]
    flushing = set(kept) if len(kept) <= _FLUSH_KEPT_AT_MOST else set()
    found_in: Shared = {} if shared is None else shared
    made: dict[int, RunFacts] = {}  # id(run) -> the facts made in this window, for new Tasks
    carriers = 0
    carried: set[int] = set()  # ids of the facts some task of this window carries
    mapped_over = {s.of for s in steps if type(s) is Length and not s.nested}  # held whole
    carriers_at_most = len(steps) if carry_all else _CARRIERS_AT_MOST
    alike: dict[Any, SentTask] = {}  # a mapped node's key base -> its alike children's function
    for step in steps:
        key = step.key
        if isinstance(step, Probe):
            plain[key] = Task(key, state_probe, ref(step.of))
        elif isinstance(step, Length):
            plain[key] = Task(key, length_of, ref(step.of), step.nested)
        elif isinstance(step, Item):
            plain[key] = Task(key, item_of, ref(step.of), step.index)
        else:
            # a map's children as (base, n): no reference made per child (dask_groups)
            grouped = any(type(d) is ChildKeys for d in step.deps)
            deps = [
                d if isinstance(d, StateMarker)
                else ref(d) if isinstance(d, (str, tuple))
                else _group(d) if grouped and type(d) is ChildKeys
                else List(*[ref(k) for k in d])  # a group of other keys
                for d in step.deps
            ]
            spec = step.spec
            found = found_in.get(id(spec.task))
            if found is None or found[0].run is not spec.run:
                window = made.get(id(spec.run))
                if window is None:
                    window = made[id(spec.run)] = RunFacts(spec.run, ())
                found = found_in[id(spec.task)] = (window, len(window.tasks))
                window.tasks = (*window.tasks, spec.task)
            window, index = found
            carrier = carriers < carriers_at_most and not any(
                (d in here) if isinstance(d, (str, tuple))
                else (not isinstance(d, StateMarker) and any(k in here for k in d))
                for d in step.deps)
            carriers += carrier
            if (not carrier and carriers_at_most and id(window) not in carried
                    and made.get(id(spec.run)) is window):
                carrier = True  # new facts none of this window's tasks carries yet (a fan-in)
            if carrier:
                carried.add(id(window))
            # Task objects, not tuples: Dask would turn each reference of a tuple
            # into an Alias of its own (about 270 bytes a task on the scheduler);
            # upstreams as arguments of their own, not one list; the spec is the
            # function, and what the window's runs share travels once (dask_spec)
            kept_here = key in flushing
            if step.alike and not (carrier or kept_here):
                # one function for all alike children of a node: each passes its index
                sent = alike.get(key[0])
                if sent is None:
                    sent = alike[key[0]] = SentTask.alike(spec, window, index)
                task = (GroupTask if grouped else Task)(key, sent, *deps, spec.map_index)
            else:
                sent = SentTask.of(spec, window, index, kept=kept_here, carrier=carrier,
                                   whole=key in mapped_over)
                task = (GroupTask if grouped else Task)(key, sent, *deps)
            ann = step.annotations
            if ann:
                annotated.setdefault(_freeze(ann), {})[key] = task
            else:
                plain[key] = task
    if hold is not None:
        plain[hold] = Task(hold, nothing, *[ref(k) for k in holding or ()])
    if not annotated:
        return plain
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    layers: dict[str, Any] = {"taskflow-plain": MaterializedLayer(plain)}
    for i, (frozen, dsk) in enumerate(annotated.items()):
        layers[f"taskflow-annotated-{i}"] = MaterializedLayer(dsk, annotations=_thaw(frozen))
    layer_deps = {name: set(layers) - {name} for name in layers}
    return HighLevelGraph(layers, layer_deps)


def _group(keys: ChildKeys) -> Siblings:
    """A map's children as one group, or as the parts :func:`send_parts` sent."""
    group = Siblings(keys.base, keys.n)
    return parts_of(group)[0] if keys.n > dask_groups.PART_SIZE else group


def _wide(step: Step) -> bool:
    return type(step) is PlannedTask and any(
        type(d) is ChildKeys and d.n > dask_groups.PART_SIZE for d in step.deps)


def split_at_wide(steps: list[Step]) -> list[list[Step]]:
    """``steps`` cut before each task over a wide group: sent in this order, every
    part's children are on the scheduler before the part (:func:`send_parts`).

    Examples
    --------
    >>> split_at_wide([])
    [[]]
    """
    out: list[list[Step]] = [[]]
    for step in steps:
        if out[-1] and _wide(step):
            out.append([])
        out[-1].append(step)
    return out


# How long a part waits for the one before it to be taken in by the scheduler
PART_WAIT = 120.0


def send_parts(client: Any, steps: list[Step], held: dict[Any, Future]) -> None:
    """Send the parts of the wide groups ``steps`` depend on, one message each, their
    futures into ``held`` (:func:`~taskflow.executors.dask_groups.parts_of`).

    Each message takes the scheduler a bounded time: one over a million children
    took it tens of seconds, in which it answered no one (workers, clients).  A part
    is sent once the scheduler has taken in the one before (:func:`taken_in`)."""
    last = None
    for step in steps:
        if not _wide(step):
            continue
        for d in step.deps:
            if type(d) is not ChildKeys or d.n <= dask_groups.PART_SIZE:
                continue
            for task in parts_of(Siblings(d.base, d.n))[1]:
                if task.key not in held:
                    if last is not None:
                        taken_in(client, last)
                    (held[task.key],) = send(client, named({task.key: task}), [task.key], None)
                    last = task.key


def taken_in(client: Any, key: Any, timeout: float = PART_WAIT) -> bool:
    """Wait (at most ``timeout`` seconds) until ``client``'s scheduler has taken in the
    graph that holds ``key``; False when it had not by then.

    The scheduler handles a client's messages one after the other, and reads that
    client's connection again only between them.  A million's 100 parts (one to two
    seconds each there) sent at once filled the connection's buffers, and it was lost
    when no byte of it had been read for 30 s (``distributed.comm.timeouts.tcp``).  So
    at most one part waits on the scheduler at a time."""
    try:
        return bool(on_scheduler(client, _taken_in(), key, timeout))
    except Exception:  # noqa: BLE001 - an old or busy scheduler: the part goes anyway
        return False


def _taken_in() -> Any:
    """The coroutine run on the scheduler (made here, so it travels by value: the
    scheduler need not have taskflow installed)."""

    async def wait(key: Any, timeout: float, dask_scheduler: Any = None) -> bool:
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while key not in dask_scheduler.tasks:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    return wait


# A window with a dependency group wider than this (a wide map's fan-in) is sent with
# its tasks' order given (plan order): asked to order it, the scheduler's dask.order
# would make an entry (a node, a set) for every key outside the window it depends on,
# about 1.3 kB each, a transient of 1.3 GB for a fan-in over a million children.
# client.map and client.submit give their order too
_ORDER_GIVEN_ABOVE = 10_000


def given_order(steps: list[Step], hold: Any = None) -> dict[Any, int] | None:
    """The order to send ``steps`` in (their own) when the window depends on many keys
    outside it; None to let Dask order it."""
    wide = any(
        type(step) is PlannedTask and any(
            not isinstance(d, (str, tuple, StateMarker)) and len(d) > _ORDER_GIVEN_ABOVE
            for d in step.deps)
        for step in steps)
    if not wide:
        return None
    order = {step.key: i for i, step in enumerate(steps)}
    if hold is not None:
        order[hold] = len(order)
    return order


def send(client: Any, graph: Any, keys: list[Any], order: dict[Any, int] | None) -> list[Future]:
    """``client.get(graph, keys, sync=False)``, with the tasks' ``order`` when given (as
    ``client.submit`` and ``client.map`` give theirs), where this Dask allows it."""
    if order is not None and _takes_order(type(client)):
        from distributed.spans import SpanMetadata

        futures = client._graph_to_futures(
            graph, set(keys), SpanMetadata(collections=[{"type": "low-level-graph"}]),
            internal_priority=order)
        return [futures[k] for k in keys]
    return client.get(graph, keys, sync=False)


@functools.cache
def _takes_order(client_class: type) -> bool:
    """Does this Client's ``_graph_to_futures`` take an expression and an order?"""
    import inspect

    try:
        params = inspect.signature(client_class._graph_to_futures).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - another Dask
        return False
    names = [n for n in params if n != "self"]
    return names[:3] == ["expr", "keys", "span_metadata"] and "internal_priority" in params


def named(graph: Any) -> Any:
    """The graph as a Dask expression that already has its name.

    Given a dict or a HighLevelGraph, ``client.get`` names it by tokenizing every
    task in it (pickling each task's function): about 0.07 ms per task on the
    client, a third of taskflow's client CPU for a large map.  Its keys are
    unique per run already, so a random name is as good.  Another Dask without
    these expressions gets the graph as it is.
    """
    try:
        from dask._expr import HLGExpr, LLGExpr
        from dask.highlevelgraph import HighLevelGraph

        cls = HLGExpr if isinstance(graph, HighLevelGraph) else LLGExpr
        return cls(graph, _determ_token=uuid.uuid4().hex)
    except (ImportError, TypeError):
        return graph


def _freeze(ann: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in ann.items()))


def _thaw(ann: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: dict(v) if k == "resources" else v for k, v in ann}
