"""Webhook notifications, received by a real HTTP server on 127.0.0.1.

The server is the standard library's ``http.server`` in a thread; it records
every POST (its time, path and JSON body) and answers what the test asks for
(200 by default, or a run of 5xx answers first).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dask
import pytest

from taskflow import StateType, TaskflowError
from taskflow.executors import LocalExecutor
from taskflow.history import open_history
from taskflow.hooks import FlowRunInfo, TaskRunInfo
from taskflow.notify import notification, webhook
from taskflow.states import State
from tests import hook_flows as hf
from tests.conftest import ROOT
from tests.polling import wait_for


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv = self.server
        with srv.lock:  # type: ignore[attr-defined]
            failing = srv.fail_next > 0  # type: ignore[attr-defined]
            if failing:
                srv.fail_next -= 1  # type: ignore[attr-defined]
            srv.received.append({  # type: ignore[attr-defined]
                "time": time.time(), "path": self.path, "failed": failing,
                "headers": dict(self.headers), "body": json.loads(body or b"{}"),
            })
        self.send_response(503 if failing else 200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class Receiver:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        self.server.received = []  # type: ignore[attr-defined]
        self.server.fail_next = 0  # type: ignore[attr-defined]
        self.server.lock = threading.Lock()  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self, run_id: str | None = None) -> list[dict]:
        with self.server.lock:  # type: ignore[attr-defined]
            got = [r for r in self.server.received if not r["failed"]]  # type: ignore[attr-defined]
        return [r for r in got if run_id is None or r["body"].get("run_id") == run_id]

    def fail(self, n: int) -> None:
        self.server.fail_next = n  # type: ignore[attr-defined]


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()



@pytest.mark.timeout(120)
def test_a_failing_task_and_a_failing_flow_each_post_once_with_the_run_id_and_message(
    process_executor, receiver
):
    hook = webhook(receiver.url)
    flow = hf.failing_task_flow(hook).with_options(on_failure=[hook])
    run = flow.run(executor=process_executor)
    assert run.state.type is StateType.FAILED
    got = receiver.delivered(run.run_id)
    assert len(got) == 2, got
    task_doc, flow_doc = sorted((r["body"] for r in got), key=lambda b: b["task_run"] is None)
    assert task_doc["task_run"] == "boom" and task_doc["state"] == "FAILED"
    assert "ValueError: boom 1" in task_doc["message"]
    assert task_doc["worker"].startswith("tcp://127.0.0.1:")
    assert flow_doc["task_run"] is None and flow_doc["flow"] == "failing_task"
    assert flow_doc["message"] == run.state.message
    for doc in (task_doc, flow_doc):
        assert run.run_id[:8] in doc["text"] and "FAILED" in doc["text"]  # Slack/Teams show it
    # delivered within 5 s of the failure
    failed_at = run.task_states["boom"].ended_at
    assert all(0 <= r["time"] - failed_at < 5 for r in got)
    assert receiver.delivered(run.run_id)[0]["headers"]["Content-Type"] == "application/json"


@pytest.mark.timeout(120)
def test_a_mapped_task_with_three_failing_children_posts_three_times(process_executor, receiver):
    run = hf.failing_children_flow(webhook(receiver.url)).run(executor=process_executor)
    assert run.state.type is StateType.FAILED
    got = receiver.delivered(run.run_id)
    assert sorted(r["body"]["task_run"] for r in got) == ["boom[0]", "boom[1]", "boom[2]"]


@pytest.mark.timeout(120)
def test_a_successful_run_with_only_on_failure_hooks_posts_nothing(process_executor, receiver):
    run = hf.succeeding_flow(webhook(receiver.url)).run(executor=process_executor)
    assert run.state.is_successful()
    time.sleep(0.5)  # nothing is expected: give a stray notification the time to arrive
    assert receiver.delivered() == []


@pytest.mark.timeout(60)
def test_5xx_answers_are_retried_and_the_run_page_is_linked_when_the_server_url_is_set(receiver):
    receiver.fail(2)
    hook = webhook(receiver.url, retries=3, headers={"X-Token": "env:TASKFLOW_TEST_TOKEN"})
    os.environ["TASKFLOW_TEST_TOKEN"] = "t0k3n"
    try:
        with dask.config.set({"taskflow.server.url": "https://taskflow.example.com/"}):
            assert hook(None, FlowRunInfo("etl", "ab" * 16), State(StateType.CRASHED, message="gone"))
    finally:
        del os.environ["TASKFLOW_TEST_TOKEN"]
    with receiver.server.lock:
        assert [r["failed"] for r in receiver.server.received] == [True, True, False]
    doc = receiver.delivered()[0]
    assert doc["headers"]["X-Token"] == "t0k3n"
    assert doc["body"]["url"] == f"https://taskflow.example.com/runs/{'ab' * 16}"
    assert doc["body"]["text"].endswith(doc["body"]["url"])


@pytest.mark.timeout(60)
def test_an_env_url_is_read_when_sending(receiver, monkeypatch):
    hook = webhook("env:TASKFLOW_TEST_WEBHOOK")
    monkeypatch.setenv("TASKFLOW_TEST_WEBHOOK", receiver.url)
    flow = hf.failing_task_flow(hf.Record("unused")).with_options(on_failure=[hook])
    run = flow.run(executor=LocalExecutor())
    assert [r["body"]["task_run"] for r in receiver.delivered(run.run_id)] == [None]
    assert "env:TASKFLOW_TEST_WEBHOOK" in repr(hook) and receiver.url not in repr(hook)


@pytest.mark.timeout(60)
def test_an_undeliverable_notification_is_logged_and_kept_with_the_run_and_the_state_stays(
    process_executor, receiver, caplog
):
    caplog.set_level(logging.WARNING, logger="taskflow")
    receiver.fail(100)
    hook = webhook(receiver.url, retries=1, timeout=2)
    run = hf.failing_task_flow(hook).with_options(on_failure=[hook]).run(executor=process_executor)
    assert run.state.type is StateType.FAILED
    assert run.task_states["boom"].type is StateType.FAILED
    assert "HTTP 503" in caplog.text and "after 2 attempts" in caplog.text
    assert "/hook" not in caplog.text  # the path of a webhook URL is its secret
    with open_history() as h:
        kept = [r for r in h.logs(run.run_id) if "was not delivered" in r.message]
        # the task's (sent from its worker) and the flow's, each with the run
        assert sorted(r.task for r in kept) == ["", "boom"]
        assert all(r.level == logging.WARNING for r in kept)
        assert h.get_run(run.run_id).state == "FAILED"
        assert {t.name: t.state for t in h.task_runs(run.run_id)} == {"boom": "FAILED"}


def test_webhook_refuses_what_is_not_a_url():
    for bad in ("hooks.slack.com/x", "ftp://host/x", "env:", 42):
        with pytest.raises(TaskflowError, match="http\\(s\\) URL or env:NAME"):
            webhook(bad)  # type: ignore[arg-type]
    with pytest.raises(TaskflowError, match="retries"):
        webhook("https://example.com/x", retries=-1)


def test_the_document_names_the_task_run_and_has_a_text_for_chat_webhooks():
    info = TaskRunInfo("etl", "1a2b3c4d" + "0" * 24, "load[3]", "k", 3, 2, "tcp://w:1")
    doc = notification(None, info, State(StateType.FAILED, message="boom"))
    assert doc["text"] == "taskflow: task run 'load[3]' of flow 'etl' (run 1a2b3c4d) FAILED: boom"
    assert (doc["task_run"], doc["attempt"], doc["worker"], doc["url"]) == ("load[3]", 2, "tcp://w:1", None)


# -- taskflow serve --notify --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_taskflow_serve_notify_posts_for_a_failing_served_flow_and_not_for_a_succeeding_one(
    process_client, receiver, tmp_path
):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "DASK_TASKFLOW__HISTORY__URL": url, "PYTHONPATH": ROOT}
    with open(log, "w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "taskflow.cli", "serve", "tests/serve_flows.py:tick",
             "tests/serve_flows.py:broken", "--every", "1s", "--notify", receiver.url,
             "--address", process_client.scheduler.address],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        def finished(flow: str) -> list:
            with open_history(url) as h:
                return [r for r in h.runs(flow=flow, limit=None) if r.state not in ("RUNNING", "PENDING")]

        wait_for(lambda: len(finished("broken")) >= 2 and len(finished("tick")) >= 2, 90,
               "two finished runs of each flow", interval=0.2)
        broken_ids = {r.id for r in finished("broken")}
        wait_for(lambda: broken_ids <= {r["body"]["run_id"] for r in receiver.delivered()}, 15,
               "a notification for each failed run")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    got = receiver.delivered()
    assert {r["body"]["flow"] for r in got} == {"broken"}, log.read_text()[-3000:]
    assert all(r["body"]["state"] == "FAILED" and r["body"]["task_run"] is None for r in got)
    assert all(r["path"] == "/hook" for r in got)
    # each failed run once (runs of `tick` succeed and post nothing)
    ids = [r["body"]["run_id"] for r in got]
    assert len(ids) == len(set(ids))
