"""Run set-up, on the client: a run's parameters and persistence settings.

Before a flow run is planned, :func:`prepare_run` binds its parameters (or,
to resume a run, reads them from that run's manifest) and settles where and
what it may persist (:class:`~taskflow.results.policy.PersistSettings`);
:func:`decide_persistence` then decides, once per node, what each node persists.
Once planned, :func:`begin_run` checks the result store and writes the run's
manifest when anything of the run may be stored, before any task runs.

Examples
--------
>>> from taskflow import flow, task
>>> @task
... def double(x: int) -> int:
...     return 2 * x
>>> @flow
... def f(x: int = 1):
...     return double(x)
>>> params, settings = prepare_run(f, {"x": 3}, resume=None)
>>> params, settings.store is None
({'x': 3}, True)
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from taskflow import config
from taskflow.exceptions import ParameterError
from taskflow.results import manifests
from taskflow.results.errors import ResultError, RunNotFoundError
from taskflow.results.policy import NodePersistence, PersistSettings, node_persistence
from taskflow.results.store import ResultStore, as_store

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph
    from taskflow.runs import RunnableFlow

__all__ = ["asks_storage", "begin_run", "decide_persistence", "prepare_run"]


def _flow_store(flow: RunnableFlow) -> ResultStore | None:
    opt = getattr(flow, "result_store", None)
    if opt is None:
        opt = config.get("results.store")
    return as_store(opt) if opt else None


def prepare_run(
    flow: RunnableFlow, given: dict[str, Any], resume: str | None
) -> tuple[dict[str, Any], PersistSettings]:
    """The run's parameters and persistence settings (reading the manifest to resume)."""
    store = _flow_store(flow)
    flow_checkpoint = getattr(flow, "checkpoint", None)
    config_checkpoint = bool(config.get("results.checkpoint"))
    if resume is None:
        return flow.bind_parameters(given), PersistSettings(store, flow_checkpoint, config_checkpoint)
    if not isinstance(resume, str) or not resume or "/" in resume:
        raise RunNotFoundError(f"resume= takes a run id (FlowRun.run_id), got {resume!r}")
    given = flow.check_parameters(given)  # unknown names and bad values fail before the store
    if store is None:
        raise ResultError(
            f"cannot resume run {resume} of flow {flow.name!r}: the flow has no result store "
            "(result_store=... or taskflow.results.store), so no run was recorded",
            flow=flow.name, run_id=resume,
        )
    store.check()
    manifest = manifests.read_manifest(store, resume)
    if manifest.get("flow_name") != flow.name:
        raise RunNotFoundError(
            f"run {resume} in result store {store.url} is a run of flow "
            f"{manifest.get('flow_name')!r}, not of {flow.name!r}", run_id=resume, url=store.url,
        )
    params = flow.bind_parameters(manifest.get("parameters") or {})
    _refuse_differences(flow.name, resume, params, given)
    resumed = manifests.recorded(store, resume)
    return params, PersistSettings(store, flow_checkpoint, config_checkpoint, resumed, resume)


def decide_persistence(graph: FlowGraph, results: PersistSettings) -> PersistSettings:
    """``results`` with what each node of ``graph`` persists (``results.nodes``), decided once.

    ``results.nodes`` then holds the nodes that may persist; a node it lacks persists
    nothing.  The decision depends on the task and whether it is mapped, so it is
    made once per task, not once per call.

    Raises FlowDefinitionError, before anything runs, when a task asks for
    storage and there is no store (or is mapped with a target lacking ``{map_index}``).
    """
    if results.nodes is not None:
        return results
    by_task: dict[tuple[int, bool], NodePersistence | None] = {}  # 100,000 calls, one task
    nodes: dict[str, NodePersistence | None] = {}  # only nodes that persist: None is the rule
    for node in graph.nodes:
        how = (id(node.task), node.mapped)
        if how not in by_task:
            by_task[how] = node_persistence(node.task, flow_name=graph.name, mapped=node.mapped,
                                            results=results)
        if by_task[how] is not None:
            nodes[node.name] = by_task[how]
    return dataclasses.replace(results, nodes=nodes)


def _refuse_differences(flow_name: str, resume: str, params: dict[str, Any],
                        given: dict[str, Any]) -> None:
    """Values given with ``resume=`` may repeat the resumed run's; any other is refused."""
    differ = [n for n in given if not _same(given[n], params.get(n))]
    if differ:
        shown = "; ".join(
            f"{n}={_shown(n, given[n])} (the run had {_shown(n, params.get(n))})" for n in differ)
        raise ParameterError(
            f"flow {flow_name!r}: resume={resume!r} re-runs with the parameters of that run, "
            f"and these differ: {shown}. Leave them out, or start a new run without resume=",
            flow=flow_name, run_id=resume, differ=differ,
        )


def _same(a: Any, b: Any) -> bool:
    try:
        if type(a) is type(b) and bool(a == b):
            return True
    except Exception:  # an array's ==, or no == at all
        pass
    from dask.base import tokenize

    return bool(tokenize(a) == tokenize(b))


def _shown(name: str, value: Any) -> str:
    from taskflow.secrets import MASK, is_secret

    text = MASK if is_secret(name) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def asks_storage(graph: FlowGraph, parameters: dict[str, Any], run_id: str,
                 results: PersistSettings) -> bool:
    """True when a run may store anything.

    Raises FlowDefinitionError, before anything runs, when a task asks for
    storage and there is no store, or its target cannot be formatted.
    """
    results = decide_persistence(graph, results)
    assert results.nodes is not None
    asks = results.resumed_from is not None
    plain = dataclasses.replace(results, resumed={})
    for node in graph.nodes:
        decided = results.nodes.get(node.name)
        if decided is not None and decided.asks:  # formats its target: a bad one fails now
            decided.spec(task_run_name=node.name, run_id=run_id, map_index=0 if node.mapped else None,
                         parameters=parameters, results=plain)
            asks = True
    return asks


def begin_run(graph: FlowGraph, parameters: dict[str, Any], run_id: str,
              results: PersistSettings) -> None:
    """Before any task runs: when the run may persist, check the store and write the manifest."""
    if not asks_storage(graph, parameters, run_id, results):
        return
    assert results.store is not None
    results.store.check()
    manifests.write_manifest(results.store, run_id, graph.name, parameters, results.resumed_from)
