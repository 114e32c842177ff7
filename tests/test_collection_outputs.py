"""Dask collections returned by tasks: persisted once, shared, released, written as datasets."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import dask
import pytest
from distributed import Client, LocalCluster

from taskflow import Flow
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.results import ResultStore
from taskflow.results.datasets import MARKER
from taskflow.states import StateType
from tests import collection_flows as cf
from tests.polling import wait_for
from tests.s3_fixtures import moto_endpoint_fixture, s3_fixture  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 1000
EXPECTED = (sum(range(1, N - N // 4)), N - N // 4 - 1)  # x = i - 250 > 0


@pytest.fixture(scope="module")
def cluster_client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


@pytest.fixture
def ex(cluster_client):
    _wait_until_empty(cluster_client)
    return DaskExecutor(client=cluster_client)


def _holds(client) -> list:
    return [d for d in client.list_datasets() if str(d).startswith("taskflow-hold-")]


def _who_wants(client) -> dict:
    return client.run_on_scheduler(lambda dask_scheduler: {
        str(k): (ts.state, sorted(map(str, ts.who_wants or ())), len(ts.dependents))
        for k, ts in dask_scheduler.tasks.items() if ts.who_wants or ts.state != "memory"})


def _scheduler_keys(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def _wait_until_empty(client, timeout: float = 20.0) -> int:
    """0 once the scheduler holds no key (fails the test, saying who holds them, if never)."""
    wait_for(lambda: _scheduler_keys(client) == 0, timeout, "the cluster to hold no key",
             interval=0.05, detail=lambda: repr(_who_wants(client))[:2000])
    return 0


# -- computed once, shared, released ----------------------------------------------------
def test_a_returned_dataframe_is_computed_once_for_all_its_consumers(ex, counts):
    run = cf.shared.run(n=N, counts=counts, executor=ex)
    assert run.result() == EXPECTED
    assert cf.count_source(counts) == cf.PARTS  # once per partition, not once per consumer


def test_persisted_partitions_are_released_once_the_run_is_over(ex, cluster_client, counts):
    assert _scheduler_keys(cluster_client) == 0
    cf.shared.run(n=N, counts=counts, executor=ex).result()
    assert _wait_until_empty(cluster_client) == 0
    assert not _holds(cluster_client)


def test_persisted_partitions_are_released_when_their_last_consumer_is_done(ex, cluster_client,
                                                                            counts):
    run = cf.released_early.run(n=N, counts=counts, executor=ex)
    # the last task saw the source's hold gone while the run was still going
    assert run.result() == (EXPECTED[0], False)


def test_downstream_tasks_get_the_persisted_collection_unless_persist_is_false(ex, counts):
    persisted, lazy = cf.handed_over.run(n=N, counts=counts, executor=ex).result()
    assert persisted is True and lazy is False


def test_a_failing_partition_fails_the_task_that_returned_the_collection(ex):
    run = cf.failing.run(executor=ex)
    state = run.task_states["failing_frame"]
    assert state.type is StateType.FAILED and "bad partition" in state.message
    assert run.task_states["total"].type is StateType.TRIGGER_FAILED


def test_a_returned_collection_reaches_the_caller_and_keeps_its_partitions(ex, cluster_client,
                                                                           counts):
    df = cf.returns_frame.run(n=N, counts=counts, executor=ex).result()
    wait_for(lambda: not _holds(cluster_client), 10, "the run's holds to be released")
    total = int(cluster_client.compute(df.x.sum()).result())
    assert total == EXPECTED[0]
    assert cf.count_source(counts) == cf.PARTS
    del df
    gc.collect()  # the finished FlowRun object is in reference cycles
    assert _wait_until_empty(cluster_client) == 0


def test_a_collection_under_the_local_executor_is_computed_once(cluster_client, counts):
    # the consumers compute through get_dask_client(): the default client, here
    run = cf.shared.run(n=N, counts=counts, executor=LocalExecutor())
    assert run.result() == EXPECTED
    assert cf.count_source(counts) == cf.PARTS


@pytest.mark.slow
def test_no_annotation_warning_and_the_partitions_run_in_the_flow_runs_span():
    code = """
