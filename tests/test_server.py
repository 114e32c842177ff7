"""`taskflow server`: a real server process, real `taskflow serve` agents, a real browser.

Each test starts `taskflow server --port 0` as a subprocess over a history of its
own (a SQLite file, or a database on the session's PostgreSQL server) and reads
the URL it prints.  Agents are `taskflow serve` subprocesses sending runs to the
session's processes cluster.  The browser is headless Chromium through
Playwright, as in test_dashboard.py; screenshots stay in each test's tmp dir.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskflow.history import open_history, serving
from tests.conftest import ROOT
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
from tests.flows import count
from tests.polling import wait_for
from tests.test_dashboard import chromium  # noqa: F401 - the browser fixture

TOKEN = "s3cret-token-for-tests"


# -- helpers ---------------------------------------------------------------------------
def until(check: Callable[[], Any], timeout: float, what: str, log: str = "") -> Any:
    """:func:`tests.polling.wait_for`, showing the tail of a process's log when time runs out."""
    def tail() -> str:
        return open(log).read()[-3000:] if log and os.path.exists(log) else ""

    return wait_for(check, timeout, what, interval=0.05, detail=tail)


def call(url: str, method: str = "GET", body: Any = None, token: str | None = None
         ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, method=method, data=data)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode()


def _env(history_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DASK_TASKFLOW__HISTORY__URL": history_url, "PYTHONPATH": ROOT,
            **extra}


class ServerProcess:
    """`taskflow server` in a subprocess; ``url`` once it printed it."""

    def __init__(self, history_url: str, tmp_path: Any, *args: str) -> None:
        self.log = str(tmp_path / f"server-{time.monotonic_ns()}.log")
        self.started = time.monotonic()
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskflow.cli", "server", "--port", "0",
                 "--history", history_url, *args],
                cwd=ROOT, env=_env(history_url), stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("taskflow server at http://127.0.0.1:"), (line, open(self.log).read())
        self.took = time.monotonic() - self.started
        self.url = line.split()[3].rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Agent:
    """`taskflow serve` of the server flows, sending runs to ``address``."""

    def __init__(self, history_url: str, address: str, tmp_path: Any, *flows: str) -> None:
        self.log = str(tmp_path / f"agent-{time.monotonic_ns()}.log")
        targets = [f"tests/server_flows.py:{f}" for f in flows]
        env = _env(history_url, DASK_TASKFLOW__RESULTS__STORE=f"file://{tmp_path}/store",
                   DASK_TASKFLOW__SERVE__POLL_INTERVAL="0.2s")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskflow.cli", "serve", *targets, "--address", address,
                 "--on-stop", "cancel"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                stderr=err, text=True)
        self.history_url = history_url
        until(self.registered, 60, "the serve process to register", self.log)

    def registered(self) -> bool:
        with open_history(self.history_url) as h:
            return any(a.pid == self.proc.pid and a.heartbeat for a in serving.serve_processes(h))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def history_url(tmp_path):
    return f"sqlite:///{tmp_path / 'server.db'}"


@pytest.fixture
def start(tmp_path) -> Iterator[Callable[..., Any]]:
    """Start servers and agents; all are stopped at the end of the test."""
    made: list[Any] = []

    def make(kind: type, history: str, *args: str) -> Any:
        if kind is ServerProcess:  # start(ServerProcess, history, *options)
            thing = ServerProcess(history, tmp_path, *args)
        else:  # start(Agent, history, address, *flows)
            thing = Agent(history, args[0], tmp_path, *args[1:])
        made.append(thing)
        return thing

    yield make
    for thing in reversed(made):
        thing.stop()


def served(history_url: str, name: str, signature: list[dict[str, Any]]) -> None:
    """Record ``name`` as served (by this process, which then goes away)."""
    with open_history(history_url) as h:
        serving.register(h, [{"name": name, "target": f"tests/server_flows.py:{name}",
                              "signature": signature, "scheduled": False}])
        serving.unregister(h, [name])


