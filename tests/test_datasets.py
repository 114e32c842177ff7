"""Datasets in a result store, written and read directly (no flow): leftovers, requests."""
from __future__ import annotations

import os

import dask.dataframe as dd
import pandas as pd
import pytest

from taskflow.engine.collections import LocalCollections
from taskflow.results import ResultStore, datasets
from tests.s3_fixtures import moto_endpoint_fixture, s3_fixture  # noqa: F401


def _frame(n: int = 40, parts: int = 4):
    return dd.from_pandas(pd.DataFrame({"x": range(n)}), npartitions=parts)


def _store(kind: str, tmp_path, s3) -> ResultStore:
    if kind == "local":
        return ResultStore(f"file://{tmp_path}/store")
    return ResultStore(f"s3://{s3['bucket']}/store", storage_options=s3["options"])


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    return _store(request.param, tmp_path, s3)


def test_what_a_dead_writer_left_is_removed_before_the_dataset_is_written(store):
    # a run killed mid-write: parts of another shape, no marker
    store.write("run/clean.parquet/part.7.parquet", b"stale", "pickle")
    store.write("run/clean.parquet/other/part.0.parquet", b"stale", "pickle")
    assert not datasets.complete(store, "run/clean.parquet")
    datasets.write(store, "run/clean.parquet", _frame(), LocalCollections().compute)
    names = sorted(os.path.basename(p) for p in store.fs.find(store.path("run/clean.parquet")))
    assert names == [datasets.MARKER, "_divisions", "part.0.parquet", "part.1.parquet",
                     "part.2.parquet", "part.3.parquet"]
    back = datasets.load(store, "run/clean.parquet")
    assert int(back.x.sum().compute()) == sum(range(40)) and back.npartitions == 4


def test_a_complete_dataset_written_again_is_replaced_marker_last(store):
    datasets.write(store, "t/events.parquet", _frame(40, 4), LocalCollections().compute)
    datasets.write(store, "t/events.parquet", _frame(10, 2), LocalCollections().compute)
    back = datasets.load(store, "t/events.parquet")
    assert back.npartitions == 2 and int(back.x.sum().compute()) == sum(range(10))
    assert datasets.find(store, "t/events.parquet")["npartitions"] == 2


def test_a_new_dataset_on_s3_costs_one_listing_and_no_delete_beyond_its_writes(s3, tmp_path):
    store = _store("s3", tmp_path, s3)
    calls: list[str] = []
    store.fs.connect()  # the client whose requests are counted (workers: one per process)
    store.fs.s3.meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    datasets.write(store, "run/new.parquet", _frame(), LocalCollections().compute)
    assert calls.count("ListObjectsV2") == 1, calls
    assert not [c for c in calls if c.startswith("Delete")], calls
    assert datasets.complete(store, "run/new.parquet")
