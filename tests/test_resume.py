"""Resuming runs (in this process and in a new one) and crashes during a write."""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import sys

import dask
import psutil
import pytest

from taskflow import Flow, ParameterError, StateType
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.results import ResultError, ResultStore, RunNotFoundError
from taskflow.results.local import TMP as _TMP
from tests import result_flows as rf
from tests.conftest import ROOT
from tests.flows import count
from tests.polling import wait_for
from tests.s3_fixtures import moto_endpoint_fixture, s3_fixture  # noqa: F401


def ran(counts: str, name: str) -> int:
    return count(os.path.join(counts, name))


def fail_late(counts: str, tmp_path, executor):
    """A pipeline run that fails in its last task (while the flag file exists)."""
    flag = tmp_path / "flag"
    flag.write_text("fail")
    run = rf.pipeline.run(n=4, counts=counts, flag=str(flag), executor=executor)
    assert run.task_states["late"].type is StateType.FAILED
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 1]
    flag.unlink()
    return run


def test_resuming_a_failed_run_caches_what_it_persisted_and_runs_the_rest(
    executor2, store_url, tmp_path, counts
):
    first = fail_late(counts, tmp_path, executor2)
    resumed = rf.pipeline.run(resume=first.run_id, executor=executor2)
    assert resumed.result() == 14
    assert resumed.parameters == first.parameters
    states = resumed.task_states
    assert states["load"].type is StateType.CACHED and states["square"].type is StateType.CACHED
    assert f"resumed from run {first.run_id}" in states["square"].message
    assert states["square"].result_location == first.task_states["square"].result_location
    assert states["late"].type is StateType.SUCCESS
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 2]


def test_a_resumed_run_can_itself_be_resumed(store_url, tmp_path, counts):
    first = fail_late(counts, tmp_path, LocalExecutor())
    second = rf.pipeline.run(resume=first.run_id, executor=LocalExecutor())
    third = rf.pipeline.run(resume=second.run_id, executor=LocalExecutor())
    assert third.result() == 14
    assert third.task_states["load"].type is StateType.CACHED
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 3]


def test_tasks_whose_results_are_gone_run_again_when_resuming(store_url, tmp_path, counts):
    first = fail_late(counts, tmp_path, LocalExecutor())
    ResultStore(store_url).delete(f"pipeline/{first.run_id}/square.pkl")
    resumed = rf.pipeline.run(resume=first.run_id, executor=LocalExecutor())
    assert resumed.result() == 14
    assert resumed.task_states["load"].type is StateType.CACHED
    assert resumed.task_states["square"].type is StateType.SUCCESS
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 2, 2]


def test_resuming_an_unknown_run_is_a_clear_error(store_url):
    with pytest.raises(RunNotFoundError, match=f"no run 0123abcd in result store {store_url}"):
        rf.pipeline.run(resume="0123abcd", executor=LocalExecutor())


def test_resuming_without_a_store_is_a_clear_error():
    with pytest.raises(ResultError, match="cannot resume run abc of flow 'pipeline': the flow has "
                                          "no result store"):
        rf.pipeline.run(resume="abc", executor=LocalExecutor())


def test_a_run_persisted_on_s3_is_resumed_from_there(s3, tmp_path, counts):
    store = ResultStore(f"s3://{s3['bucket']}/runs", storage_options=s3["options"])
    flow_ = Flow("pipeline", rf.pipeline.fn, result_store=store)
    flag = tmp_path / "flag"
    flag.write_text("fail")
    first = flow_.run(n=4, counts=counts, flag=str(flag), executor=LocalExecutor())
    assert first.task_states["late"].type is StateType.FAILED
    flag.unlink()
    resumed = flow_.run(resume=first.run_id, executor=LocalExecutor())
    assert resumed.result() == 14
    assert resumed.task_states["square"].type is StateType.CACHED
    assert resumed.task_states["square"].result_location.startswith(f"s3://{s3['bucket']}/runs/")
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 2]


def test_resuming_a_run_whose_store_is_gone_names_the_store(s3, counts):
    store = ResultStore(f"s3://{s3['bucket']}/runs", storage_options=s3["options"])
    flow_ = Flow("pipeline", rf.pipeline.fn, result_store=store)
    first = flow_.run(n=2, counts=counts, executor=LocalExecutor())
    assert first.result() == 1
    s3["fs"].rm(s3["bucket"], recursive=True)
    with pytest.raises(ResultError, match=f"s3://{s3['bucket']}/runs: bucket '{s3['bucket']}' "
                                          "does not exist"):
        flow_.run(resume=first.run_id, executor=LocalExecutor())


def test_resuming_a_run_of_another_flow_or_with_parameters_is_refused(store_url, tmp_path, counts):
    first = fail_late(counts, tmp_path, LocalExecutor())
    with pytest.raises(RunNotFoundError, match="is a run of flow 'pipeline', not of 'targeted'"):
        rf.targeted.run(resume=first.run_id, executor=LocalExecutor())
    with pytest.raises(ParameterError, match=r"re-runs with the parameters of that run, and "
                                             r"these differ: n=3 \(the run had 4\)\. Leave them out"):
        rf.pipeline.run(resume=first.run_id, n=3, counts=counts, executor=LocalExecutor())