def run_of(history_url: str, run_id: str) -> Any:
    with open_history(history_url) as h:
        try:
            return h.get_run(run_id)
        except LookupError:
            return None


def finished(history_url: str, run_id: str) -> Any:
    r = run_of(history_url, run_id)
    return r if r is not None and r.state not in ("RUNNING", "PENDING") else None


GREET = [{"name": "name", "type": "str", "schema": {"type": "string"}, "default": "world",
          "required": False},
         {"name": "times", "type": "int", "schema": {"type": "integer"}, "default": 2,
          "required": False}]
# as a serve process of an older taskflow recorded it: type names, no schemas
GREET_OLD = [{k: v for k, v in p.items() if k != "schema"} for p in GREET]


# -- the API ---------------------------------------------------------------------------
def test_the_api_needs_the_token_names_bad_parameters_and_knows_unknown_flows(
        history_url, tmp_path, start):
    served(history_url, "greet", GREET)
    server = start(ServerProcess, history_url, "--token", TOKEN)
    base = server.url

    assert call(f"{base}/api/flows")[0] == 401
    assert call(f"{base}/api/flows", token="wrong")[0] == 401
    status, body = call(f"{base}/api/flows/greet/runs", "POST", {"parameters": {}})
    assert status == 401 and "token" in body["error"]
    with open_history(history_url) as h:
        assert serving.request_for_run(h, "") is None
        assert h.runs() == []  # nothing changed

    status, body = call(f"{base}/api/flows", token=TOKEN)
    assert status == 200 and [f["name"] for f in body["flows"]] == ["greet"]
    status, body = call(f"{base}/api/flows/greet/runs", "POST", {"parameters": {"nme": "x"}},
                        token=TOKEN)
    assert status == 422 and body["parameter"] == "nme" and "'nme'" in body["error"]
    status, body = call(f"{base}/api/flows/greet/runs", "POST",
                        {"parameters": {"times": "many"}}, token=TOKEN)
    assert status == 422 and body["parameter"] == "times"
    assert body["error"] == ("flow 'greet': parameter times='many' is not a valid int (Input "
                             "should be a valid integer, unable to parse string as an integer)")
    status, body = call(f"{base}/api/flows/nope/runs", "POST", {"parameters": {}}, token=TOKEN)
    assert status == 404 and "nope" in body["error"]
    assert call(f"{base}/api/flows/nope", token=TOKEN)[0] == 404

    status, body = call(f"{base}/api/flows/greet/runs", "POST",
                        {"parameters": {"name": "ada", "times": 3}}, token=TOKEN)
    assert status == 201
    run_id = body["id"]
    status, run = call(f"{base}/api/runs/{run_id[:7]}", token=TOKEN)  # a prefix
    assert status == 200 and run["id"] == run_id and run["state"] == "PENDING"
    assert run["parameters"] == {"name": "ada", "times": 3} and run["request"] == "PENDING"
    assert call(f"{base}/api/runs/ffffffffff", token=TOKEN)[0] == 404
    status, body = call(f"{base}/api/runs/{run_id[:7]}/cancel", "POST", token=TOKEN)
    assert status == 202 and body == {"id": run_id, "cancel": "request"}
    assert call(f"{base}/api/runs/{run_id}", token=TOKEN)[1]["state"] == "CANCELLED"
    assert call(f"{base}/api/health", token=TOKEN)[1]["status"] == "ok"
    assert TOKEN not in open(server.log).read()  # never logged


