"""Flows whose tasks return Dask collections (importable, so worker processes load them).

Sources count how many times each of their partitions is computed: every
partition appends a line to ``<counts>/source`` (across processes).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from taskflow import flow, get_dask_client, task
from tests.flows import bump

PARTS = 4


def _counted(part: pd.DataFrame, counts: str) -> pd.DataFrame:
    bump(os.path.join(counts, "source"))
    return part


def _counted_block(block: np.ndarray, counts: str) -> np.ndarray:
    bump(os.path.join(counts, "source"))
    return block


def frame(n: int, counts: str):
    import dask.dataframe as dd

    pdf = pd.DataFrame({"x": np.arange(n) - n // 4, "y": np.arange(n) % 7},
                       index=pd.Index(np.arange(n), name="i"))
    df = dd.from_pandas(pdf, npartitions=PARTS)
    return df.map_partitions(_counted, counts, meta=df._meta)


@task
def source(n: int, counts: str):
    return frame(n, counts)


@task(checkpoint=True)
def source_saved(n: int, counts: str):
    return frame(n, counts)


@task(persist=False)
def lazy_source(n: int, counts: str):
    return frame(n, counts)


@task
def positive(df):
    return df[df.x > 0]


@task(checkpoint=True)
def positive_saved(df):
    return df[df.x > 0]


@task
def total(df) -> int:
    return int(get_dask_client().compute(df.x.sum()).result())


@task
def rows(df) -> int:
    return int(get_dask_client().compute(df.x.count()).result())


@task
def divisions(df) -> tuple:
    return (df.npartitions, tuple(df.divisions))


@task
def holds_futures(df) -> bool:
    """True when the collection's graph points at computed partitions (futures)."""
    from distributed import Future

    return any(isinstance(v, Future) or isinstance(getattr(v, "value", None), Future)
               for v in dict(df.__dask_graph__()).values())


@flow
def handed_over(n: int = 1000, counts: str = ""):
    return holds_futures(source(n, counts)), holds_futures(lazy_source(n, counts))


@flow
def shared(n: int = 1000, counts: str = ""):
    df = positive(source(n, counts))
    return total(df), rows(df)


@flow
def shared_lazy(n: int = 1000, counts: str = ""):
    df = lazy_source(n, counts)
    return total(df), rows(df)


@flow
def checkpointed(n: int = 1000, counts: str = ""):
    df = positive_saved(source_saved(n, counts))
    return total(df), rows(df), divisions(df)


@flow
def returns_frame(n: int = 1000, counts: str = ""):
    return positive(source(n, counts))


@task(cache_key_fn=lambda ctx, inputs: f"frame-{inputs['n']}")
def cached_source(n: int, counts: str):
    return frame(n, counts)


@flow
def cached(n: int = 1000, counts: str = ""):
    return total(cached_source(n, counts))


# -- a target: "skip if that dataset is complete" -------------------------------------
@task(target="{flow_name}/{day}/events")
def events(n: int, counts: str, day: str):
    return frame(n, counts)


@flow
def daily(n: int = 1000, counts: str = "", day: str = "2026-12-01"):
    return total(events(n, counts, day))


# -- arrays, bags, delayed ------------------------------------------------------------
def array(n: int, counts: str):
    import dask.array as da

    x = da.arange(n, chunks=n // PARTS, dtype="float64")
    return x.map_blocks(_counted_block, counts, dtype=x.dtype, meta=np.empty((0,), x.dtype))


@task(checkpoint=True)
def saved_array(n: int, counts: str):
    return array(n, counts)


@task
def array_total(x) -> float:
    return float(get_dask_client().compute(x.sum()).result())


@task
def array_chunks(x) -> tuple:
    return x.chunks


@flow
def arrays(n: int = 1000, counts: str = ""):
    x = saved_array(n, counts)
    return array_total(x), array_chunks(x)


@task(checkpoint=True)
def saved_bag(n: int):
    import dask.bag as db

    return db.from_sequence(range(n), npartitions=PARTS).map(lambda v: v * 2)


@task
def bag_total(b) -> int:
    return int(get_dask_client().compute(b.sum()).result())


@flow
def bags(n: int = 100):
    return bag_total(saved_bag(n))


@task
def failing_frame(n: int):
    import dask.dataframe as dd

    df = dd.from_pandas(pd.DataFrame({"x": range(n)}), npartitions=2)
    return df.map_partitions(_explode, meta=df._meta)


def _explode(part: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("bad partition")


@flow
def failing(n: int = 10):
    return total(failing_frame(n))


def count_source(counts: str) -> int:
    from tests.flows import count

    return count(os.path.join(counts, "source"))


# -- a hold released before the run ends ------------------------------------------------
@task
def still_held(task_run_name: str, after: int) -> bool:
    """Whether the scheduler still holds ``task_run_name``'s partitions (waits up to 20 s)."""
    import time

    from taskflow.context import current
    from taskflow.executors.dask_holds import hold_name

    name = hold_name(current().run_id, task_run_name)
    client = get_dask_client()
    deadline = time.monotonic() + 20
    while name in client.list_datasets() and time.monotonic() < deadline:
        time.sleep(0.05)
    return name in client.list_datasets()


@flow
def released_early(n: int = 1000, counts: str = ""):
    t = total(positive(source(n, counts)))
    return t, still_held("source", t)
