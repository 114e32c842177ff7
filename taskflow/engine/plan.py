"""Plan a flow run: one entry per task run, with its Dask key and inputs.

The plan is the hand-off between the flow graph (what the user defined) and an
executor (where it runs).  It is plain Python: no Dask import, no I/O, so it is
tested alone.  For each task call it fixes

* the run's name (``total``, ``total-2`` when called twice) and a readable,
  run-unique Dask key, ``<task name>-<token>``, so Dask's dashboard groups keys
  by task name and two runs of one flow never collide;
* the argument templates, with flow parameters filled in and each upstream
  output replaced by a :class:`Slot` into the list of upstream values the task
  receives at run time;
* which keys it depends on.  Data upstreams are depended on directly, so Dask
  moves their outputs from worker to worker.  An ordering edge (``wait_for``)
  goes through a :class:`Probe`: a tiny task that runs next to the upstream's
  output and reports only its state, so ordering never moves data.

The worker receives a :class:`TaskRunSpec`; the client keeps the rest.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from dask.base import tokenize

from taskflow import config
from taskflow.graph import ParamRef, Ref, iter_leaves, substitute

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph, TaskNode
    from taskflow.task import Task

__all__ = ["Plan", "PlannedTask", "Probe", "RunInfo", "Slot", "TaskRunSpec", "build_plan"]

Key = Union[str, tuple[Any, ...]]


@dataclass(frozen=True)
class RunInfo:
    """Facts about the flow run that every task run carries (shared, pickled once)."""

    flow_name: str
    run_id: str
    topic: str
    client_pid: int
    client_host: str
    log_level: int

    def is_client_process(self) -> bool:
        """True when running inside the process that runs the flow."""
        return os.getpid() == self.client_pid and socket.gethostname() == self.client_host


@dataclass(frozen=True)
class Slot:
    """Position ``index`` in the list of upstream values a task run receives."""

    index: int


@dataclass(frozen=True, eq=False)
class TaskRunSpec:
    """What a worker needs to run one task run.

    Compared and hashed by identity, and tokenized by run and name: Dask
    tokenizes every object embedded in a graph, and walking the task's function
    for each of thousands of specs would cost more than running them.
    """

    run: RunInfo
    name: str
    key: Key
    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    upstream: tuple[str, ...]
    templated: bool = True

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        return ("taskflow.TaskRunSpec", self.run.run_id, self.name)

    def build_arguments(self, values: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments, with each :class:`Slot` replaced by its value."""
        if not self.templated:
            return self.args, self.kwargs

        def leaf(v: Any) -> Any:
            return values[v.index] if type(v) is Slot else v

        return substitute(self.args, leaf), substitute(self.kwargs, leaf)


@dataclass
class PlannedTask:
    """A task run in the plan: its spec and the keys it depends on, in order."""

    spec: TaskRunSpec
    deps: list[Key]

    @property
    def key(self) -> Key:
        return self.spec.key

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def annotations(self) -> dict[str, Any]:
        """Dask annotations for this run's key (resources, priority)."""
        t = self.spec.task
        out: dict[str, Any] = {}
        if t.resources:
            out["resources"] = dict(t.resources)
        if t.priority:
            out["priority"] = t.priority
        return out


@dataclass
class Probe:
    """A small step that reports the state of ``of`` without moving its data."""

    key: Key
    of: Key


Step = Union[PlannedTask, Probe]


@dataclass
class Plan:
    """Everything an executor needs to run one flow run."""

    run: RunInfo
    parameters: dict[str, Any]
    steps: list[Step]
    returns: Any
    return_keys: list[Key]
    reference_keys: list[Key]
    tasks: dict[Key, PlannedTask] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tasks = {s.key: s for s in self.steps if isinstance(s, PlannedTask)}

    @property
    def wanted_keys(self) -> list[Key]:
        """Keys the client holds futures for: return values and reference tasks."""
        return list(dict.fromkeys([*self.return_keys, *self.reference_keys]))

    def names(self) -> dict[Key, str]:
        return {k: t.name for k, t in self.tasks.items()}

    def downstream(self) -> dict[Key, list[Key]]:
        """Task keys that depend on each key, through data or ordering."""
        probe_of = {s.key: s.of for s in self.steps if isinstance(s, Probe)}
        out: dict[Key, list[Key]] = {k: [] for k in self.tasks}
        for t in self.tasks.values():
            for d in t.deps:
                out[probe_of.get(d, d)].append(t.key)
        return out