def test_a_non_loopback_host_is_refused_without_a_token_in_one_line(history_url):
    proc = subprocess.run([sys.executable, "-m", "taskflow.cli", "server", "--host", "0.0.0.0",
                           "--port", "0", "--history", history_url], cwd=ROOT,
                          env=_env(history_url), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "without a token" in lines[0] and "--token" in lines[0]


def test_secret_parameters_are_masked_in_answers(history_url, tmp_path, start):
    served(history_url, "greet", [*GREET, {"name": "api_key", "type": "str", "default": "abc",
                                          "required": False}])
    server = start(ServerProcess, history_url)
    status, body = call(f"{server.url}/api/flows/greet/runs", "POST",
                        {"parameters": {"api_key": "hunter2"}})
    assert status == 201
    status, run = call(f"{server.url}/api/runs/{body['id']}")
    assert run["parameters"] == {"api_key": "********"}
    flow = call(f"{server.url}/api/flows/greet")[1]
    assert "abc" not in json.dumps(flow) and "hunter2" not in json.dumps(run)


# -- agents ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_agents_on_one_postgresql_history_never_both_take_a_run_and_a_run_asked_while_none_is_alive_starts_when_one_comes_up(
        postgres_url, process_client, tmp_path, start):
    address = process_client.scheduler.address
    first = start(Agent, postgres_url, address, "greet")
    first.stop()  # registered, then gone: nothing serves the flow now
    server = start(ServerProcess, postgres_url)
    status, body = call(f"{server.url}/api/flows/greet/runs", "POST", {"parameters": {"times": 1}})
    assert status == 201
    early = body["id"]
    assert call(f"{server.url}/api/runs/{early}")[1]["state"] == "PENDING"
    assert not call(f"{server.url}/api/flows/greet")[1]["served"]["alive"]

    agents = [start(Agent, postgres_url, address, "greet") for _ in range(2)]
    ids = [early]
    for i in range(12):
        status, body = call(f"{server.url}/api/flows/greet/runs", "POST",
                            {"parameters": {"name": f"n{i}", "times": 2}})
        assert status == 201
        ids.append(body["id"])
    until(lambda: all(finished(postgres_url, i) for i in ids), 150, "every run to end",
          agents[0].log)
    with open_history(postgres_url) as h:
        runs = h.runs(flow="greet", limit=None)
        assert sorted(r.id for r in runs) == sorted(ids)  # each once: no run twice, none lost
        assert all(r.state == "SUCCESS" for r in runs)
        pids = {r.pid for r in runs}
        assert pids <= {a.proc.pid for a in agents}
        flows = {f["name"]: f for f in call(f"{server.url}/api/flows")[1]["flows"]}
    alive = [a for a in flows["greet"]["served"]["agents"] if a["alive"]]
    assert sorted(a["pid"] for a in alive) == sorted(a.proc.pid for a in agents)


