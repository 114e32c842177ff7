"""Checkpoints, targets and caches in real flow runs.

Each test runs on LocalExecutor and on a processes LocalCluster (``executor2``),
with a store on local disk (``tmp_path``) or on S3 (moto).  Tasks count their
executions in files, so counts hold across worker processes.
"""
from __future__ import annotations

import os

import dask
import pytest

from taskflow import Flow, StateType
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.results import ResultStore, ResultStoreError
from tests import result_flows as rf
from tests.flows import count
from tests.s3_fixtures import doomed_s3_fixture, moto_endpoint_fixture, s3_fixture  # noqa: F401


def files_under(root) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.relpath(os.path.join(dirpath, n), root) for n in names)
    return sorted(out)


def ran(counts: str, name: str) -> int:
    return count(os.path.join(counts, name))


# -- nothing unless asked ----------------------------------------------------------------
def test_a_run_that_asks_for_nothing_writes_nothing_to_its_store(executor2, store_url, tmp_path, counts):
    run = rf.plain.run(n=4, counts=counts, executor=executor2)
    assert run.result() == 6
    assert not os.path.exists(tmp_path / "store")
    assert all(s.result_location is None for s in run.task_states.values())


def test_a_checkpointed_task_is_written_by_its_worker_and_its_state_says_where(
    executor2, store_url, tmp_path, counts
):
    run = rf.pipeline.run(n=4, counts=counts, executor=executor2)
    assert run.result() == 14
    states = run.task_states
    load_at = f"{store_url}/pipeline/{run.run_id}/load.pkl"
    assert states["load"].result_location == load_at
    assert states["square"].result_location == f"{store_url}/pipeline/{run.run_id}/square.pkl"
    assert states["late"].result_location is None  # not asked
    store = ResultStore(store_url)
    assert store.load(f"pipeline/{run.run_id}/square.pkl") == [0, 1, 4, 9]
    assert files_under(tmp_path / "store") == sorted([
        f"pipeline/{run.run_id}/load.pkl",
        f"pipeline/{run.run_id}/square.pkl",
        f"_runs/{run.run_id}/manifest",
        f"_runs/{run.run_id}/results/load.json",
        f"_runs/{run.run_id}/results/square.json",
    ])


def test_checkpoint_true_on_a_flow_persists_every_task_run_including_mapped_children(
    executor2, store_url, tmp_path, counts
):
    run = rf.all_checkpointed.run(n=3, counts=counts, executor=executor2)
    assert run.result() == 6
    written = {n: s.result_location for n, s in run.task_states.items() if s.result_location}
    assert set(written) == {"numbers", "inc[0]", "inc[1]", "inc[2]", "plain_total"}
    assert written["inc[2]"].endswith(f"/all_checkpointed/{run.run_id}/inc/2.pkl")


def test_the_checkpoint_config_persists_every_task_of_every_flow(executor2, store_url, counts):
    with dask.config.set({"taskflow.results.checkpoint": True}):
        run = rf.plain.run(n=3, counts=counts, executor=executor2)
    assert {n for n, s in run.task_states.items() if s.result_location} == {"numbers", "plain_total"}


# -- targets ------------------------------------------------------------------------------
def test_a_task_whose_target_exists_is_cached_without_running_and_downstream_gets_its_value(
    executor2, store_url, tmp_path, counts
):
    first = rf.targeted.run(n=4, counts=counts, executor=executor2)
    assert first.result() == "total=6"
    assert first.task_states["target_total"].type is StateType.SUCCESS
    assert (tmp_path / "store" / "targeted" / "4" / "total.json").is_file()

    again = rf.targeted.run(n=4, counts=counts, executor=executor2)
    assert again.result() == "total=6"
    state = again.task_states["target_total"]
    assert state.type is StateType.CACHED and state.attempts == 0
    assert state.result_location == f"{store_url}/targeted/4/total.json"
    assert "target exists" in state.message
    assert ran(counts, "target_total") == 1 and ran(counts, "describe") == 2

    other = rf.targeted.run(n=5, counts=counts, executor=executor2)  # another target path
    assert other.result() == "total=10" and ran(counts, "target_total") == 2