def build_plan(graph: FlowGraph, parameters: dict[str, Any], run_id: str) -> Plan:
    """Turn a traced flow graph and its parameter values into a :class:`Plan`.

    Parameters
    ----------
    graph : FlowGraph
        The flow's graph (``flow.graph``), nodes upstream first.
    parameters : dict
        A value for every parameter (``flow.bind_parameters`` gives one).
    run_id : str
        The flow run's id; it makes the keys unique to this run.
    """
    run = RunInfo(
        flow_name=graph.name,
        run_id=run_id,
        topic=config.get("events.topic"),
        client_pid=os.getpid(),
        client_host=socket.gethostname(),
        log_level=_level(config.get("logging.level")),
    )
    keys: dict[int, Key] = {
        n.id: f"{n.task.key_prefix}-{tokenize(run_id, n.name)}" for n in graph.nodes
    }
    order_targets = {u for n in graph.nodes for u in n.wait_for if u not in n.data_upstream}
    probes = {
        u: Probe(key=f"{graph.node(u).task.key_prefix}_state-{tokenize(run_id, u)}", of=keys[u])
        for u in order_targets
    }
    names = {n.id: n.name for n in graph.nodes}
    steps: list[Step] = []
    for node in graph.nodes:
        steps.append(_plan_task(node, run, keys, names, probes, parameters))
        if node.id in probes:
            steps.append(probes[node.id])

    def to_key(v: Any) -> Any:
        if isinstance(v, Ref):
            return _KeyRef(keys[v.id])
        if isinstance(v, ParamRef):
            return parameters[v.name]
        return v

    return Plan(
        run=run,
        parameters=dict(parameters),
        steps=steps,
        returns=substitute(graph.returns, to_key),
        return_keys=[keys[i] for i in graph.return_ids()],
        reference_keys=[keys[n.id] for n in graph.terminal()],
    )


@dataclass(frozen=True)
class _KeyRef:
    key: Key


def resolve_returns(plan: Plan, values: dict[Key, Any]) -> Any:
    """The flow's return value, with each task reference replaced by ``values[key]``."""
    return substitute(plan.returns, lambda v: values[v.key] if isinstance(v, _KeyRef) else v)


def _plan_task(
    node: TaskNode,
    run: RunInfo,
    keys: dict[int, Key],
    names: dict[int, str],
    probes: dict[int, Probe],
    parameters: dict[str, Any],
) -> PlannedTask:
    upstream_ids = node.upstream
    slot = {u: i for i, u in enumerate(upstream_ids)}

    def leaf(v: Any) -> Any:
        if isinstance(v, Ref):
            return Slot(slot[v.id])
        if isinstance(v, ParamRef):
            return parameters[v.name]
        return v

    has_refs = any(isinstance(v, (Ref, ParamRef)) for v in iter_leaves((node.args, node.kwargs)))
    args, kwargs = (
        (substitute(node.args, leaf), substitute(node.kwargs, leaf))
        if has_refs
        else (node.args, node.kwargs)
    )
    data = set(node.data_upstream)
    spec = TaskRunSpec(
        run=run,
        name=node.name,
        key=keys[node.id],
        task=node.task,
        args=args,
        kwargs=kwargs,
        upstream=tuple(names[u] for u in upstream_ids),
        templated=bool(data),
    )
    deps = [keys[u] if u in data else probes[u].key for u in upstream_ids]
    return PlannedTask(spec=spec, deps=deps)


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    return level if isinstance(level, int) else logging.INFO