# -- the browser ----------------------------------------------------------------------------
def _sign_in(page: Any, base: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("input[name=token]")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#flows")


def _state(page: Any) -> str:
    return page.get_attribute("#run-state .badge", "data-state") or ""


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_in_a_browser_a_served_flow_is_quick_run_followed_to_success_failed_attempts_shown_resumed_and_a_long_run_cancelled(
        history_url, process_client, tmp_path, start, chromium):  # noqa: F811
    counts = tmp_path / "counts"
    counts.mkdir()
    agent = start(Agent, history_url, process_client.scheduler.address, "greet", "sleepy",
                  "brittle")
    server = start(ServerProcess, history_url, "--token", TOKEN)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, server.url)

    # the flows page lists the served flow and its live agent
    row = page.locator('tr[data-flow="greet"]')
    assert "alive" in row.inner_text() and f"pid {agent.proc.pid}" in row.inner_text()
    page.screenshot(path=str(tmp_path / "flows.png"), full_page=True)
    row.locator("a").first.click()
    page.wait_for_selector("#quick-run")
    assert page.input_value("#p_name") == "world" and page.input_value("#p_times") == "2"

    # Quick Run with a parameter; the run page follows the run without reloading
    page.fill("#p_times", "4")
    page.click("#quick-run-button")
    page.wait_for_selector("#run")
    page.evaluate("window.__same_page = true")
    until(lambda: _state(page) == "SUCCESS", 60, "the run page to say SUCCESS", agent.log)
    assert page.evaluate("window.__same_page === true")  # no full reload
    run_id = page.get_attribute("#run", "data-run")
    assert finished(history_url, run_id).params == {"name": "world", "times": 4}
    page.wait_for_selector('#schematic g.node[data-node="shout"][data-state="SUCCESS"]')
    assert "4/4" in page.text_content('#schematic g.node[data-node="shout"]')
    names = page.eval_on_selector_all("#task-runs tr[data-task]", "rs => rs.map(r => r.dataset.task)")
    assert names == ["spell", "shout", "shout[0]", "shout[1]", "shout[2]", "shout[3]", "join"]
    page.screenshot(path=str(tmp_path / "run-success.png"), full_page=True)

    # a failing run shows its attempts and their reason
    page.goto(f"{server.url}/flows/brittle")
    page.fill("#p_counts", str(counts))
    page.click("#quick-run-button")
    page.wait_for_selector("#run")
    until(lambda: _state(page) == "FAILED", 90, "the brittle run to fail", agent.log)
    failed_id = page.get_attribute("#run", "data-run")
    page.wait_for_selector('tr[data-task="fragile"] details.failure')
    fragile = page.locator('tr[data-task="fragile"]')
    assert fragile.locator(".task-attempts").inner_text() == "3"
    assert f"no ok file in {counts}" in fragile.inner_text()
    page.screenshot(path=str(tmp_path / "run-failed.png"), full_page=True)
    assert (count(str(counts / "prepare")), count(str(counts / "fragile"))) == (1, 3)

    # Resume: only the failed part runs again
    (counts / "ok").write_text("")
    page.click("#resume")
    until(lambda: page.get_attribute("#run", "data-run") not in (None, failed_id), 30,
          "the resumed run's page")
    until(lambda: _state(page) == "SUCCESS", 90, "the resumed run to succeed", agent.log)
    assert (count(str(counts / "prepare")), count(str(counts / "fragile"))) == (1, 4)
    with open_history(history_url) as h:
        resumed = h.get_run(page.get_attribute("#run", "data-run"))
        states = h.task_states(resumed.id)
    assert states == {"prepare": "CACHED", "fragile": "SUCCESS"}
    assert f"resumes {failed_id[:8]}" in page.inner_text("#run .meta")
    page.screenshot(path=str(tmp_path / "run-resumed.png"), full_page=True)

    # Cancel a long run
    page.goto(f"{server.url}/flows/sleepy")
    page.fill("#p_seconds", "20")  # the nap goes on on its worker after the cancel: keep it short
    page.fill("#p_path", str(counts / "after"))
    page.click("#quick-run-button")
    page.wait_for_selector("#run")
    until(lambda: _state(page) == "RUNNING" and page.locator("#cancel").count(), 60,
          "the long run to be running", agent.log)
    until(lambda: page.locator('tr[data-task="nap"] .badge[data-state="RUNNING"]').count(), 30,
          "the nap to be running")
    page.click("#cancel")
    until(lambda: _state(page) == "CANCELLED", 30, "the run page to say CANCELLED", agent.log)
    long_id = page.get_attribute("#run", "data-run")
    with open_history(history_url) as h:
        assert h.get_run(long_id).state == "CANCELLED"
        assert h.task_states(long_id)["after"] == "CANCELLED"
    assert count(str(counts / "after")) == 0
    page.screenshot(path=str(tmp_path / "run-cancelled.png"), full_page=True)

    # `taskflow cancel` on a finished run says there is nothing to cancel
    proc = subprocess.run([sys.executable, "-m", "taskflow.cli", "cancel", run_id[:8]], cwd=ROOT,
                          env=_env(history_url), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "already ended SUCCESS" in proc.stderr


def test_concurrent_claims_on_postgresql_take_each_request_exactly_once(postgres_url):
    import threading
    import uuid

    asked: list[str] = []
    taken: list[list[str]] = [[], [], []]
    done = threading.Event()

    def claimer(k: int) -> None:
        with open_history(postgres_url) as mine:
            while not done.is_set() or len(asked) > sum(map(len, taken)):
                taken[k].extend(r.id for r, _ in serving.claim(mine, ["greet"],
                                                               lambda: uuid.uuid4().hex))

    with open_history(postgres_url) as h:
        threads = [threading.Thread(target=claimer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for i in range(80):  # asked while the three claim
            asked.append(serving.request_run(h, "greet", {"i": i}))
        done.set()
        for t in threads:
            t.join(60)
    everything = [r for part in taken for r in part]
    assert sorted(everything) == sorted(asked)  # all taken, none twice
    assert sum(1 for part in taken if part) >= 2, [len(p) for p in taken]  # they did contend


# -- the history under the server ----------------------------------------------------------
_V1_FLOW_RUNS = """CREATE TABLE taskflow_flow_runs (id VARCHAR(64) NOT NULL PRIMARY KEY,
 flow_name VARCHAR(255) NOT NULL, parameters TEXT NOT NULL, state VARCHAR(32) NOT NULL,
 message TEXT NOT NULL, started_at FLOAT, ended_at FLOAT, heartbeat FLOAT, executor VARCHAR(255),
 address VARCHAR(255), dashboard_link TEXT, host VARCHAR(255), pid INTEGER)"""
_V1_SERVED = """CREATE TABLE taskflow_served_flows (name VARCHAR(255) NOT NULL PRIMARY KEY,
 target TEXT NOT NULL, schedule TEXT NOT NULL, parameters TEXT NOT NULL, host VARCHAR(255) NOT NULL,
 pid INTEGER, started_at FLOAT, heartbeat FLOAT, last_due FLOAT)"""
_V1_REQUESTS = """CREATE TABLE taskflow_run_requests (id VARCHAR(64) NOT NULL PRIMARY KEY,
 flow_name VARCHAR(255) NOT NULL, parameters TEXT NOT NULL, state VARCHAR(32) NOT NULL,
 run_id VARCHAR(64), message TEXT NOT NULL, requested_at FLOAT NOT NULL, taken_at FLOAT)"""


def test_a_history_file_written_before_the_server_is_read_and_gains_what_the_server_needs(
        tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for ddl in (_V1_FLOW_RUNS, _V1_SERVED, _V1_REQUESTS,
                    "CREATE TABLE taskflow_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"):
            conn.execute(ddl)
        conn.execute("INSERT INTO taskflow_meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO taskflow_flow_runs VALUES ('ab12cd', 'etl', '{\"n\": 3}', "
                     "'SUCCESS', '', 1.0, 2.0, 2.0, 'LocalExecutor()', NULL, NULL, 'h', 7)")
    with open_history(f"sqlite:///{path}") as h:
        old = h.get_run("ab")
        assert (old.state, old.params, old.graph_dict["nodes"]) == ("SUCCESS", {"n": 3}, [])
        serving.register(h, [{"name": "etl", "signature": GREET_OLD, "scheduled": False}])
        assert serving.served_flows(h)[0].signature_list == [{**p, "schema": None}
                                                             for p in GREET_OLD]
    with sqlite3.connect(path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ix_taskflow_flow_runs_flow", "ix_taskflow_task_runs_seq"} <= indexes


def test_run_links_point_at_the_server_when_its_url_is_set(history_url, tmp_path):
    import dask

    from taskflow.executors import LocalExecutor
    from tests import server_flows

    with dask.config.set({"taskflow.server.url": "http://tf.example:8080/",
                          "taskflow.history.url": history_url}):
        run = server_flows.greet.run(executor=LocalExecutor())
        assert run.run_page == f"http://tf.example:8080/runs/{run.run_id}"
    show = subprocess.run([sys.executable, "-m", "taskflow.cli", "show", run.run_id[:8]], cwd=ROOT,
                          env=_env(history_url, DASK_TASKFLOW__SERVER__URL="http://tf.example:8080"),
                          capture_output=True, text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    assert f"page       http://tf.example:8080/runs/{run.run_id}" in show.stdout


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_taskflow_cancel_stops_a_run_going_on_in_another_process(history_url, tmp_path):
    import threading

    import dask

    from taskflow.executors import LocalExecutor
    from tests import server_flows

    done: list[Any] = []
    with dask.config.set({"taskflow.history.url": history_url}):
        runner = threading.Thread(target=lambda: done.append(server_flows.sleepy.run(
            executor=LocalExecutor(), seconds=10.0, path=str(tmp_path / "after"))))
        runner.start()
        running = until(lambda: (lambda rs: rs[0] if rs else None)(
            open_history(history_url).runs(flow="sleepy")), 30, "the run to be recorded")
        proc = subprocess.run([sys.executable, "-m", "taskflow.cli", "cancel", running.id[:8]],
                              cwd=ROOT, env=_env(history_url), capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert f"asked the process running {running.id} to cancel it" in proc.stdout
        runner.join(60)
    run = done[0]
    assert run.state.type.value == "CANCELLED" and "taskflow server" not in run.state.message
    assert run.task_states["after"].type.value == "CANCELLED"
    assert count(str(tmp_path / "after")) == 0
    assert finished(history_url, run.run_id).state == "CANCELLED"


def test_browsers_sign_in_once_with_an_httponly_samesite_cookie_and_forms_need_their_csrf_token(
        history_url, tmp_path, start):
    import http.client
    import re
    from urllib.parse import urlencode, urlsplit

    served(history_url, "greet", GREET)
    server = start(ServerProcess, history_url, "--token", TOKEN)
    where = urlsplit(server.url)

    def ask(method: str, path: str, body: dict[str, str] | None = None,
            cookies: str = "") -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        headers = {"Cookie": cookies} if cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, urlencode(body) if body is not None else None, headers)
        resp = conn.getresponse()
        resp.read()
        return resp

    first = ask("GET", "/flows/greet")
    assert first.status == 302 and first.getheader("Location").startswith("/signin?next=")
    form = ask("GET", "/signin")
    xsrf = re.search(r"_xsrf=([^;]+)", form.getheader("Set-Cookie")).group(1)
    wrong = ask("POST", "/signin", {"token": "nope", "_xsrf": xsrf}, f"_xsrf={xsrf}")
    assert wrong.status == 401
    signed = ask("POST", "/signin", {"token": TOKEN, "next": "/flows/greet", "_xsrf": xsrf},
                 f"_xsrf={xsrf}")
    assert signed.status == 302 and signed.getheader("Location") == "/flows/greet"
    cookie = signed.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = cookie.split(";")[0]
    assert ask("GET", "/flows/greet", cookies=session).status == 200
    # a form posted without its CSRF token changes nothing
    forged = ask("POST", "/flows/greet/runs", {"p_times": "3"}, session)
    assert forged.status == 403
    posted = ask("POST", "/flows/greet/runs", {"p_times": "3", "_xsrf": xsrf},
                 f"{session}; _xsrf={xsrf}")
    assert posted.status == 302 and posted.getheader("Location").startswith("/runs/")
    with open_history(history_url) as h:
        asked = serving.request_for_run(h, posted.getheader("Location").rsplit("/", 1)[1])
    assert asked is not None and asked.parameters_dict == {"times": 3}
    bad = ask("POST", "/flows/greet/runs", {"p_times": "lots", "_xsrf": xsrf},
              f"{session}; _xsrf={xsrf}")
    assert bad.status == 422


def test_the_dashboard_page_is_drawn_from_the_servers_templates_and_links_to_the_server():
    import dask

    from taskflow.dashboard.model import RunBook
    from taskflow.dashboard.render import not_found_page, run_page

    book = RunBook()
    book.add({"kind": "run", "phase": "started", "run": "r1", "flow_name": "etl", "time": 1.0,
              "nodes": [{"name": "a", "task": "a", "mapped": False}], "edges": [],
              "reference": ["a"], "parameters": {}})
    with dask.config.set({"taskflow.server.url": "http://tf.example:8080"}):
        html = run_page(book.run("r1"), base="/taskflow", dask_root="/", refresh_ms=1000)
        missing = not_found_page("r2", base="/taskflow", dask_root="/")
    assert 'href="http://tf.example:8080/runs/r1"' in html
    assert 'href="http://tf.example:8080/runs/r2"' in missing
    assert '<header>' in html and 'class="brand"' in html  # the one base layout
    assert ".badge {" in html  # the one style sheet, inlined (the scheduler serves no files)


@pytest.mark.timeout(60)
def test_a_served_flow_records_its_signature_schedule_and_next_due_time(history_url, tmp_path):
    import threading

    import dask

    from taskflow.deploy.serve import Server
    from taskflow.executors import LocalExecutor
    from tests import serve_flows

    with dask.config.set({"taskflow.history.url": history_url}):
        server = Server([serve_flows.tick.to_deployment(parameters={"note": "from the test"})],
                        LocalExecutor())
        thread = threading.Thread(target=server.serve)
        thread.start()
        try:
            def record() -> Any:
                with open_history(history_url) as h:
                    found = [f for f in serving.served_flows(h) if f.next_due]
                return found[0] if found else None

            tick = until(record, 30, "the served flow's next due time")
        finally:
            server.stop()
            thread.join(30)
    assert tick.schedule == "every 1s" and tick.next_due > time.time() - 5
    assert tick.signature_list == [
        {"name": "path", "type": "str", "schema": {"type": "string"}, "default": "",
         "required": False},
        {"name": "note", "type": "str", "schema": {"type": "string"}, "default": "from the test",
         "required": False}]


# -- typed parameters: the flow's own check, on the schemas its serve process recorded ------
def _in_process_error(**given: Any) -> str:
    """What the flow itself says of ``given`` (the check a run of it makes)."""
    from taskflow import ParameterError
    from tests.server_flows import typed

    with pytest.raises(ParameterError) as e:
        typed.check_parameters(given)
    return str(e.value)


def test_quick_run_form_text_is_read_by_type_and_a_row_without_schemas_keeps_str_text():
    from taskflow.server.views import ParameterProblem, check_parameters

    for sig in (GREET, GREET_OLD):
        assert check_parameters("greet", sig, {"name": "123", "times": "5"}, from_form=True) == {
            "name": "123", "times": 5}
        assert check_parameters("greet", sig, {"name": "", "times": ""}, from_form=True) == {
            "name": ""}  # an emptied str field is the empty string; others keep the default
    with pytest.raises(ParameterProblem) as e:
        check_parameters("greet", GREET, {"times": "5x"}, from_form=True)
    assert e.value.parameter == "times" and "parameter times='5x' is not a valid int" in str(e.value)
    assert check_parameters("greet", GREET_OLD, {"times": "5x"}, from_form=True) == {"times": "5x"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_run_values_are_checked_by_the_flows_own_check_on_the_recorded_schemas_and_old_rows_take_any_value(
        history_url, process_client, tmp_path, start):
    agent = start(Agent, history_url, process_client.scheduler.address, "typed")
    server = start(ServerProcess, history_url, "--token", TOKEN)
    runs = f"{server.url}/api/flows/typed/runs"

    status, flow = call(f"{server.url}/api/flows/typed", token=TOKEN)
    sig = {p["name"]: p for p in flow["served"]["signature"]}
    assert {n: p["type"] for n, p in sig.items()} == {
        "day": "date", "count": "int", "tags": "list[str]", "mode": "'fast' | 'slow'",
        "limit": "int | None"}
    assert sig["day"]["schema"] == {"format": "date", "type": "string"}
    assert (sig["day"]["hint"], sig["day"]["default"]) == ("datetime.date", "2026-01-01")

    # a value that does not fit: 422 naming it, in the words of the flow's own check
    for bad in ({"count": "many"}, {"day": "2026-13-01"}, {"mode": "medium"},
                {"tags": ["a", 1]}, {"limit": 2.5}, {"tags": "a,b"}):
        status, body = call(runs, "POST", {"parameters": bad}, token=TOKEN)
        (name,) = bad
        assert status == 422 and body["parameter"] == name, body
        assert body["error"] == _in_process_error(**bad)
    with open_history(history_url) as h:
        assert h.runs() == [] and serving.request_for_run(h, "") is None  # nothing asked

    # values that fit are converted as the flow converts them, and the run goes through
    status, body = call(runs, "POST", {"parameters": {"day": "2026-11-01", "count": "3",
                                                      "limit": "7", "mode": "slow"}}, token=TOKEN)
    assert status == 201, body
    with open_history(history_url) as h:
        asked = serving.request_for_run(h, body["id"]).parameters_dict
    assert asked == {"day": "2026-11-01", "count": 3, "limit": 7, "mode": "slow"}
    run = until(lambda: finished(history_url, body["id"]), 60, "the typed run", agent.log)
    assert run.state == "SUCCESS" and run.params["count"] == 3

    # a row recorded before schemas were (type names only): any value is asked for, and the
    # serve process's own check converts it, or refuses it with the same words
    with open_history(history_url) as h, h._writes.begin() as conn:
        import sqlalchemy as sa

        from taskflow.history import schema as tables

        old = [{k: v for k, v in p.items() if k not in ("schema", "hint", "secret")}
               | {"type": p["hint"]} for p in flow["served"]["signature"]]
        conn.execute(sa.update(tables.served_flows).where(tables.served_flows.c.name == "typed")
                     .values(signature=json.dumps(old)))
    status, body = call(runs, "POST", {"parameters": {"count": "4", "day": "2026-11-02"}},
                        token=TOKEN)
    assert status == 201, body
    run = until(lambda: finished(history_url, body["id"]), 60, "the old-row run", agent.log)
    assert run.state == "SUCCESS" and run.params["count"] == 4
    status, body = call(runs, "POST", {"parameters": {"count": "many"}}, token=TOKEN)
    assert status == 201, body  # no schema: the server cannot tell
    refused = until(lambda: (lambda r: r if r["state"] == "FAILED" else None)(
        call(f"{server.url}/api/runs/{body['id']}", token=TOKEN)[1]), 60, "the refusal",
        agent.log)
    assert _in_process_error(count="many") in refused["message"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_in_a_browser_the_quick_run_form_shows_types_from_the_schemas_refuses_a_bad_value_in_the_flows_words_and_converts_good_text(
        history_url, process_client, tmp_path, start, chromium):  # noqa: F811
    agent = start(Agent, history_url, process_client.scheduler.address, "typed")
    server = start(ServerProcess, history_url, "--token", TOKEN)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, server.url)
    page.goto(f"{server.url}/flows/typed")
    page.wait_for_selector("#quick-run")
    shown = page.eval_on_selector_all("#quick-run .form-grid span",
                                      "spans => spans.map(s => s.textContent)")
    assert shown == ["date", "int", "list[str]", "'fast' | 'slow'", "int | None"]
    assert [page.input_value(f"#p_{n}") for n in ("day", "count", "tags", "mode", "limit")] == [
        "2026-01-01", "1", '["a"]', "fast", ""]

    page.fill("#p_count", "many")
    page.fill("#p_tags", '["x", "y"]')
    page.click("#quick-run-button")
    page.wait_for_selector("#run-error")
    assert page.inner_text("#run-error") == _in_process_error(count="many")
    assert page.input_value("#p_count") == "many" and page.input_value("#p_tags") == '["x", "y"]'
    page.screenshot(path=str(tmp_path / "flow-bad-value.png"), full_page=True)
    with open_history(history_url) as h:
        assert h.runs() == []

    page.fill("#p_count", "3")
    page.fill("#p_day", "2026-11-01")
    page.fill("#p_mode", "slow")
    page.click("#quick-run-button")
    page.wait_for_selector("#run")
    until(lambda: _state(page) == "SUCCESS", 60, "the run page to say SUCCESS", agent.log)
    run_id = page.get_attribute("#run", "data-run")
    with open_history(history_url) as h:
        asked = serving.request_for_run(h, run_id).parameters_dict
    assert asked == {"day": "2026-11-01", "count": 3, "tags": ["x", "y"], "mode": "slow"}
    page.screenshot(path=str(tmp_path / "typed-run.png"), full_page=True)
