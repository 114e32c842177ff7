"""Run manifests: what ``flow.run(..., resume=run_id)`` finds in the store.

When a run may persist anything, the client checks the store (failing fast,
naming the URL) and writes ``_runs/<run id>/manifest``: the flow's name and the
run's parameters.  Each worker that persists a task run's result (or finds it
CACHED) notes where, in ``_runs/<run id>/results/<task run>``.  Resuming reads
both, from any process or machine that reaches the store.

The manifest pickles the parameters: like every pickle in the store it is
signed when ``taskflow.results.signing-key`` is set.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from taskflow import config
from taskflow.exceptions import ParameterError
from taskflow.results.errors import ResultError, RunNotFoundError
from taskflow.results.frame import unframe
from taskflow.results.policy import RunResults, manifest_path, persist_spec, record_path
from taskflow.results.serializers import get_serializer
from taskflow.results.store import Persisted, ResultStore, as_store

if TYPE_CHECKING:
    from taskflow.flow import Flow
    from taskflow.graph import FlowGraph

__all__ = ["asks_storage", "begin_run", "load_refs", "prepare_run", "read_manifest", "record", "recorded", "write_manifest"]


def _flow_store(flow: Flow[..., Any]) -> ResultStore | None:
    opt = getattr(flow, "result_store", None)
    if opt is None:
        opt = config.get("results.store")
    return as_store(opt) if opt else None


def prepare_run(
    flow: Flow[..., Any], given: dict[str, Any], resume: str | None
) -> tuple[dict[str, Any], RunResults]:
    """The run's parameters and persistence settings (reading the manifest to resume)."""
    store = _flow_store(flow)
    flow_checkpoint = getattr(flow, "checkpoint", None)
    config_checkpoint = bool(config.get("results.checkpoint"))
    if resume is None:
        return flow.bind_parameters(given), RunResults(store, flow_checkpoint, config_checkpoint)
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
    manifest = read_manifest(store, resume)
    if manifest.get("flow_name") != flow.name:
        raise RunNotFoundError(
            f"run {resume} in result store {store.url} is a run of flow "
            f"{manifest.get('flow_name')!r}, not of {flow.name!r}", run_id=resume, url=store.url,
        )
    params = flow.bind_parameters(manifest.get("parameters") or {})
    _refuse_differences(flow.name, resume, params, given)
    resumed = recorded(store, resume)
    return params, RunResults(store, flow_checkpoint, config_checkpoint, resumed, resume)


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
        return bool(a == b) and type(a) is type(b) or _token(a) == _token(b)
    except Exception:  # an array's ==, or no == at all
        return _token(a) == _token(b)


def _token(value: Any) -> str:
    from dask.base import tokenize

    return tokenize(value)


def _shown(name: str, value: Any) -> str:
    from taskflow.secrets import MASK, is_secret

    text = MASK if is_secret(name) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def asks_storage(graph: FlowGraph, parameters: dict[str, Any], run_id: str,
                 results: RunResults) -> bool:
    """True when a run may store anything.

    Raises FlowDefinitionError, before anything runs, when a task asks for
    storage and there is no store, or its target cannot be formatted.
    """
    asks = results.resumed_from is not None
    plain = dataclasses.replace(results, resumed={})
    for node in graph.nodes:
        spec = persist_spec(node.task, flow_name=graph.name, task_run_name=node.name,
                            run_id=run_id, map_index=0 if node.mapped else None,
                            parameters=parameters, results=plain)
        asks = asks or spec is not None
    return asks


def begin_run(graph: FlowGraph, parameters: dict[str, Any], run_id: str, results: RunResults) -> None:
    """Before any task runs: when the run may persist, check the store and write the manifest."""
    if not asks_storage(graph, parameters, run_id, results):
        return
    assert results.store is not None
    results.store.check()
    write_manifest(results.store, run_id, graph.name, parameters, results.resumed_from)


def write_manifest(
    store: ResultStore, run_id: str, flow_name: str, parameters: dict[str, Any],
    resumed_from: str | None = None,
) -> str:
    doc = {"flow_name": flow_name, "run_id": run_id, "parameters": parameters,
           "created": time.time(), "resumed_from": resumed_from}
    return store.write(manifest_path(run_id), doc, "pickle")


def read_manifest(store: ResultStore, run_id: str) -> dict[str, Any]:
    """The manifest of ``run_id``; RunNotFoundError naming the run and the store."""
    path = manifest_path(run_id)
    if not store.exists(path):
        raise RunNotFoundError(
            f"no run {run_id} in result store {store.url}: nothing of that run was persisted "
            "there (check the run id and the store URL)", run_id=run_id, url=store.url,
        )
    doc = store.load(path, "pickle")
    if not isinstance(doc, dict):
        raise RunNotFoundError(f"{store.location(path)} is not a run manifest", run_id=run_id)
    return doc


def record(store: ResultStore, run_id: str, task_run_name: str, path: str, serializer: str) -> None:
    """Note (on the worker) where a task run's persisted result is."""
    doc = {"name": task_run_name, "path": path, "serializer": serializer}
    store.write(record_path(run_id, task_run_name), doc, "json", durable=False)  # a note: lost at worst


def recorded(store: ResultStore, run_id: str) -> dict[str, str]:
    """Task-run name to store path, for every persisted result of ``run_id``."""
    folder = record_path(run_id, "x").rpartition("/")[0]
    out: dict[str, str] = {}
    json_ser = get_serializer("json")
    for rel, data in store.read_many(store.listdir(folder)).items():
        try:
            _, payload = unframe(data, where=store.location(rel))
            doc = json_ser.loads(payload)
        except (ResultError, json.JSONDecodeError):
            continue  # a broken note: that task simply runs again
        out[doc["name"]] = doc["path"]
    return out


def load_refs(values: dict[Any, Any]) -> dict[Any, Any]:
    """The flow's returned values, stored references loaded (they go to the client anyway)."""
    if not any(type(v) is Persisted for v in values.values()):
        return values
    return {k: v.load() if type(v) is Persisted else v for k, v in values.items()}
