"""Faults a careful user meets: a lost scheduler, a task no worker can run, clean exits.

Each scenario runs against real processes: ``dask scheduler`` and ``dask worker``
subprocesses (killed on purpose), LocalClusters of processes.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import dask
import pytest
from distributed import Client, LocalCluster

from taskflow import LocalStoreWarning, ResourcesUnavailableError, StateType
from taskflow.engine.observers import RunObserver, add_observer, remove_observer
from taskflow.executors import DaskExecutor
from taskflow.history import open_history
from tests import fault_flows as ff
from tests.conftest import CLUSTER_KW, ROOT
from tests.dask_processes import START_TIMEOUT, DaskProcesses
from tests.flows import count

THREADS = {**CLUSTER_KW, "host": None}


def start_cluster(directory, workers: int = 1) -> tuple[DaskProcesses, str]:
    directory.mkdir()
    cluster = DaskProcesses(directory)
    address = cluster.scheduler("--port", "0")
    for _ in range(workers):
        cluster.worker(address, "--nthreads", "1")
    with Client(address, timeout=START_TIMEOUT) as client:
        cluster.wait_for_workers(client, workers)
    return cluster, address


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_run_whose_scheduler_dies_ends_crashed_and_resumes_on_a_new_cluster(
    tmp_path, store_url, counts, _history_in_a_temp_dir
):
    cluster, address = start_cluster(tmp_path / "first")
    scheduler = cluster.procs[0]

    class KillWhenHeldRuns(RunObserver):
        # `held` runs after `prepared` on the one worker: once its RUNNING event is
        # here, so is `prepared`'s end (events travel in order)
        def event(self, *, event, **kwargs):
            if event.get("name") == "held" and event.get("type") == "RUNNING":
                os.killpg(scheduler.pid, signal.SIGKILL)

    killer = add_observer(KillWhenHeldRuns())
    try:
        with DaskExecutor(address=address) as ex:
            run = ff.lost_midway.run(n=4, counts=counts, executor=ex)
    finally:
        remove_observer(killer)
        cluster.stop()

    assert run.state.type is StateType.CRASHED, run.state
    assert address in run.state.message
    states = run.task_states
    assert states["prepared"].type is StateType.SUCCESS
    assert states["held"].type is StateType.CRASHED
    assert address in states["held"].message
    assert states["reported"].type in (StateType.CRASHED, StateType.TRIGGER_FAILED)
    with open_history(_history_in_a_temp_dir) as history:
        record = history.get_run(run.run_id)
        assert record.state == "CRASHED"
        assert history.task_states(run.run_id) == {n: s.type.value for n, s in states.items()}

    open(os.path.join(counts, "release"), "w").close()
    cluster, address = start_cluster(tmp_path / "second")
    try:
        with DaskExecutor(address=address) as ex:
            resumed = ff.lost_midway.run(resume=run.run_id, executor=ex)
    finally:
        cluster.stop()
    assert resumed.result() == "total 6"
    assert resumed.task_states["prepared"].type is StateType.CACHED
    assert count(os.path.join(counts, "prepared")) == 1


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("order", ["cluster-first", "executor-first", "cluster-only"])
def test_closing_clusters_and_executors_in_any_order_prints_no_tracebacks(order):
    done = subprocess.run(
        [sys.executable, "-m", "tests.closing_orders", order], capture_output=True,
        text=True, timeout=90, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert "ERROR" not in done.stderr and "reconnect" not in done.stderr, done.stderr


def test_dask_executor_is_a_context_manager_that_closes_what_it_started():
    with DaskExecutor(cluster_kwargs=dict(n_workers=1, processes=False, **THREADS)) as ex:
        client = ex.client
        assert ex.address is not None
    assert client.status == "closed"
    assert ex._client is None


# -- tasks no worker can run ----------------------------------------------------------
def _tasks_seen(dask_scheduler) -> int:
    return len(dask_scheduler.task_prefixes)


@pytest.mark.timeout(60)
def test_a_task_asking_for_a_resource_no_worker_has_is_refused_before_anything_is_sent(own_cluster):
    address = own_cluster(n_workers=1).scheduler.address
    with DaskExecutor(address=address) as ex:
        start = time.monotonic()
        with pytest.raises(ResourcesUnavailableError) as info:
            ff.needs_gpu.run(executor=ex)
        assert time.monotonic() - start < 20
        msg = str(info.value)
        assert "task 'on_gpu' asks for resources {'GPU': 1}" in msg
        assert address in msg
        assert "workers offer: 1 with no resources" in msg
        assert '--resources "GPU=1"' in msg
        assert info.value.task == "on_gpu" and info.value.resources == {"GPU": 1}
        assert ex.client.run_on_scheduler(_tasks_seen) == 0  # nothing was sent


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_on_an_adaptive_cluster_a_task_waits_for_its_resource_at_most_the_set_time():
    kwargs = dict(n_workers=0, threads_per_worker=1, processes=False, **THREADS)
    with dask.config.set({"taskflow.executor.resource-timeout": "1s"}), \
            DaskExecutor(cluster_class=LocalCluster, cluster_kwargs=kwargs,
                         adapt_kwargs={"minimum": 1, "maximum": 1}) as ex:
        ex.client.wait_for_workers(1, timeout=30)
        start = time.monotonic()
        run = ff.needs_gpu.run(executor=ex)
        waited = time.monotonic() - start
    assert run.state.is_failed(), run.state
    state = run.task_states["on_gpu"]
    assert state.is_failed()
    assert "no worker offering the resources it asks for ({'GPU': 1}) joined within 1 s" \
        in state.message, state.message
    assert "resource-timeout" in state.message
    assert 1 <= waited < 30


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_client_closed_during_a_run_ends_it_crashed_without_hiding_why(store_url, counts, own_cluster):
    with own_cluster(n_workers=1) as client:

        class CloseWhenHeldRuns(RunObserver):
            def event(self, *, event, **kwargs):
                if event.get("name") == "held" and event.get("type") == "RUNNING":
                    threading.Thread(target=client.close, daemon=True).start()

        closer = add_observer(CloseWhenHeldRuns())
        try:
            run = ff.lost_midway.run(n=2, counts=counts, executor=DaskExecutor(client=client))
        finally:
            remove_observer(closer)
    assert run.state.type is StateType.CRASHED, run.state
    assert "the Dask client connected to" in run.state.message
    assert "was closed during the run" in run.state.message
    assert run.task_states["held"].type is StateType.CRASHED


# -- a file:// store with workers on other hosts ---------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a worker under another host name needs root and unshare")
def test_a_local_store_with_workers_on_other_hosts_warns_once_naming_the_fix(
    tmp_path, store_url, counts
):
    (tmp_path / "cluster").mkdir()
    cluster = DaskProcesses(tmp_path / "cluster")
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "1", "--name", "here")
        cluster.worker(address, "--nthreads", "1", "--name", "there", hostname="elsewhere")
        with DaskExecutor(address=address) as ex:
            cluster.wait_for_workers(ex.client, 2)
            there = next(a for a, w in ex.client.scheduler_info()["workers"].items()
                         if w["name"] == "there")
            with pytest.warns(LocalStoreWarning) as seen:
                run = ff.trusted_target.run(n=4, counts=counts, executor=ex)
            msg = str(seen[0].message)
            assert f"result store {store_url} is a local path" in msg
            assert f"{there} on 'elsewhere'" in msg and "1 Dask worker(s)" in msg
            assert "shared filesystem" in msg and "s3://" in msg
            with warnings.catch_warnings():
                warnings.simplefilter("error", LocalStoreWarning)  # once is enough
                ff.trusted_target.run(n=4, counts=counts, executor=ex)
    finally:
        cluster.stop()
    assert run.state.is_successful(), run.state


def test_a_local_store_with_workers_on_this_host_gives_no_warning(
    process_executor, store_url, counts
):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LocalStoreWarning)
        run = ff.trusted_target.run(n=4, counts=counts, executor=process_executor)
    assert run.state.is_successful(), run.state
