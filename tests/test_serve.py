"""Serving flows on schedules: a real `taskflow serve` process, and the Server in-process.

The subprocess tests drive the command as an operator does: it serves two flows
on a second-level schedule, on the session's processes cluster (by address),
recording into a history file of their own; the test reads that history to
see what ran, asks for an ad hoc run with `taskflow run NAME`, and stops the
server with SIGTERM.  Waiting is always for a condition, with a deadline.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import dask
import pytest

from taskflow import Deployment, IntervalSchedule, StateType, TaskflowError
from taskflow.deploy.serve import Server
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.history import open_history, serving
from tests import serve_flows as sf
from tests.conftest import ROOT
from tests.flows import count
from tests.polling import wait_for


def _until(condition: Callable[[], bool], timeout: float, what: str, log: str = "") -> None:
    def tail() -> str:
        return open(log).read()[-4000:] if log and os.path.exists(log) else ""

    wait_for(condition, timeout, what, detail=tail)


def _runs(url: str, flow: str) -> list:
    with open_history(url) as h:
        return h.runs(flow=flow, limit=None)


def _taskflow(*args: str, url: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "DASK_TASKFLOW__HISTORY__URL": url, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-m", "taskflow.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)


@pytest.fixture
def history_url(tmp_path):
    return f"sqlite:///{tmp_path / 'serve.db'}"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_serve_process_runs_flows_on_schedule_survives_failures_takes_ad_hoc_runs_and_stops_on_sigterm(
    process_client, history_url, tmp_path
):
    counter = str(tmp_path / "ticks")
    log = str(tmp_path / "serve.log")
    with open(log, "w") as stderr:
        # each flow on its own schedule: tick every 1s, broken on a cron of seconds
        server = _taskflow("serve", "tests/serve_flows.py:tick", "tests/serve_flows.py:broken",
                           "--address", process_client.scheduler.address,
                           url=history_url, stderr=stderr)
    try:
        # the flows' parameters are per flow, so tick's path comes with the ad hoc run below
        _until(lambda: len(_runs(history_url, "broken")) >= 3 and
               len(_runs(history_url, "tick")) >= 3, 60, "three scheduled runs of each flow", log)
        assert all(r.state == "FAILED" for r in _runs(history_url, "broken")
                   if r.state not in ("RUNNING", "PENDING"))
        assert server.poll() is None  # failing runs did not stop it

        asked = _taskflow("run", "tick", "-p", f"path={counter}", "-p", "note=adhoc",
                          url=history_url)
        out, err = asked.communicate(timeout=60)
        assert asked.returncode == 0, err
        assert "state: SUCCESS" in out
        assert count(counter) == 1  # the ad hoc run ran with its parameters

        refused = _taskflow("run", "tick", "-p", "nope=1", url=history_url)
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == 2
        assert "refused" in err and "nope" in err

        unknown = _taskflow("run", "tock", url=history_url)
        out, err = unknown.communicate(timeout=60)
        assert unknown.returncode == 2
        assert "no flow named 'tock' is served (served flows: broken, tick)" in err
    finally:
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    err = open(log).read()
    assert server.returncode == 0, err
    assert time.monotonic() - stopping < 10
    assert "stopped serving 'tick', 'broken'" in err
    with open_history(history_url) as h:
        assert not [r for r in h.runs(limit=None) if r.state in ("RUNNING", "PENDING")]
        assert all(f.heartbeat is None for f in serving.served_flows(h))
        assert {f.name: f.schedule for f in serving.served_flows(h)} == {
            "tick": "every 1s", "broken": "cron '* * * * * *' (UTC)"}


@pytest.mark.slow
def test_the_serve_command_refuses_bad_schedules_and_options_before_serving(history_url):
    cases = [
        (["--cron", "61 * * * *"], "61 * * * *"),
        (["--cron", "* * * * *", "--every", "1m"], "--cron or --every"),
        (["--every", "soon"], "soon"),
        (["--cron", "0 * * * *", "--timezone", "Mars/Olympus"], "Mars/Olympus"),
        (["--timezone", "UTC"], "--timezone goes with --cron"),
        (["--every", "1s", "-p", "nope=1"], "nope"),
        (["--every", "1s", "--cluster-kwargs", "{}"], "go with --cluster-class"),
    ]
    for extra, words in cases:
        p = _taskflow("serve", "tests/serve_flows.py:tick", *extra, url=history_url)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2, (extra, err)
        assert words in err, (extra, err)
        assert "Traceback" not in err


# -- the Server in this process ----------------------------------------------------------
class _Serving:
    """A Server serving in a thread (signals stay with pytest's main thread)."""

    def __init__(self, *deployments: Deployment, executor, **kw) -> None:
        self.server = Server(deployments, executor, poll_interval="100ms", **kw)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_due_run_is_skipped_while_the_previous_run_still_goes(process_executor, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="taskflow.serve")
    d = sf.slow.to_deployment(IntervalSchedule("1s"), parameters={"seconds": 2.5})
    with _Serving(d, executor=process_executor) as server:
        _until(lambda: len(server.started_runs) >= 2, 30, "two runs")
    runs = {r.id: r for r in _runs(dask.config.get("taskflow.history.url"), "slow")}
    mine = sorted((runs[i] for i in server.started_runs), key=lambda r: r.started_at)
    assert all(r.state == "SUCCESS" for r in mine)
    for first, second in zip(mine, mine[1:]):
        assert second.started_at >= first.ended_at  # never two at once
    assert "still goes" in caplog.text


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_overlap_starts_due_runs_while_the_previous_one_goes(process_executor):
    d = sf.slow.to_deployment(IntervalSchedule("1s"), parameters={"seconds": 2.5}, overlap=True)
    with _Serving(d, executor=process_executor) as server:
        _until(lambda: len(server.started_runs) >= 2, 30, "two runs")
        first = server.started_runs[0]
        # the second started while the first still went: its thread is alive
        assert first in server.served["slow"].running


def _missed(history_url: str, seconds_ago: float) -> None:
    with open_history(history_url) as h:
        serving.register(h, [{"name": "tick"}])
        serving.set_last_due(h, "tick", time.time() - seconds_ago)
        serving.unregister(h, ["tick"])  # that server is gone


@pytest.mark.timeout(60)
def test_runs_missed_while_not_served_are_skipped_by_default(history_url, caplog):
    caplog.set_level(logging.WARNING, logger="taskflow.serve")
    _missed(history_url, 3600 * 5 + 30)
    d = sf.tick.to_deployment(IntervalSchedule("1h"))
    with dask.config.set({"taskflow.history.url": history_url}):
        with _Serving(d, executor=LocalExecutor()) as server:
            _until(lambda: server.served["tick"].next_due is not None, 10, "the server to start")
            started = list(server.started_runs)
    assert started == []
    assert "skipped 5 run(s) due while not served" in caplog.text


@pytest.mark.timeout(60)
def test_catch_up_runs_the_missed_runs_one_after_another(history_url, tmp_path):
    counter = str(tmp_path / "ticks")
    _missed(history_url, 3600 * 3 + 30)
    d = sf.tick.to_deployment(IntervalSchedule("1h"), parameters={"path": counter}, catch_up=True)
    with dask.config.set({"taskflow.history.url": history_url}):
        with _Serving(d, executor=LocalExecutor()) as server:
            _until(lambda: count(counter) >= 3, 30, "three catch-up runs")
            _until(lambda: not server.served["tick"].running, 30, "the last catch-up run to end")
            assert len(server.started_runs) == 3
        with open_history(history_url) as h:
            last_due = {f.name: f.last_due for f in serving.served_flows(h)}["tick"]
    assert time.time() - last_due < 3600  # the last missed due time was recorded


def _stop_while_napping(executor, tmp_path, seconds: float, on_stop: str) -> tuple[str, float]:
    """Serve `slow` (due once, now), stop while its nap runs: ``(run id, seconds to stop)``."""
    due_now = datetime.now(timezone.utc) - timedelta(hours=1) + timedelta(seconds=0.3)
    d = sf.slow.to_deployment(IntervalSchedule("1h", start=due_now),
                              parameters={"seconds": seconds, "path": str(tmp_path / "after")})
    url = dask.config.get("taskflow.history.url")
    with _Serving(d, executor=executor, on_stop=on_stop) as server:
        _until(lambda: server.started_runs and _task_state(url, server.started_runs[0], "nap")
               == "RUNNING", 30, "the nap task to run")
        stopping = time.monotonic()
    return server.started_runs[0], time.monotonic() - stopping


def _task_state(url: str, run_id: str, task: str) -> str | None:
    with open_history(url) as h:
        return h.task_states(run_id).get(task)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_stopping_with_cancel_ends_the_running_run_cancelled(process_executor, tmp_path):
    run_id, took = _stop_while_napping(process_executor, tmp_path, 3.0, "cancel")
    assert took < 3.0  # did not wait for the nap
    with open_history(dask.config.get("taskflow.history.url")) as h:
        run = h.get_run(run_id)
        states = h.task_states(run_id)
    assert run.state == StateType.CANCELLED.value
    assert "serve process stopped" in run.message
    assert states["mark"] == StateType.CANCELLED.value
    assert count(str(tmp_path / "after")) == 0  # what came after the cancel never ran


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_stopping_with_wait_lets_the_running_run_finish(process_executor, tmp_path):
    run_id, _ = _stop_while_napping(process_executor, tmp_path, 1.5, "wait")
    with open_history(dask.config.get("taskflow.history.url")) as h:
        assert h.get_run(run_id).state == "SUCCESS"
    assert count(str(tmp_path / "after")) == 1


def test_a_deployment_refuses_unknown_parameters_and_duplicate_names():
    with pytest.raises(TaskflowError, match="nope"):
        sf.tick.to_deployment(IntervalSchedule("1s"), parameters={"nope": 1})
    d = sf.tick.to_deployment()
    assert d.schedule == IntervalSchedule("1s")  # the flow's own schedule
    with pytest.raises(TaskflowError, match="same name"):
        Server([d, sf.tick.to_deployment()], LocalExecutor())
    with pytest.raises(TaskflowError, match="on_stop"):
        Server([d], LocalExecutor(), on_stop="later")


def test_a_flow_served_by_another_live_process_is_refused(history_url):
    with open_history(history_url) as h:
        with h._writes.begin() as conn:
            conn.execute(serving.schema.served_flows.insert().values(
                name="tick", target="", schedule="", parameters="{}", host="elsewhere",
                pid=1, started_at=time.time(), heartbeat=time.time()))
    with dask.config.set({"taskflow.history.url": history_url}):
        server = Server([sf.tick.to_deployment()], LocalExecutor())
        with pytest.raises(TaskflowError, match="already served by pid 1 on elsewhere"):
            server.serve()


@pytest.mark.timeout(60)
def test_cancel_stops_a_local_run_between_tasks(tmp_path):
    ex = LocalExecutor()
    counter = str(tmp_path / "after")
    from taskflow.engine.observers import RunObserver, add_observer, remove_observer

    class CancelWhenNapStarts(RunObserver):
        def event(self, *, event, **kwargs):
            if event.get("name") == "nap" and event.get("type") == "RUNNING":
                ex.cancel(event["run"], "enough")

    watcher = add_observer(CancelWhenNapStarts())
    try:
        run = sf.slow.run(executor=ex, seconds=0.2, path=counter)
    finally:
        remove_observer(watcher)
    assert run.state.type is StateType.CANCELLED and run.state.message == "enough"
    assert run.task_states["nap"].type is StateType.SUCCESS  # it was running: it finished
    assert run.task_states["mark"].type is StateType.CANCELLED
    assert count(counter) == 0
    assert ex.cancel(run.run_id) is False  # over: nothing to cancel


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_run_command_starts_a_cluster_class_with_kwargs_and_adapt(tmp_path):
    from click.testing import CliRunner

    from taskflow.cli import cli

    result = CliRunner().invoke(cli, [
        "run", "tests/flows.py:etl", "-p", "n=5", "--cluster-class", "distributed.LocalCluster",
        "--cluster-kwargs", '{"n_workers": 0, "processes": false, "dashboard_address": ":0"}',
        "--adapt", '{"minimum": 0, "maximum": 1}',
    ])
    assert result.exit_code == 0, result.output
    assert "result: 10" in result.output
    bad = CliRunner().invoke(cli, ["run", "tests/flows.py:etl", "--cluster-class",
                                   "distributed.LocalCluster", "--cluster-kwargs", "[1]"])
    assert bad.exit_code == 2 and "--cluster-kwargs must be a JSON object" in bad.output
    broken = CliRunner().invoke(cli, ["run", "tests/flows.py:etl", "--cluster-class",
                                      "distributed.LocalCluster", "--adapt", '{"maximum": 4'])
    assert broken.exit_code == 2
    assert """--adapt must be JSON, e.g. --adapt '{"minimum": 0, "maximum": 10}'""" in broken.output


def test_a_dask_executor_that_is_not_running_the_run_cannot_cancel_it():
    assert DaskExecutor(address="tcp://127.0.0.1:1").cancel("nope") is False