import json, warnings
warnings.simplefilter("always")
from distributed import Client, LocalCluster
from taskflow.executors import DaskExecutor
from tests import collection_flows as cf
import tempfile
if __name__ == "__main__":
    with warnings.catch_warnings(record=True) as seen:
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
            run = cf.shared.run(n=1000, counts=tempfile.mkdtemp(), executor=DaskExecutor(client=c))
            run.result()
            spans = c.run_on_scheduler(lambda dask_scheduler: {
                "/".join(s.name): sorted(g.name for g in s.groups)
                for s in dask_scheduler.extensions["spans"].spans.values()})
    print(json.dumps({"warnings": [str(w.message) for w in seen if "annotations" in str(w.message)],
                      "run": run.run_id, "spans": spans}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, check=True).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["warnings"] == []
    groups = [g for name, gs in doc["spans"].items() if doc["run"] in name for g in gs]
    assert any(g.startswith("_counted") for g in groups), doc["spans"]


# -- checkpoints: datasets written by the workers ----------------------------------------
def _dataset_of(run, task: str) -> str:
    location = run.task_states[task].result_location
    assert location is not None
    return location.removeprefix("file://")


def test_a_checkpointed_dataframe_is_a_parquet_dataset_with_its_marker(ex, counts, store_url):
    run = cf.checkpointed.run(n=N, counts=counts, executor=ex)
    total, rows, (nparts, divisions) = run.result()
    assert (total, rows) == EXPECTED
    folder = _dataset_of(run, "positive_saved")
    assert folder.endswith("positive_saved.parquet")
    files = sorted(os.listdir(folder))
    assert MARKER in files and len([f for f in files if f.endswith(".parquet")]) == cf.PARTS
    assert not [f for f in files if f.endswith(".pkl")]
    back = dask.dataframe.read_parquet(folder)
    assert int(back.x.sum().compute()) == EXPECTED[0]
    assert cf.count_source(counts) == cf.PARTS  # written from the persisted partitions


def test_a_resumed_run_reads_the_dataset_lazily_with_its_divisions(ex, counts, store_url):
    first = cf.checkpointed.run(n=N, counts=counts, executor=ex)
    again = cf.checkpointed.run(resume=first.run_id, executor=ex)
    assert again.task_states["positive_saved"].type is StateType.CACHED
    assert again.result() == first.result()  # same sums, same divisions
    assert first.result()[2][1][0] is not None  # divisions were known
    assert cf.count_source(counts) == cf.PARTS  # the source was not computed again


def test_a_dataset_without_its_marker_is_computed_again(ex, counts, store_url):
    first = cf.checkpointed.run(n=N, counts=counts, executor=ex)
    folder = _dataset_of(first, "positive_saved")
    os.remove(os.path.join(folder, MARKER))  # as if the writer died before the end
    again = cf.checkpointed.run(resume=first.run_id, executor=ex)
    assert again.task_states["positive_saved"].type is StateType.SUCCESS  # ran again
    assert again.task_states["source_saved"].type is StateType.CACHED  # read from its dataset
    assert again.result() == first.result()
    assert cf.count_source(counts) == cf.PARTS
    assert os.path.exists(os.path.join(_dataset_of(again, "positive_saved"), MARKER))


def test_a_target_dataset_skips_the_task_when_it_is_complete(ex, counts, store_url):
    first = cf.daily.run(n=N, counts=counts, day="2026-12-01", executor=ex)
    again = cf.daily.run(n=N, counts=counts, day="2026-12-01", executor=ex)
    assert first.result() == again.result() == sum(range(N)) - N * (N // 4)
    assert again.task_states["events"].type is StateType.CACHED
    folder = _dataset_of(again, "events")
    assert folder.endswith("daily/2026-12-01/events")
    assert cf.count_source(counts) == cf.PARTS
    os.remove(os.path.join(folder, MARKER))
    third = cf.daily.run(n=N, counts=counts, day="2026-12-01", executor=ex)
    assert third.task_states["events"].type is StateType.SUCCESS
    assert cf.count_source(counts) == 2 * cf.PARTS


def test_a_cached_collection_is_found_as_a_dataset_under_its_key(ex, counts, store_url):
    first = cf.cached.run(n=N, counts=counts, executor=ex)
    again = cf.cached.run(n=N, counts=counts, executor=ex)
    assert again.task_states["cached_source"].type is StateType.CACHED
    assert _dataset_of(again, "cached_source").endswith("_cache/cached_source/frame-1000.parquet")
    assert first.result() == again.result()
    assert cf.count_source(counts) == cf.PARTS


def test_a_checkpointed_array_is_zarr_and_comes_back_with_its_chunks(ex, counts, store_url):
    first = cf.arrays.run(n=N, counts=counts, executor=ex)
    total, chunks = first.result()
    assert total == float(sum(range(N))) and chunks == ((N // cf.PARTS,) * cf.PARTS,)
    folder = _dataset_of(first, "saved_array")
    assert folder.endswith(".zarr") and os.path.exists(os.path.join(folder, MARKER))
    again = cf.arrays.run(resume=first.run_id, executor=ex)
    assert again.task_states["saved_array"].type is StateType.CACHED
    assert again.result() == (total, chunks)
    assert cf.count_source(counts) == cf.PARTS


def test_a_checkpointed_bag_is_one_file_per_partition(ex, store_url):
    first = cf.bags.run(n=100, executor=ex)
    folder = _dataset_of(first, "saved_bag")
    assert len([f for f in os.listdir(folder) if f.startswith("part-")]) == cf.PARTS
    again = cf.bags.run(resume=first.run_id, executor=ex)
    assert again.task_states["saved_bag"].type is StateType.CACHED
    assert again.result() == first.result() == 2 * sum(range(100))


def test_a_checkpointed_dataframe_goes_to_s3_as_parquet_parts(ex, s3, counts):
    url = f"s3://{s3['bucket']}/runs"
    store = ResultStore(url, storage_options=s3["options"])
    with dask.config.set({"taskflow.results.store": None}):
        flow_ = Flow("checkpointed", cf.checkpointed.fn, result_store=store)
        first = flow_.run(n=N, counts=counts, executor=ex)
        folder = first.task_states["positive_saved"].result_location
        assert folder == f"{url}/checkpointed/{first.run_id}/positive_saved.parquet"
        names = [p.rsplit("/", 1)[1] for p in s3["fs"].ls(folder.removeprefix("s3://"))]
        assert MARKER in names and len([n for n in names if n.endswith(".parquet")]) == cf.PARTS
        again = flow_.run(resume=first.run_id, executor=ex)
    assert again.task_states["positive_saved"].type is StateType.CACHED
    assert again.result() == first.result()
    assert cf.count_source(counts) == cf.PARTS
