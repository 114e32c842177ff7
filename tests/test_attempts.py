"""Every failed attempt's reason is kept: in the history, in `taskflow show` and `taskflow logs`."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import dask
import pytest

from taskflow.history import open_history
from tests import read_flows
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = os.path.join(ROOT, "tests", "read_flows.py")


def taskflow_cli(*args, history):
    env = {**os.environ, "PYTHONPATH": ROOT, "DASK_TASKFLOW__HISTORY__URL": history}
    return subprocess.run([sys.executable, "-m", "taskflow.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with dask.config.set({"taskflow.history.url": url}):
        yield url


def test_each_retried_attempt_is_logged_and_shown_with_its_type_message_and_traceback(tmp_path):
    history = f"sqlite:///{tmp_path / 'history.db'}"
    run = taskflow_cli("run", f"{FLOWS}:retried", "-p", "times=2", "--local", history=history)
    assert run.returncode == 0, run.stderr
    for n in (1, 2):
        assert (f"WARNING flaky | attempt {n} of 3 failed: ConnectionError: service unavailable "
                f"on attempt {n}; retrying in 0.5 s") in run.stderr
    run_id = re.search(r"flow run ([0-9a-f]{32})", run.stderr).group(1)

    show = taskflow_cli("show", run_id[:8], "--traceback", history=history)
    assert show.returncode == 0, show.stderr
    failed = show.stdout.split("retried attempts:")[1]
    rows = [line.split() for line in failed.strip().splitlines()[1:3]]
    assert [r[:2] for r in rows] == [["flaky", "1"], ["flaky", "2"]]
    assert "attempt 2 of 3 failed: ConnectionError: service unavailable on attempt 2" in failed
    assert re.search(r"--- flaky, attempt 1 ---\nTraceback \(most recent call last\):\n"
                     r'  File ".*tests/read_flows.py", line \d+, in flaky\n', failed)
    assert "ConnectionError: service unavailable on attempt 1\n" in failed

    logs = taskflow_cli("logs", run_id, history=history)
    assert logs.returncode == 0, logs.stderr
    lines = [ln for ln in logs.stdout.splitlines() if " WARNING " in ln]
    assert [ln.split(" | ", 1)[1] for ln in lines] == [
        f"attempt {n} of 3 failed: ConnectionError: service unavailable on attempt {n}; "
        "retrying in 0.5 s" for n in (1, 2)]
    assert "retried attempts:" in logs.stdout


def test_attempts_made_on_worker_processes_are_all_in_the_history(history_url, process_executor,
                                                                  caplog):
    with caplog.at_level(logging.WARNING, logger="taskflow.task_runs"):
        run = read_flows.retried.run(times=5, executor=process_executor)
    assert run.task_states["flaky"].attempts == 3
    assert [r.getMessage()[:22] for r in caplog.records if r.name == "taskflow.task_runs"] == [
        "attempt 1 of 3 failed:", "attempt 2 of 3 failed:"]  # forwarded from the worker
    with open_history() as history:
        attempts = history.task_attempts(run.run_id)
        logs = history.logs(run.run_id, task="flaky")
    assert [(a.name, a.attempt, a.state, a.exception_type) for a in attempts] == [
        ("flaky", 1, "RETRYING", "ConnectionError"), ("flaky", 2, "RETRYING", "ConnectionError"),
        ("flaky", 3, "FAILED", "ConnectionError")]
    assert [a.message.split("; ")[0] for a in attempts] == [
        f"attempt {n} of 3 failed: ConnectionError: service unavailable on attempt {n}"
        for n in (1, 2, 3)]
    assert all(a.worker.startswith("tcp://") and "read_flows.py" in a.traceback for a in attempts)
    assert [rec.level for rec in logs] == [logging.WARNING, logging.WARNING]


def test_a_huge_traceback_travels_clipped_with_its_end_kept():
    from taskflow.engine.events import TRACEBACK_LIMIT, clip_traceback

    text = "Traceback (most recent call last):\n" + "  frame\n" * 5000 + "ValueError: the end\n"
    clipped = clip_traceback(text)
    assert len(clipped) <= TRACEBACK_LIMIT + 100
    assert clipped.startswith("Traceback") and clipped.endswith("ValueError: the end\n")
    assert "characters of traceback cut" in clipped
