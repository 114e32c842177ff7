"""State hooks on tasks and flows, on every executor.

Hooks record their calls in files (tests/hook_flows.py), because task hooks run
on worker processes.  Each test reads only the records of its own flow run.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

import dask
import pytest

from taskflow import FlowDefinitionError, IntervalSchedule, StateType, UnpicklableTaskError, task
from taskflow.deploy.serve import Server
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.history import open_history, serving
from taskflow.hooks import FlowRunInfo, TaskRunInfo, call_hooks
from taskflow.secrets import MASK
from taskflow.states import State
from tests import hook_flows as hf
from tests.dask_processes import DaskProcesses
from tests.flows import inc
from tests.polling import wait_for


def _by_label(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["label"], []).append(r)
    return out


@pytest.mark.timeout(120)
def test_each_state_calls_its_hooks_once_per_task_run_and_once_per_flow_run(executor):
    run = hf.hooked.run(executor=executor)
    assert run.state.type is StateType.FAILED
    seen = _by_label(hf.records(run.run_id))
    # flaky failed once and was retried, then failed for good; after could not run
    assert [(r["name"], r["state"], r["attempt"]) for r in seen["retry"]] == [("flaky", "RETRYING", 1)]
    failures = sorted((r["name"], r["state"]) for r in seen["task_failure"])
    assert failures == [("after", "TRIGGER_FAILED"), ("flaky", "FAILED")]
    assert "ValueError: flaky 1" in next(r["message"] for r in seen["task_failure"]
                                           if r["name"] == "flaky")
    # a mapped task's hooks run once per child, with the child's name
    assert sorted(r["name"] for r in seen["task_completion"]) == ["child[0]", "child[1]", "child[2]"]
    assert all(r["worker"] for r in seen["task_completion"])
    # the flow's on_failure once, with its parameters, secrets masked; no on_completion
    assert [r["state"] for r in seen["flow_failure"]] == ["FAILED"]
    assert seen["flow_failure"][0]["parameters"] == {"api_token": MASK}
    assert seen["flow_failure"][0]["pid"] == os.getpid()  # flow hooks run in this process
    assert "flow_completion" not in seen
    if isinstance(executor, DaskExecutor):  # task hooks ran on the workers
        worker_pids = set(executor.client.run(os.getpid).values())
        assert {r["pid"] for r in seen["task_completion"]} <= worker_pids


@pytest.mark.timeout(60)
def test_a_successful_flow_calls_on_completion_and_no_failure_hook(executor2):
    run = hf.hooked_ok.run(executor=executor2, xs=[1, 2, 3])
    assert run.state.is_successful()
    seen = _by_label(hf.records(run.run_id))
    assert sorted(seen) == ["flow_completion", "task_completion"]
    assert len(seen["task_completion"]) == 3
    assert seen["flow_completion"][0]["state"] == "SUCCESS"


@pytest.mark.timeout(120)
def test_a_hook_that_raises_or_hangs_leaves_the_states_as_without_hooks_and_is_logged(
    process_executor, caplog
):
    caplog.set_level(logging.WARNING, logger="taskflow")
    with dask.config.set({"taskflow.hooks.timeout": "300ms"}):
        for x in (1, -1):
            plain = hf.well_behaved.run(executor=process_executor, x=x)
            started = time.monotonic()
            hooked = hf.misbehaving.run(executor=process_executor, x=x)
            # each hook is bounded: two per task (raise, sleep 5 s) and the flow's
            assert time.monotonic() - started < 4
            assert hooked.state.type is plain.state.type
            assert hooked.task_states["watched"].type is plain.task_states["plain_watched"].type
            assert hooked.task_states["watched"].message == plain.task_states["plain_watched"].message
            assert hooked.task_states["inc"].type is StateType.SUCCESS
            option = "on_completion" if x > 0 else "on_failure"
            with open_history() as h:
                logged = "\n".join(r.message for r in h.logs(hooked.run_id))
            for words in (f"{option} hook tests.hook_flows.raising_hook of task run 'watched'",
                          "raised RuntimeError: this hook always fails",
                          f"{option} hook tests.hook_flows.sleeping_hook of task run 'watched'",
                          "did not finish within 0.3 s",
                          f"{option} hook tests.hook_flows.raising_hook of flow run "
                          f"{hooked.run_id[:8]}"):
                assert words in logged, (words, logged)
                assert words in caplog.text  # worker records reach this process's logging
    assert "Traceback" in caplog.text


def test_hooks_must_be_callables():
    with pytest.raises(FlowDefinitionError, match="on_failure takes a callable"):
        task(on_failure=["alert"])(lambda: 1)
    with pytest.raises(FlowDefinitionError, match="on_retry takes a callable"):
        inc.with_options(on_retry=3)
    with pytest.raises(FlowDefinitionError, match="on_crashed takes a callable"):
        hf.napping.with_options(on_crashed=[None])
    with pytest.raises(FlowDefinitionError, match="unknown option"):
        hf.napping.with_options(on_crash=[print])


@pytest.mark.timeout(60)
def test_an_unpicklable_task_hook_is_refused_before_anything_runs_naming_the_hook(process_executor):
    lock = threading.Lock()

    def locked_hook(obj, run, state):
        with lock:
            pass

    bad = inc.with_options(on_failure=[locked_hook])

    from taskflow import flow

    @flow
    def unpicklable_hook():
        return bad(1)

    with pytest.raises(UnpicklableTaskError, match="its on_failure hook .*locked_hook does not pickle"):
        unpicklable_hook.run(executor=process_executor)
    # LocalExecutor sends nothing anywhere: the hook is fine there
    assert unpicklable_hook.run(executor=LocalExecutor()).state.is_successful()


def test_with_options_adds_hooks_to_a_copy_that_runs_the_same_graph():
    extra = hf.Record("extra")
    copy = hf.hooked_ok.with_options(on_completion=[*hf.hooked_ok.on_completion, extra])
    assert copy.on_completion[-1] is extra and len(hf.hooked_ok.on_completion) == 1
    assert copy.graph is hf.hooked_ok.graph
    run = copy.run(executor=LocalExecutor(), xs=[1])
    assert [r["label"] for r in hf.records(run.run_id) if r["obj"] == "hooked_ok"] == [
        "flow_completion", "extra"]


def test_call_hooks_passes_infos_and_never_raises(caplog):
    got = []
    info = TaskRunInfo("etl", "r" * 32, "load[3]", "k", 3, 2, "tcp://w")
    call_hooks([lambda t, r, s: got.append((r.name, r.map_index, r.attempt, s.type)),
                hf.raising_hook], ("task", info, State(StateType.FAILED)), option="on_failure",
               what="task run 'load[3]'")
    assert got == [("load[3]", 3, 2, StateType.FAILED)]
    assert "on_failure hook tests.hook_flows.raising_hook of task run 'load[3]' raised" in caplog.text
    frozen = FlowRunInfo("etl", "r", {"n": 1})
    with pytest.raises(AttributeError):
        frozen.run_id = "other"  # type: ignore[misc]


# -- runs that end CRASHED or CANCELLED ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_on_crashed_runs_when_the_scheduler_process_is_killed_mid_run(tmp_path):
    cluster = DaskProcesses(tmp_path)
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "2")
        ex = DaskExecutor(address=address)
        cluster.wait_for_workers(ex.client, 1)
        result: dict = {}

        def run() -> None:
            try:
                result["run"] = hf.napping.run(executor=ex, seconds=30.0)
            except BaseException as e:  # noqa: BLE001 - the test looks at it
                result["error"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_for(lambda: _running(ex, "nap"), 60, "the nap task to run")
        scheduler = cluster.procs[0]
        os.kill(scheduler.pid, signal.SIGKILL)
        t.join(90)
        assert not t.is_alive()
        ids = [r.id for r in _history_runs("napping")]
        seen = hf.records(ids[0])
        assert [r["label"] for r in seen] == ["crashed"], (seen, result)
        assert seen[0]["state"] == "CRASHED"
        if "run" in result:
            assert result["run"].state.type is StateType.CRASHED
        ex.close()
    finally:
        cluster.stop()


def _running(ex: DaskExecutor, prefix: str) -> bool:
    try:
        processing = ex.client.processing()
    except Exception:
        return False
    return any(str(k).startswith(prefix) or prefix in str(k) for ks in processing.values() for k in ks)


def _history_runs(flow: str) -> list:
    with open_history() as h:
        return h.runs(flow=flow, limit=None)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_on_cancellation_runs_when_a_served_run_is_cancelled(process_executor):
    d = hf.napping.to_deployment(IntervalSchedule("1h"), parameters={"seconds": 20.0})
    server = Server([d], process_executor, on_stop="cancel", poll_interval="100ms")
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.served["napping"].next_due is not None, 30, "the server to start")
        with open_history() as h:  # an ad hoc run, as `taskflow run napping` asks for one
            serving.request_run(h, "napping", {})
        wait_for(lambda: server.started_runs, 30, "the ad hoc run to start")
        run_id = server.started_runs[0]
        wait_for(lambda: _running(process_executor, "nap"), 60, "the nap task to run")
    finally:
        server.stop()
        thread.join(60)
    assert not thread.is_alive()
    wait_for(lambda: hf.records(run_id), 30, "the hook")
    seen = hf.records(run_id)
    assert [(r["label"], r["state"]) for r in seen] == [("cancelled", "CANCELLED")]
    assert "serve process stopped" in seen[0]["message"]
