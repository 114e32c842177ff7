"""Dask collections in a result store: datasets written by the workers, in parallel.

A checkpointed (or targeted, or cached) task output that is a Dask collection is
not pickled: its data is written, partition by partition, by the workers that
hold it, under the store's URL with the store's ``storage_options``:

==========================  =================================================
DataFrame, Series           a partitioned Parquet dataset (``to_parquet``)
Array                       a Zarr array (``to_zarr``; the ``arrays`` extra)
Bag, Delayed                one framed pickle file per partition
==========================  =================================================

A dataset is a folder.  Its **completion marker**, ``_SUCCESS`` (as Hadoop
writes), is written last, after every partition, and it is the only thing a
reader trusts: a folder without it (a run killed mid-write) is not a result,
and the task runs again, first removing what the dead writer left.  The
marker is a small framed JSON document saying what the folder holds (kind,
partitions, chunks), so reading needs no guessing.

Reading is lazy: :func:`load` returns a collection over the files
(``read_parquet``, ``from_zarr``, one delayed read per part), with the same
divisions (Parquet keeps the index's statistics) and the same chunks (given
back with a rechunk when Zarr needed regular ones).  Parquet's statistics leave
out empty partitions, so known divisions are kept beside the data
(``_divisions``) and the frame is read one file per partition with them.

Examples
--------
>>> dataset_path("etl/run1/filtered.pkl", ".pkl", "dataframe")
'etl/run1/filtered.parquet'
>>> dataset_path("events/2026-11-01", ".pkl", "array")
'events/2026-11-01.zarr'
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskflow.results.errors import ResultError, SerializationError

if TYPE_CHECKING:
    from taskflow.results.store import ResultStore

__all__ = ["DATASET", "MARKER", "complete", "dataset_path", "find", "kind_of", "load", "write"]

MARKER = "_SUCCESS"
_SUFFIX = {"dataframe": ".parquet", "series": ".parquet", "array": ".zarr",
           "bag": ".parts", "delayed": ".parts"}
_SERIES_COLUMN = "__series__"
_DIVISIONS = "_divisions"

Compute = Callable[..., tuple[Any, ...]]


class DatasetFormat:
    """What :class:`~taskflow.results.Persisted` holds for a dataset instead of a serializer."""

    name = "dataset"
    ext = ""
    executes_code = True  # Bag/Delayed parts are pickles (signed like any other)

    def load_from(self, store: ResultStore, path: str) -> Any:
        return load(store, path)

    def __repr__(self) -> str:
        return "DatasetFormat()"

    def __reduce__(self) -> str:
        return "DATASET"


DATASET = DatasetFormat()


def kind_of(value: Any) -> str:
    """``dataframe``, ``series``, ``array``, ``bag`` or ``delayed`` (any other collection)."""
    mod = type(value).__module__
    name = type(value).__name__
    if mod.startswith("dask.dataframe") or mod.startswith("dask_expr"):
        if name == "DataFrame":
            return "dataframe"
        if name == "Series":
            return "series"
    if mod.startswith("dask.array") and name == "Array":
        return "array"
    if mod.startswith("dask.bag") and name == "Bag":
        return "bag"
    return "delayed"


def dataset_path(path: str, ext: str, kind: str) -> str:
    """Where a collection goes instead of the file ``path``: a folder named for its format."""
    if ext and path.endswith(ext):
        path = path[: -len(ext)]
    return path + _SUFFIX[kind]


def candidates(path: str, ext: str) -> list[str]:
    """Every folder a collection written instead of ``path`` may be in."""
    return sorted({dataset_path(path, ext, k) for k in _SUFFIX})


def complete(store: ResultStore, path: str) -> bool:
    """True when a whole dataset is at ``path`` (its completion marker is there)."""
    return store.exists(f"{path}/{MARKER}")


def find(store: ResultStore, path: str) -> dict[str, Any] | None:
    """The marker of the complete dataset at ``path``, or None."""
    if not complete(store, path):
        return None
    doc = store.load(f"{path}/{MARKER}", "json")
    return doc if isinstance(doc, dict) and doc.get("kind") in _SUFFIX else None


def write(store: ResultStore, path: str, value: Any, compute: Compute) -> str:
    """Write collection ``value`` at ``path`` from the workers; marker last; return its URL.

    ``compute`` runs the write tasks (on the cluster the task runs on).
    """
    kind = kind_of(value)
    _clear(store, path)
    url, opts = store.location(path), dict(store.storage_options)
    doc: dict[str, Any] = {"kind": kind, "npartitions": _npartitions(value)}
    try:
        if kind in ("dataframe", "series"):
            frame = value
            if kind == "series":
                doc["name"] = value.name
                frame = value.to_frame(name=_SERIES_COLUMN)
            doc["divisions"] = bool(frame.known_divisions)
            compute(frame.to_parquet(url, storage_options=opts, write_index=True,
                                     write_metadata_file=False, compute=False))
            if frame.known_divisions:  # index values of any type: framed like any pickle
                store.write(f"{path}/{_DIVISIONS}", tuple(frame.divisions), "pickle")
        elif kind == "array":
            doc["chunks"] = [list(c) for c in value.chunks]
            if store.is_local:
                opts.setdefault("auto_mkdir", True)  # zarr writes chunks in sub-folders
            compute(_regular(value).to_zarr(url, storage_options=opts, overwrite=True,
                                            compute=False))
        else:
            from dask import delayed

            parts = value.to_delayed() if kind == "bag" else [value]
            doc["parts"] = [f"part-{i:05d}.pkl" for i in range(len(parts))]
            compute(*[delayed(_write_part, pure=False)(store, f"{path}/{name}", part)
                      for name, part in zip(doc["parts"], parts)])
    except ImportError as e:
        raise SerializationError(
            f"writing a Dask {kind} to {url} needs {e.name or 'a package'}: "
            f"pip install 'taskflow[arrays]' (zarr) or pyarrow", kind=kind,
        ) from None
    store.write(f"{path}/{MARKER}", doc, "json")
    return url


def load(store: ResultStore, path: str) -> Any:
    """The dataset at ``path`` as a lazy collection; ResultError when it is not complete."""
    doc = find(store, path)
    if doc is None:
        raise ResultError(
            f"no complete dataset at {store.location(path)} (its {MARKER} marker is missing: "
            "the write did not finish)", location=store.location(path),
        )
    url, opts, kind = store.location(path), dict(store.storage_options), doc["kind"]
    if kind in ("dataframe", "series"):
        import dask
        import dask.dataframe as dd

        # Reading the footers here, in this thread: on a worker, Dask would send that
        # work to the cluster from inside a task, where it can wait for a free thread
        with dask.config.set(scheduler="sync"):
            frame = dd.read_parquet(url, storage_options=opts, calculate_divisions=False)
        if doc["divisions"]:
            # one partition per file, with the divisions as they were (Parquet's own
            # statistics would leave out empty partitions)
            divisions = store.load(f"{path}/{_DIVISIONS}", "pickle")
            files = [f"{url}/part.{i}.parquet" for i in range(doc["npartitions"])]
            frame = dd.from_map(_read_parquet_file, files, storage_options=opts,
                                meta=frame._meta, divisions=divisions, label="read-parquet",
                                enforce_metadata=False)
        if kind == "dataframe":
            return frame
        return frame[_SERIES_COLUMN].rename(doc.get("name"))
    if kind == "array":
        import dask.array as da

        arr = da.from_zarr(url, storage_options=opts)
        chunks = tuple(tuple(c) for c in doc["chunks"])
        return arr if arr.chunks == chunks else arr.rechunk(chunks)
    from dask import delayed

    parts = [delayed(_read_part, pure=True)(store, f"{path}/{name}") for name in doc["parts"]]
    if kind == "bag":
        import dask.bag as db

        return db.from_delayed(parts)
    return parts[0]


def _clear(store: ResultStore, path: str) -> None:
    """Remove what an earlier writer left at ``path``: its marker first, then the rest.

    One listing when there is nothing (a new checkpoint's folder): on S3,
    removing the marker and the folder blindly cost ten requests.
    """
    if store.files_under(path) or (store.is_local and os.path.isdir(store.path(path))):
        store.delete(f"{path}/{MARKER}")  # no reader may trust what follows until it is whole
        store.delete(path)


def _npartitions(value: Any) -> int:
    n = getattr(value, "npartitions", None)
    if n is None:
        blocks = getattr(value, "numblocks", None)
        n = 1 if blocks is None else int(_product(blocks))
    return int(n)


def _product(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _regular(arr: Any) -> Any:
    """``arr`` with chunks Zarr accepts: all equal along each axis but the last."""
    ok = all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in arr.chunks)
    return arr if ok else arr.rechunk(arr.chunksize)


def _read_parquet_file(url: str, storage_options: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.read_parquet(url, storage_options=storage_options or None)


def _write_part(store: ResultStore, relpath: str, value: Any) -> str:
    return store.write(relpath, value, "pickle")


def _read_part(store: ResultStore, relpath: str) -> Any:
    return store.load(relpath, "pickle")