def test_mapped_children_each_have_their_own_target(executor2, store_url, tmp_path, counts):
    assert rf.mapped_targets.run(n=3, counts=counts, executor=executor2).result() == 30
    assert files_under(tmp_path / "store" / "mapped_targets") == [
        "parts/3/0.json", "parts/3/1.json", "parts/3/2.json"]
    again = rf.mapped_targets.run(n=3, counts=counts, executor=executor2)
    assert again.result() == 30
    assert [again.task_states[f"part[{i}]"].type for i in range(3)] == [StateType.CACHED] * 3
    assert ran(counts, "part") == 3


def test_a_cached_value_is_loaded_only_on_the_worker_of_the_task_that_needs_it(
    executor2, store_url, counts
):
    rf.lazy.run(n=5, counts=counts, executor=executor2)
    assert not [f for f in os.listdir(counts) if f.startswith("loaded-")]  # it ran: nothing read

    run = rf.lazy.run(n=5, counts=counts, executor=executor2)
    total, consumer_pid = run.result()
    assert total == 10 and run.task_states["produce"].type is StateType.CACHED
    loads = sorted(f for f in os.listdir(counts) if f.startswith("loaded-"))
    assert loads == [f"loaded-{consumer_pid}"] and ran(counts, loads[0]) == 1
    if isinstance(executor2, DaskExecutor):
        assert consumer_pid != os.getpid()  # on the worker, not through the client


def test_a_cached_value_nobody_runs_with_is_never_loaded(executor2, store_url, counts):
    rf.lazy_unneeded.run(n=5, counts=counts, executor=executor2)
    run = rf.lazy_unneeded.run(n=5, counts=counts, executor=executor2)
    assert run.task_states["produce"].type is StateType.CACHED
    assert run.task_states["never"].type is StateType.TRIGGER_FAILED
    assert not [f for f in os.listdir(counts) if f.startswith("loaded-")]


# -- caches -------------------------------------------------------------------------------
def test_a_cache_hit_within_its_window_skips_the_run_and_an_expired_one_runs_again(
    executor2, store_url, counts
):
    first = rf.caching.run(x=2, counts=counts, executor=executor2)
    assert first.result() == (4, 6)
    second = rf.caching.run(x=2, counts=counts, executor=executor2)
    assert second.result() == (4, 6)
    assert second.task_states["cached_double"].type is StateType.CACHED
    assert "cache hit" in second.task_states["cached_double"].message
    assert second.task_states["short_lived"].type is StateType.SUCCESS  # its window passed
    assert ran(counts, "cached_double") == 1 and ran(counts, "short_lived") == 2

    other = rf.caching.run(x=3, counts=counts, executor=executor2)  # other inputs: a miss
    assert other.result() == (6, 9) and ran(counts, "cached_double") == 2


# -- serializers and bad values -------------------------------------------------------------
def test_a_value_the_serializer_cannot_write_fails_that_task_naming_task_serializer_and_type(
    executor2, store_url, counts
):
    run = rf.unserializable.run(counts=counts, executor=executor2)
    bad = run.task_states["bad_json"]
    assert bad.type is StateType.FAILED and bad.attempts == 1
    assert "task 'bad_json' returned a tests.result_flows.Unjsonable that serializer 'json' " \
           "cannot write" in bad.message
    assert run.task_states["independent"].type is StateType.SUCCESS
    assert ran(counts, "bad_json") == 1


def test_numpy_and_pandas_outputs_checkpoint_with_their_own_formats(executor2, store_url):
    run = rf.formats.run(n=5, executor=executor2)
    assert run.result() == (10.0, 5)
    assert run.task_states["array"].result_location.endswith("/array.npy")
    assert run.task_states["frame"].result_location.endswith("/frame.parquet")


