"""Flows on a real Dask cluster: `dask scheduler` and `dask worker` subprocesses.

The cluster is what an operator starts by hand: a scheduler on 127.0.0.1 with a
scheduler file, and two workers (one with ``--resources GPU=1``) that import the
test tasks through ``PYTHONPATH``.  taskflow connects by address only.
"""
from __future__ import annotations

import logging

import pytest
from distributed import Client

from taskflow.executors import DaskExecutor
from tests import dask_flows as df
from tests import flows
from tests.dask_processes import START_TIMEOUT, DaskProcesses


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory):
    """``(address, {"gpu": worker address, "cpu": worker address})`` of a running cluster."""
    cluster = DaskProcesses(tmp_path_factory.mktemp("real-cluster"))
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "1", "--name", "gpu", "--resources", "GPU=1")
        cluster.worker(address, "--nthreads", "1", "--name", "cpu")
        with Client(address, timeout=START_TIMEOUT) as client:
            cluster.wait_for_workers(client, 2)
            workers = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        yield address, workers
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def real_executor(real_cluster):
    ex = DaskExecutor(address=real_cluster[0])
    yield ex
    ex.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_flow_runs_on_a_cluster_started_with_the_dask_command_line(
    real_cluster, real_executor, caplog
):
    caplog.set_level(logging.INFO, logger="taskflow.task_runs")
    run = flows.etl.run(executor=real_executor, n=100)

    assert run.state.is_successful(), run.state
    assert run.result() == 4950
    assert real_executor.address == real_cluster[0]
    # the record was made in a worker process and emitted in this one
    records = [
        r for r in caplog.records
        if r.name == "taskflow.task_runs" and getattr(r, "task_run_name", "") == "total"
    ]
    assert records, [r.getMessage() for r in caplog.records]
    assert records[0].getMessage() == "summing 100 numbers"
    assert records[0].flow_run_id == run.run_id
    assert records[0].worker in real_cluster[1].values()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_task_asking_for_a_gpu_runs_on_the_worker_that_has_one(real_cluster, real_executor):
    run = df.gpu_flow.run(executor=real_executor)

    assert run.state.is_successful(), run.state
    assert run.result() == [real_cluster[1]["gpu"]] * 3


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_task_module_the_workers_cannot_import_is_a_clear_error_not_a_hang(
    real_cluster, real_executor, tmp_path, monkeypatch
):
    import time

    from taskflow import TaskflowError, flow

    (tmp_path / "only_here.py").write_text(
        "from taskflow import task\n\n@task\ndef local_only(x):\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the client sees it; the workers do not
    import only_here  # noqa: E402

    @flow
    def uses_it():
        return only_here.local_only(1)

    start = time.monotonic()
    with pytest.raises(TaskflowError, match=r"cannot import module 'only_here'.*local_only"):
        uses_it.run(executor=real_executor)
    assert time.monotonic() - start < 20


@pytest.mark.timeout(120)
def test_a_wide_fan_in_s_parts_wait_for_a_scheduler_in_another_process(
    real_cluster, real_executor, monkeypatch
):
    """Each part waits for the one before to be on the scheduler: asked by a message
    there (in its own process) as on the embedded cluster's scheduler in this one."""
    from taskflow.executors import dask_groups
    from taskflow.executors.dask_graph import taken_in
    from tests import wide_flows as wf

    monkeypatch.setattr(dask_groups, "PART_SIZE", 7)
    values, (parts, widest) = wf.doubled_seen.run(n=50, executor=real_executor).result()
    assert values == [2 * i for i in range(50)] and parts == 8 and widest <= 8
    with Client(real_cluster[0], timeout=START_TIMEOUT) as client:
        future = client.submit(sum, [1, 2], key="taken-in-test")
        assert taken_in(client, future.key) is True
        assert taken_in(client, "never-sent", timeout=0.2) is False