def test_resume_accepts_the_resumed_runs_own_parameters(store_url, tmp_path, counts):
    first = fail_late(counts, tmp_path, LocalExecutor())
    resumed = rf.pipeline.run(n="4", counts=counts, resume=first.run_id, executor=LocalExecutor())
    assert resumed.result() == 14
    assert resumed.parameters == first.parameters
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 2]


_RESUME = """
import json, sys
from taskflow.executors import LocalExecutor
from tests import result_flows as rf
run = rf.pipeline.run(resume=sys.argv[1], executor=LocalExecutor())
print(json.dumps({"result": run.result(), "states": {n: s.type.value for n, s in run.task_states.items()}}))
"""


@pytest.mark.slow
def test_a_new_python_process_resumes_a_failed_run_and_only_the_failed_part_runs(
    executor2, store_url, tmp_path, counts
):
    import json

    first = fail_late(counts, tmp_path, executor2)
    env = {**os.environ, "DASK_TASKFLOW__RESULTS__STORE": store_url, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", _RESUME, first.run_id], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["result"] == 14
    assert out["states"] == {"load": "CACHED", "square": "CACHED", "late": "SUCCESS"}
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 2]


# -- a worker killed while it writes a large checkpoint ------------------------------------
_wait_for = wait_for  # poll a condition with a deadline (tests/polling.py)


def _half_written(folder) -> str | None:
    if not os.path.isdir(folder):
        return None
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(f".blob.pkl{_TMP}"):
            try:
                if os.path.getsize(path) > 2**20:
                    return path
            except OSError:
                pass
    return None


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_killed_while_writing_a_large_checkpoint_leaves_nothing_a_later_run_reads(
    tmp_path, counts, own_cluster
):
    size = 256 * 2**20
    url = f"file://{tmp_path}/store"
    folder = tmp_path / "store" / "big"
    expected = (size, hashlib.sha256(b"0123456789abcdef" * (size // 16)).hexdigest())
    config = {"taskflow.results.store": url, "distributed.scheduler.allowed-failures": 0}
    with dask.config.set(config), own_cluster(n_workers=1) as client, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        executor = DaskExecutor(client=client)
        (worker_pid,) = client.run(os.getpid).values()
        pending = pool.submit(rf.big.run, size=size, counts=counts, executor=executor)
        partial = _wait_for(lambda: _half_written(folder), 60, "the checkpoint write to start")
        psutil.Process(worker_pid).kill()
        crashed = pending.result(timeout=120)

        assert crashed.task_states["blob"].type is StateType.CRASHED
        assert not (folder / "blob.pkl").exists()  # no result under the final name
        assert os.path.exists(partial)  # only the hidden temporary file, half written
        client.wait_for_workers(1, timeout=60)

        again = rf.big.run(size=size, counts=counts, executor=executor)
        assert again.task_states["blob"].type is StateType.SUCCESS
        assert tuple(again.result()) == expected
        assert not os.path.exists(partial)  # the next write there removed it
        assert sorted(os.listdir(folder)) == ["blob.pkl"]

        cached = rf.big.run(size=size, counts=counts, executor=executor)
        assert cached.task_states["blob"].type is StateType.CACHED
        assert tuple(cached.result()) == expected
        assert ran(counts, "blob") == 2

        # what a non-atomic writer would have left: refused, never loaded, computed again
        data = (folder / "blob.pkl").read_bytes()
        (folder / "blob.pkl").write_bytes(data[: len(data) // 3])
        del data
        torn = rf.big.run(size=size, counts=counts, executor=executor)
        assert torn.task_states["blob"].type is StateType.SUCCESS
        assert torn.task_states["digest"].type is StateType.SUCCESS
        assert tuple(torn.result()) == expected
        assert ran(counts, "blob") == 3


def test_the_run_command_resumes_a_failed_run(store_url, tmp_path, counts):
    from click.testing import CliRunner

    from taskflow.cli import cli

    first = fail_late(counts, tmp_path, LocalExecutor())
    target = "tests/result_flows.py:pipeline"
    result = CliRunner().invoke(cli, ["run", target, "--local", "--resume", first.run_id[:8]])
    assert result.exit_code == 0, result.output
    assert "result: 14" in result.output
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 1, 2]

    same = CliRunner().invoke(cli, ["run", target, "--local", "--resume", first.run_id, "-p", "n=4"])
    assert same.exit_code == 0, same.output
    other = CliRunner().invoke(cli, ["run", target, "--resume", first.run_id, "-p", "n=1",
                                     "-p", "flag=x"])
    assert other.exit_code == 2, other.output
    assert "these differ: n=1 (the run had 4); flag='x' (the run had " in other.output
