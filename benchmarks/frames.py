"""The DataFrame pipeline of :mod:`benchmarks.collections`, as tasks and as plain Dask.

A synthetic dataset, made partition by partition on the workers (nothing comes
from the client): ``key`` (int64), ``group`` (int64, 1,000 groups), ``x`` and
``y`` (float64), 32 bytes a row.  Each partition made appends a line to a
counter file, so the benchmark can tell how many times the source was computed.

The pipeline: load -> clean (``x > 0``, a derived column) -> two aggregations
by group (mean of ``x``; count and sum of ``y``) -> a join of their outputs
(1,000 rows: the only thing that reaches the client).

Module-level functions, so worker processes import them by reference.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from taskflow import flow, get_dask_client, task

GROUPS = 1000
ROW_BYTES = 32


def meta() -> pd.DataFrame:
    return pd.DataFrame({"key": np.array([], "int64"), "group": np.array([], "int64"),
                         "x": np.array([], "float64"), "y": np.array([], "float64")})


def make_part(i: int, rows: int, counter: str) -> pd.DataFrame:
    """Partition ``i``: ``rows`` rows, reproducible, counted in ``counter``."""
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x\n")
    finally:
        os.close(fd)
    rng = np.random.default_rng(i)
    return pd.DataFrame({
        "key": np.arange(i * rows, (i + 1) * rows, dtype="int64"),
        "group": rng.integers(0, GROUPS, rows),
        "x": rng.standard_normal(rows),
        "y": rng.random(rows),
    })


def count_parts(counter: str) -> int:
    if not os.path.exists(counter):
        return 0
    with open(counter, "rb") as f:
        return f.read().count(b"\n")


# -- the pipeline's steps, shared by both ways ------------------------------------
def load_frame(parts: int, rows: int, counter: str) -> Any:
    import dask.dataframe as dd

    return dd.from_map(make_part, range(parts), rows=rows, counter=counter, meta=meta(),
                       enforce_metadata=False, label="make-part")


def clean_frame(df: Any) -> Any:
    df = df[df.x > 0]
    return df.assign(z=df.x * df.y)


def mean_x(df: Any) -> Any:
    return df.groupby("group").x.mean().to_frame("mean_x")


def y_stats(df: Any) -> Any:
    return df.groupby("group").y.agg(["count", "sum"])


def join_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return a.join(b, how="inner")


# -- as taskflow tasks -----------------------------------------------------------
@task(persist=False)  # fused into the cleaning step, as the plain pipeline does
def load(parts: int, rows: int, counter: str) -> Any:
    return load_frame(parts, rows, counter)


@task
def clean(df: Any) -> Any:
    return clean_frame(df)  # persisted on the cluster: computed once for both aggregations


@task
def by_group_mean(df: Any) -> pd.DataFrame:
    return get_dask_client().compute(mean_x(df)).result()


@task
def by_group_y(df: Any) -> pd.DataFrame:
    return get_dask_client().compute(y_stats(df)).result()


@task
def join(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return join_frames(a, b)


@flow
def pipeline(parts: int, rows: int, counter: str) -> Any:
    df = clean(load(parts, rows, counter))
    return join(by_group_mean(df), by_group_y(df))


checkpointed_clean = clean.with_options(name="clean", checkpoint=True)


@flow
def pipeline_checkpointed(parts: int, rows: int, counter: str) -> Any:
    df = checkpointed_clean(load(parts, rows, counter))
    return join(by_group_mean(df), by_group_y(df))


# -- plain Dask, one persist -----------------------------------------------------
def plain(client: Any, parts: int, rows: int, counter: str,
          to_parquet: tuple[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """The same pipeline in plain dask.dataframe: one ``persist``, two aggregations."""
    from distributed import wait

    df = client.persist(clean_frame(load_frame(parts, rows, counter)))
    wait(df)
    if to_parquet is not None:
        url, options = to_parquet
        df.to_parquet(url, storage_options=options, write_index=True,
                      write_metadata_file=False)
    a, b = client.compute([mean_x(df), y_stats(df)])
    out = join_frames(a.result(), b.result())
    del df, a, b
    return out
