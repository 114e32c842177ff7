"""Run manifests: what ``flow.run(..., resume=run_id)`` finds in the store.

When a run may persist anything, the client (:mod:`taskflow.engine.setup`)
checks the store (failing fast, naming the URL) and writes ``_runs/<run id>/manifest``: the flow's name and the
run's parameters.  Each worker that persists a task run's result (or finds it
CACHED) notes where, in ``_runs/<run id>/results/<task run>``.  Resuming reads
both, from any process or machine that reaches the store.

The manifest pickles the parameters: like every pickle in the store it is
signed when ``taskflow.results.signing-key`` is set.
"""
from __future__ import annotations

import json
import time
from typing import Any

from taskflow.results.errors import ResultError, RunNotFoundError
from taskflow.results.frame import unframe
from taskflow.results.policy import manifest_path, record_path
from taskflow.results.serializers import get_serializer
from taskflow.results.store import Persisted, ResultStore

__all__ = ["load_refs", "read_manifest", "record", "recorded", "write_manifest"]


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