def test_a_returned_cached_value_is_loaded_for_the_caller(executor2, tmp_path, counts):
    from taskflow import flow

    @flow(result_store=f"file://{tmp_path}/own")
    def just_total(n: int = 4, counts: str = ""):
        return rf.target_total(rf.numbers(n, counts), counts)

    assert just_total.run(n=4, counts=counts, executor=executor2).result() == 6
    again = just_total.run(n=4, counts=counts, executor=executor2)
    assert again.task_states["target_total"].type is StateType.CACHED
    assert again.result() == 6


# -- S3 ------------------------------------------------------------------------------------
def test_targets_are_written_to_and_found_on_s3(executor2, s3, counts):
    url = f"s3://{s3['bucket']}/runs"
    store = ResultStore(url, storage_options=s3["options"])
    with dask.config.set({"taskflow.results.store": None}):
        flow_ = Flow("targeted", rf.targeted.fn, result_store=store)
        first = flow_.run(n=4, counts=counts, executor=executor2)
        again = flow_.run(n=4, counts=counts, executor=executor2)
    assert first.result() == again.result() == "total=6"
    assert again.task_states["target_total"].type is StateType.CACHED
    assert again.task_states["target_total"].result_location == f"{url}/targeted/4/total.json"
    assert s3["fs"].exists(f"{s3['bucket']}/runs/targeted/4/total.json")
    assert ran(counts, "target_total") == 1


def test_a_missing_bucket_stops_the_run_before_any_task_runs(executor2, s3, counts):
    store = ResultStore("s3://no-such-bucket/runs", storage_options=s3["options"])
    flow_ = Flow("pipeline", rf.pipeline.fn, result_store=store)
    with pytest.raises(ResultStoreError, match="s3://no-such-bucket/runs: bucket 'no-such-bucket' "
                                               "does not exist"):
        flow_.run(n=4, counts=counts, executor=executor2)
    assert os.listdir(counts) == []


def test_refused_credentials_stop_the_run_before_any_task_runs(s3, counts, monkeypatch):
    import moto.settings

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys now
    store = ResultStore(f"s3://{s3['bucket']}/runs",
                        storage_options={**s3["options"], "skip_instance_cache": True})
    flow_ = Flow("pipeline", rf.pipeline.fn, result_store=store)
    with pytest.raises(ResultStoreError, match=f"s3://{s3['bucket']}/runs: access refused"):
        flow_.run(n=4, counts=counts, executor=LocalExecutor())
    assert os.listdir(counts) == []


@pytest.mark.slow
def test_an_s3_endpoint_going_away_mid_run_fails_the_affected_tasks_after_their_retries(
    executor2, doomed_s3, counts
):
    endpoint = doomed_s3["endpoint"]
    options = {"client_kwargs": {"endpoint_url": endpoint},
               "config_kwargs": {"connect_timeout": 2, "read_timeout": 5,
                                 "retries": {"max_attempts": 1}}}
    store = ResultStore(f"s3://{doomed_s3['bucket']}/runs", storage_options=options)
    flow_ = Flow("outage", rf.outage.fn, result_store=store)
    port = int(endpoint.rsplit(":", 1)[1])
    run = flow_.run(pid=doomed_s3["pid"], port=port, counts=counts, executor=executor2)
    states = run.task_states
    assert states["before_outage"].type is StateType.SUCCESS
    assert states["before_outage"].result_location
    after = states["after_outage"]
    assert after.type is StateType.FAILED and after.attempts == 2  # retries=1
    assert "Could not connect to the endpoint URL" in after.message
    assert ran(counts, "after_outage") == 2
    assert states["downstream_of_outage"].type is StateType.TRIGGER_FAILED
    assert run.state.type is StateType.FAILED
