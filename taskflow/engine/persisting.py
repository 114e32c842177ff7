"""The worker side of results: find what is stored, load it lazily, write outputs.

The task runner calls these around a task run that has a
:class:`~taskflow.results.policy.PersistSpec` (none of them runs otherwise):

* :func:`find_stored` -- before anything else: a result persisted by the run
  being resumed, or an existing target, makes the run CACHED -- when its file
  passes its check (length, checksum, signature); a file that fails is a miss,
  with a warning naming it and why, and the task runs again;
* :func:`load_upstream` -- upstream keys of CACHED tasks hold
  :class:`~taskflow.results.Persisted` references; the values are loaded here,
  on this worker, only because this task is about to run and needs them;
* :func:`cache_lookup` -- with ``cache_key_fn``: a fresh entry makes it CACHED;
* :func:`save` -- after the function returned: serialize and write atomically
  on this worker, then note the location for ``resume=``.  A Dask collection
  is written as a dataset by the workers holding its partitions
  (:mod:`taskflow.results.datasets`), never pickled.

A CACHED task's Dask key holds the small reference, never the loaded value: a
value is read from the store by each task that consumes it, on that task's
worker, and by nothing else.  (A mapped child taking one element of a CACHED
list loads the list on its worker, as it would receive the list from Dask.)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskflow.engine.collections import Collections, LocalCollections, is_collection
from taskflow.engine.steps import Group
from taskflow.logs import get_run_logger
from taskflow.results import datasets, manifests
from taskflow.results.caching import CacheContext, bound_inputs
from taskflow.results.errors import ResultError, SerializationError
from taskflow.results.policy import PersistSpec, cache_hit, cache_path
from taskflow.results.serializers import dumps_parts, extension, serializer_name
from taskflow.results.store import Persisted
from taskflow.states import State, StateType

if TYPE_CHECKING:
    from taskflow.engine.steps import TaskRunSpec

__all__ = ["StoredResult", "cache_lookup", "find_stored", "load_upstream", "save"]


@dataclass(frozen=True)
class StoredResult:
    """A stored result standing in for a run: the CACHED state and the key's value."""

    state: State
    ref: Persisted


def _hit(spec: TaskRunSpec, p: PersistSpec, path: str, why: str,
         serializer: Any = None) -> StoredResult:
    now = time.time()
    ser = p.serializer if serializer is None else serializer
    ref = Persisted(p.store, path, ser)
    manifests.record(p.store, p.run_id, spec.name, path, serializer_name(ser))
    state = State(StateType.CACHED, message=f"{why}: {ref.location}", started_at=now,
                  ended_at=now, result_location=ref.location)
    return StoredResult(state, ref)


def _trusted(spec: TaskRunSpec, p: PersistSpec, path: str) -> bool:
    """May the stored result at ``path`` stand in for this run?  Warn when not.

    A file that fails its check (truncated, corrupted, unsigned or wrongly
    signed in a signed store, written by another serializer) is a cache miss:
    this task is computed again, and its new result replaces the file where it
    writes to the same place.  Nothing reads the bad bytes, no code in them runs.
    """
    why = p.store.verify(path, p.serializer)
    if why is None:
        return True
    get_run_logger().warning("task %r: not using its stored result: %s; computing it again",
                             spec.name, why)
    return False


def find_stored(spec: TaskRunSpec, p: PersistSpec) -> StoredResult | None:
    """CACHED from the run being resumed, or from an existing target; else None.

    A stored file is used only when it passes its check (:func:`_trusted`); a
    dataset (a collection's folder) when its completion marker is there.
    """
    for path, why in ((p.resume, f"resumed from run {p.resumed_from}"), (p.target, "target exists")):
        if path is None:
            continue
        if datasets.complete(p.store, path):
            return _hit(spec, p, path, why, datasets.DATASET)
        if p.store.exists(path) and _trusted(spec, p, path):
            return _hit(spec, p, path, why)
    return None


def load_upstream(names: tuple[Any, ...], values: list[Any]) -> list[Any]:
    """``values`` with every stored reference loaded (single upstreams and mapped groups)."""
    out: list[Any] = []
    for name, v in zip(names, values):
        if type(v) is Persisted:
            v = v.load()
        elif type(name) is Group and type(v) is list:
            v = [x.load() if type(x) is Persisted else x for x in v]
        out.append(v)
    return out


def cache_lookup(
    spec: TaskRunSpec, p: PersistSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str | None, StoredResult | None]:
    """``(cache path, hit)``: the entry for this call's key, CACHED when fresh."""
    assert p.cache_key_fn is not None
    run = spec.run
    ctx = CacheContext(task=spec.task, task_run_name=spec.name, flow_name=run.flow_name,
                       run_id=run.run_id, map_index=spec.map_index)
    key = p.cache_key_fn(ctx, bound_inputs(spec.task, args, kwargs))
    if key is None:
        return None, None
    path = cache_path(p.cache_dir, str(key), extension(p.serializer))
    found, serializer = path, None
    try:
        header = p.store.header(path)
    except ResultError as e:  # not even a header: a miss, like a failed check
        header = None
        get_run_logger().warning("task %r: not using its cache entry: %s; computing it again",
                                 spec.name, e)
    if header is None:  # a collection is a dataset next to where a file would be
        for folder in datasets.candidates(path, extension(p.serializer)):
            header = p.store.header(f"{folder}/{datasets.MARKER}")
            if header is not None:
                found, serializer = folder, datasets.DATASET
                break
    if (header is not None and cache_hit(header.written_at, p.cache_for, time.time())
            and (serializer is not None or _trusted(spec, p, path))):
        age = max(0.0, time.time() - header.written_at)
        return path, _hit(spec, p, found, f"cache hit (key {key}, written {age:.0f} s ago)",
                          serializer)
    return path, None


def save(
    spec: TaskRunSpec, p: PersistSpec, result: Any, cache: str | None,
    collections: Collections | None = None,
) -> str | None:
    """Write ``result`` where the spec says (or at its cache entry); return its URL.

    A Dask collection becomes a dataset, written through ``collections`` (on the
    cluster the task runs on): at the target as given, else in a folder named for
    its format next to where a file would go.
    """
    path = cache if cache is not None else p.write
    if path is None:
        return None
    if is_collection(result):
        kind = datasets.kind_of(result)
        folder = path if path == p.target else datasets.dataset_path(path, extension(p.serializer), kind)
        location = datasets.write(p.store, folder, result,
                                  (collections or LocalCollections()).compute)
        manifests.record(p.store, p.run_id, spec.name, folder, datasets.DATASET.name)
        return location
    try:
        payload = dumps_parts(p.serializer, result)
    except Exception as e:
        raise SerializationError(
            f"task {spec.name!r} returned a {type(result).__module__}.{type(result).__qualname__} "
            f"that serializer {serializer_name(p.serializer)!r} cannot write: "
            f"{type(e).__name__}: {e}",
            task=spec.name, serializer=serializer_name(p.serializer),
            type=type(result).__qualname__,
        ) from None
    location = p.store.write_payload(path, payload, p.serializer)
    manifests.record(p.store, p.run_id, spec.name, path, serializer_name(p.serializer))
    return location
