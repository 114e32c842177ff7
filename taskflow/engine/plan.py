"""Plan a flow run: one step per task run, with its Dask key and inputs.

The plan is the hand-off between the flow graph (what the user defined) and an
executor (where it runs).  It is plain Python: no Dask import, no I/O, so it is
tested alone.  It fixes for each task call

* the run's name (``total``, ``total-2`` when called twice; ``load[3]`` for a
  mapped child) and a readable, run-unique Dask key (``load-<token>``, mapped
  children ``("load-<token>", 3)``), so Dask's dashboard groups keys by task
  name and two runs of one flow never collide;
* the argument templates, with flow parameters filled in and each upstream
  output replaced by a :class:`Slot` into the list of values the run receives;
* what it stores (a :class:`~taskflow.results.policy.PersistSpec`: checkpoint
  path, formatted target, cache key function, the result of a resumed run), or
  nothing, which is the default;
* the keys it depends on.  Data upstreams are depended on directly, so Dask
  moves outputs from worker to worker.  Ordering edges (``wait_for``) go through
  a :class:`Probe` that reports only the upstream's state, so ordering moves no
  data.

**Mapping.**  A mapped call over constants or parameters expands at once.  A map
over a task's output needs its length, known only at run time: the plan asks for
a :class:`Length` step (a tiny task next to the data) and leaves the node
pending.  The executor runs what is known, hands each length back through
:meth:`Plan.add_lengths`, and gets the next :class:`Batch` of steps: one child per
element, each child taking its element inside its task (a small source) or
through an :class:`Item` step on the worker that holds the data
(:mod:`~taskflow.engine.expansion`).  Only lengths reach the client.  A map over
another map's children links child ``i`` to child ``i``.

The worker receives a :class:`TaskRunSpec`; the client keeps the rest.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import dask.utils

from taskflow import concurrency, config, hooks
from taskflow.engine.events import StateEvent
from taskflow.engine.expansion import MapExpansion
from taskflow.engine.markers import StateMarker
from taskflow.engine.outputs import (
    Broken,
    ChildKeys,
    ChildNames,
    Children,
    KeyDep,
    Later,
    Out,
    Single,
    derived,
    keys_of,
    token,
)
from taskflow.engine.steps import (
    NO_KWARGS,
    Batch,
    Dep,
    Group,
    Item,
    Key,
    Length,
    Pick,
    PlannedTask,
    Probe,
    RunInfo,
    SentChild,
    Slot,
    Step,
    TaskRunSpec,
)
from taskflow.engine.task_table import TaskTable
from taskflow.graph import ParamRef, Ref
from taskflow.nesting import substitute
from taskflow.results.policy import NodePersistence, PersistSettings, node_persistence
from taskflow.states import State, StateType

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph, TaskNode

__all__ = [  # the steps are re-exported: executors and runners import them from here
    "Batch", "Dep", "Group", "Item", "Key", "Length", "Pick", "Plan", "PlannedTask", "Probe",
    "RunInfo", "SentChild", "Slot", "Step", "TaskRunSpec", "build_plan", "node_of",
]

class Plan(MapExpansion):
    """A flow run's plan; grows as map lengths become known.

    Use :meth:`start` for the first :class:`Batch`, then :meth:`add_lengths` with
    the values of :class:`Length` steps until :attr:`waiting` is empty.
    """

    def __init__(
        self,
        graph: FlowGraph,
        parameters: dict[str, Any],
        run_id: str,
        results: PersistSettings | None = None,
    ) -> None:
        self.graph = graph
        self.parameters = dict(parameters)
        self.results = results if results is not None else PersistSettings(
            config_checkpoint=bool(config.get("results.checkpoint"))
        )
        self.run = RunInfo(
            flow_name=graph.name,
            run_id=run_id,
            topic=config.get("events.topic"),
            client_pid=os.getpid(),
            client_host=socket.gethostname(),
            log_level=_level(config.get("logging.level")),
            limits=tuple(sorted(concurrency.limits().items())),
            hook_timeout=hooks.hook_timeout(),
        )
        self._base = {n.id: f"{n.task.key_prefix}-{token(run_id, n.name)}" for n in graph.nodes}
        self._pending = [n.id for n in graph.nodes]
        self._out: dict[int, Out] = {}
        self._facts: dict[Key, Any] = {}
        self.waiting: set[Key] = set()
        self._asked: set[Key] = set()
        self._probes: dict[Key, Key] = {}
        self._decided: dict[str, NodePersistence | None] = {}
        self._items: set[Key] = set()
        self.tasks = TaskTable()  # key -> PlannedTask, or SentChild once a child was sent
        self.parents: dict[str, State] = {}
        self._return_ids = graph.return_ids()
        self._reference_ids = [n.id for n in graph.terminal()]
        self._keep_ids = set(self._return_ids) | set(self._reference_ids)
        self._returned = {self._base[i] for i in self._return_ids}
        self._pick_limit = dask.utils.parse_bytes(config.get("map.split-above"))
        self._open: list[Batch] = []  # batches whose steps are made as they are taken
        self._shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # upstream names, deps: shared
        self._alike: dict[int, tuple[Any, ...]] = {}  # node id -> the parts its children share
        self._abandoned = False  # the run stopped: children not made yet never will be
        self._unmade: list[tuple[str, str, int, int]] = []  # (node name, key base, start, stop)

    # -- driving --------------------------------------------------------------------
    def start(self, lazy: bool = False) -> Batch:
        """The steps known before anything runs.

        With ``lazy``, the batch makes its steps as they are taken
        (:meth:`Batch.take`): an executor sending a wide flow in windows plans a
        window at a time.  Otherwise every step is made (and in :attr:`tasks`) now.
        """
        return self._advance(lazy)

    def add_lengths(self, facts: dict[Key, Any], lazy: bool = False) -> Batch:
        """Record values of :class:`Length` steps; return the steps that became known.

        Batches handed out before and not wholly taken yet are made first (their
        steps stay theirs): what they plan must not see the plan change under it.
        ``lazy`` as in :meth:`start`.
        """
        self.force()
        for k, v in facts.items():
            self._facts[k] = v
            self.waiting.discard(k)
        return self._advance(lazy)

    def force(self) -> None:
        """Make every step of the batches handed out (taken or not)."""
        open_batches, self._open = self._open, []
        for batch in open_batches:
            batch.force()

    def abandon(self) -> None:
        """The run stopped early (a cancel): make the open batches' steps, except the
        mapped children not made yet, which are only counted (:meth:`unmade`), so that
        stopping a map of a million costs nothing per child never sent."""
        self._abandoned = True
        self.force()

    def sent(self, steps: list[Step]) -> None:
        """``steps`` went to a cluster: keep of each mapped child only a
        :class:`~taskflow.engine.steps.SentChild` (the cluster has the rest)."""
        tasks = self.tasks
        for step in steps:
            if type(step) is PlannedTask and step.spec.map_index is not None:
                tasks.sent(step)

    def unmade_ranges(self) -> Iterator[tuple[str, int, int]]:
        """``(node name, start, stop)``: the children :meth:`abandon` left unmade, by range."""
        for name, _base, start, stop in self._unmade:
            yield name, start, stop

    def keys_of(self, names: Iterable[str]) -> dict[str, tuple[Key, int | None]]:
        """``name -> (key, map_index)`` of those of ``names`` the run has (children
        made, sent or never made: :meth:`abandon`), with no look at each child."""
        bases = {n.name: self._base[n.id] for n in self.graph.nodes if n.mapped}
        return self.tasks.keys_of(names, bases)

    @property
    def done(self) -> bool:
        """True when every node has its steps (nothing waits for a length, all are made)."""
        return not self._pending and not any(b._source is not None for b in self._open)

    def needed_later(self) -> Later:
        """Keys that nodes still pending will depend on: hold them until then.

        Answers ``key in later`` without making a set of a map's children."""
        out = Later()
        for nid in self._pending:
            for u in self.graph.node(nid).upstream:
                o = self._out.get(u)
                if isinstance(o, Single):
                    out.add(o.key)
                elif isinstance(o, Children):
                    out.update(o.keys)
        return out

    # -- results --------------------------------------------------------------------
    def return_keys(self) -> list[Key]:
        return keys_of(self._out, self._return_ids)

    def returned(self, key: Key) -> bool:
        """Is ``key`` a task run whose output the flow returns (a child of one, too)?"""
        return (key[0] if isinstance(key, tuple) else key) in self._returned

    def reference(self) -> dict[str, Sequence[str]]:
        """Reference (terminal) node names, each with the task-run names it stands for."""
        out: dict[str, Sequence[str]] = {}
        for nid in self._reference_ids:
            node, o = self.graph.node(nid), self._out.get(nid)
            if isinstance(o, Children):  # made or not (a stopped run)
                out[node.name] = ChildNames(node.name, len(o.keys))
            else:
                out[node.name] = [node.name]
        return out

    def task_run_count(self) -> int:
        """How many task runs the run has as far as known now: one per task, one per
        mapped child (made or not yet), one per mapped task without children (yet).

        Cheap (one look per graph node), so a progress bar may ask often.
        """
        total = 0
        for node in self.graph.nodes:
            o = self._out.get(node.id)
            total += len(o.keys) or 1 if isinstance(o, Children) else 1
        return total

    def widths(self) -> dict[str, int]:
        """How many children each mapped task has, for those whose length is known
        (their children may not all be made yet: see :meth:`start`)."""
        out: dict[str, int] = {}
        for node in self.graph.nodes:
            o = self._out.get(node.id)
            if node.mapped and isinstance(o, Children):
                out[node.name] = len(o.keys)
        return out

    def childless(self) -> list[str]:
        """Mapped nodes with no child task runs: not expanded yet, unable to, or empty.

        Each stands for itself in counts of a run's task runs (as in :meth:`reference`).
        """
        out = []
        for node in self.graph.nodes:
            if node.mapped:
                o = self._out.get(node.id)
                if not (isinstance(o, Children) and o.keys):
                    out.append(node.name)
        return out

    def resolve_returns(self, values: dict[Key, Any]) -> Any:
        """The flow's return value, with task references replaced by ``values``."""

        def leaf(v: Any) -> Any:
            if isinstance(v, ParamRef):
                return self.parameters[v.name]
            if not isinstance(v, Ref):
                return v
            o = self._out.get(v.id)
            if isinstance(o, Single):
                return _plain(values.get(o.key))
            if isinstance(o, Children):
                return [_plain(values.get(k)) for k in o.keys]
            return None

        return substitute(self.graph.returns, leaf)

    def names(self) -> dict[Key, str]:
        return {k: t.name for k, t in self.tasks.items()}

    def downstream(self) -> dict[Key, list[Key]]:
        """Task keys that depend on each task key, through data or ordering."""
        origin = {probe: of for of, probe in self._probes.items()}
        out: dict[Key, list[Key]] = {k: [] for k in self.tasks}
        for t in self.tasks.values():
            for d in t.dep_keys():
                src = origin.get(d, d)
                if src in out:
                    out[src].append(t.key)
        return out

    # -- expansion ------------------------------------------------------------------
    def _advance(self, lazy: bool) -> Batch:
        """The steps that became known, made now or (``lazy``) as they are taken."""
        batch = Batch()
        batch._source = self._generate(batch)
        if lazy:
            self._open = [b for b in self._open if b._source is not None] + [batch]
        else:
            batch.force()
        return batch

    def _generate(self, batch: Batch) -> Iterator[Step]:
        """Each resolvable node's steps, upstream first; a mapped node's children one by one.

        Until it ends, nodes not visited yet stay in ``_pending`` (so
        :meth:`needed_later` errs on the side of holding).
        """
        still: list[int] = []
        out: list[Step] = []
        for nid in self._pending:
            node = self.graph.node(nid)
            if any(u not in self._out for u in node.upstream):
                still.append(nid)
                continue
            if not node.mapped:
                self._out[nid] = Single(self._emit_task(node, node.name, self._base[nid],
                                                         node.args, node.kwargs, None, out))
                yield from out
                out.clear()
                continue
            length = self._length(node, out)
            yield from out
            out.clear()
            if length is None:
                still.append(nid)
            elif isinstance(length, State):
                self._out[nid] = Broken(StateMarker(length))
                self._parent(node, length, batch)
            else:
                self._out[nid] = Children(ChildKeys(self._base[nid], length))
                self._parent(node, State(StateType.RUNNING, message=f"mapped over {length} elements"), batch)
                for i in range(length):
                    if self._abandoned:
                        self._unmade.append((node.name, self._base[nid], i, length))
                        break
                    self._emit_child(node, i, out)
                    yield from out
                    out.clear()
        self._pending = still

    def _parent(self, node: TaskNode, state: State, batch: Batch) -> None:
        self.parents[node.name] = state
        batch.events.append(StateEvent.of(self.run.run_id, node.name, self._base[node.id], state).to_msg())

    def _emit_task(
        self,
        node: TaskNode,
        name: str,
        key: Key,
        args: Any,
        kwargs: Any,
        map_index: int | None,
        out: list[Step],
    ) -> Key:
        deps: list[Dep] = []
        names: list[str | Group] = []
        slot_of: dict[Any, int] = {}
        templated = False

        def slot(ident: Any, dep: Dep, label: str | Group) -> Slot:
            if ident not in slot_of:
                slot_of[ident] = len(deps)
                deps.append(dep)
                names.append(label)
            return Slot(slot_of[ident])

        def leaf(v: Any) -> Any:
            nonlocal templated
            if isinstance(v, ParamRef):
                return self.parameters[v.name]
            if isinstance(v, KeyDep):
                templated = True
                at = slot(v.key, v.key, v.name)
                return at if v.index is None else Pick(at.index, v.index)
            if isinstance(v, Ref):
                templated = True
                up, o = self.graph.node(v.id), self._out[v.id]
                if isinstance(o, Single):
                    return slot(o.key, o.key, up.name)
                if isinstance(o, Children):
                    return slot(("group", v.id), o.keys, Group(up.name, len(o.keys)))
                return slot(("broken", v.id), o.marker, up.name)
            return v

        args, kwargs = substitute(args, leaf), substitute(kwargs, leaf)
        data = set(node.data_upstream)
        for u in node.wait_for:
            if u in data:
                continue
            up, o = self.graph.node(u), self._out[u]
            if isinstance(o, Broken):
                slot(("broken", u), o.marker, up.name)
                continue
            keys = [o.key] if isinstance(o, Single) else list(o.keys)
            if not up.task.engine_internal:
                keys = [self._probe(k, out) for k in keys]
            if isinstance(o, Single):
                slot(("order", u), keys[0], up.name)
            else:
                slot(("order", u), keys, Group(up.name, len(keys)))
        decided = self._persistence(node)
        persist = None if decided is None else decided.spec(
            task_run_name=name, run_id=self.run.run_id, map_index=map_index,
            parameters=self.parameters, results=self.results,
        )
        upstream = tuple(names)
        if map_index is None or not any(type(n) is str and n.endswith("]") for n in upstream):
            upstream = self._shared.setdefault(upstream, upstream)  # one per node, mostly
        if map_index is None:  # a mapped child's name goes with its spec (none kept)
            name = sys.intern(name)
        spec = TaskRunSpec(
            run=self.run, name=name, key=key, task=node.task, args=args,
            kwargs=kwargs or NO_KWARGS, upstream=upstream, templated=templated,
            map_index=map_index, persist=persist,
        )
        planned = PlannedTask(spec, deps, keep=node.id in self._keep_ids)
        self.tasks.add(planned)
        out.append(planned)
        return key

    def _persistence(self, node: TaskNode) -> NodePersistence | None:
        """What the node persists: decided at set-up (``results.nodes``), else here, once."""
        nodes = self.results.nodes
        if nodes is not None:  # decided at set-up: the nodes that persist (see decide_persistence)
            return nodes.get(node.name)
        if node.name not in self._decided:
            self._decided[node.name] = node_persistence(
                node.task, flow_name=self.run.flow_name, mapped=node.mapped, results=self.results)
        return self._decided[node.name]

    def _probe(self, key: Key, out: list[Step]) -> Key:
        if key not in self._probes:
            self._probes[key] = derived(key, "state")
            out.append(Probe(self._probes[key], key))
        return self._probes[key]


def build_plan(
    graph: FlowGraph, parameters: dict[str, Any], run_id: str, results: PersistSettings | None = None
) -> Plan:
    """A :class:`Plan` for ``graph`` with ``parameters`` (one value per parameter).

    ``results`` holds the run's result store and checkpoint settings; each task
    run that stores anything gets a :class:`~taskflow.results.policy.PersistSpec`.
    """
    return Plan(graph, parameters, run_id, results)


def node_of(task: PlannedTask | SentChild) -> str:
    """The name of the mapped node a child task run belongs to (``load`` for ``load[3]``)."""
    if type(task) is SentChild:
        return task.node
    return task.name.rpartition("[")[0]


def _plain(value: Any) -> Any:
    return None if isinstance(value, StateMarker) else value


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    return level if isinstance(level, int) else logging.INFO

