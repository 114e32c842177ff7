"""Flows on a real Dask cluster: `dask scheduler` and `dask worker` subprocesses.

The cluster is what an operator starts by hand: a scheduler on 127.0.0.1 with a
scheduler file, and two workers (one with ``--resources GPU=1``) that import the
test tasks through ``PYTHONPATH``.  taskflow connects by address only.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from distributed import Client

from taskflow.executors import DaskExecutor
from tests import dask_flows as df
from tests import flows
from tests.conftest import ROOT

START_TIMEOUT = 60


def _spawn(args: list[str], log_path: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [ROOT, env.get("PYTHONPATH", "")] if p)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,  # its own process group: the nanny's worker goes with it
        )


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=timeout)


def _read_logs(paths: list[str]) -> str:
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                out.append(f"--- {os.path.basename(p)}\n{f.read()[-3000:]}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory):
    """``(address, {"gpu": worker address, "cpu": worker address})`` of a running cluster."""
    d = tmp_path_factory.mktemp("real-cluster")
    sched_file = str(d / "scheduler.json")
    logs = [str(d / n) for n in ("scheduler.log", "worker-gpu.log", "worker-cpu.log")]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_spawn(
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", sched_file],
            logs[0],
        ))
        deadline = time.monotonic() + START_TIMEOUT
        address = None
        while address is None:
            if procs[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dask scheduler did not start\n{_read_logs(logs)}")
            try:
                with open(sched_file) as f:
                    address = json.load(f)["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.02)
        common = ["worker", "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
        procs.append(_spawn([*common, "--name", "gpu", "--resources", "GPU=1", address], logs[1]))
        procs.append(_spawn([*common, "--name", "cpu", address], logs[2]))
        with Client(address, timeout=START_TIMEOUT) as client:
            try:
                client.wait_for_workers(2, timeout=START_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"dask workers did not join\n{_read_logs(logs)}")
            workers = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        yield address, workers
    finally:
        for p in reversed(procs):  # workers first, then the scheduler
            _stop(p)


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
