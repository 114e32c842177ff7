"""Results: opt-in checkpoints, targets and caches in one store over fsspec URLs.

Outputs live in worker memory; nothing is written anywhere unless asked:

* per task: ``@task(checkpoint=True)``, ``target="{flow_name}/{day}/x.parquet"``,
  ``cache_key_fn=task_input_hash, cache_for=timedelta(hours=6)``;
* per flow: ``@flow(result_store="s3://bucket/prefix", checkpoint=True)``;
* globally: ``taskflow.results.checkpoint: true`` and ``taskflow.results.store``.

The worker that ran a task writes its output (atomically); a task whose target
exists, whose cache entry is fresh, or whose result a resumed run persisted ends
CACHED without running.  Its Dask key then holds a small :class:`Persisted`
reference, and the worker-side runner of each task that needs the value loads it
there, on its own worker (never through the client).  ``flow.run(...,
resume=run_id)`` re-runs a finished run: what it persisted is CACHED, the rest
runs again.  A Dask collection is stored as a dataset written by the workers
(Parquet, Zarr, or one pickle per partition; see :mod:`taskflow.results.datasets`),
trusted only once its ``_SUCCESS`` marker is there, and read back lazily.

Examples
--------
>>> from taskflow.results import ResultStore, task_input_hash
>>> ResultStore("memory://results", serializer="json")
ResultStore('memory://results', serializer='json')
"""
from taskflow.results.caching import CacheContext, task_input_hash
from taskflow.results.errors import (
    CorruptResultError,
    ResultError,
    ResultStoreError,
    RunNotFoundError,
    SerializationError,
    SignatureError,
)
from taskflow.results.serializers import (
    JSONSerializer,
    NpySerializer,
    ParquetSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
)
from taskflow.results.store import Persisted, ResultStore, as_store, load_url

__all__ = [
    "CacheContext",
    "CorruptResultError",
    "JSONSerializer",
    "NpySerializer",
    "ParquetSerializer",
    "Persisted",
    "PickleSerializer",
    "ResultError",
    "ResultStore",
    "ResultStoreError",
    "RunNotFoundError",
    "SerializationError",
    "Serializer",
    "SignatureError",
    "as_store",
    "get_serializer",
    "load_url",
    "task_input_hash",
]
