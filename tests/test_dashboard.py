"""The taskflow page on the Dask dashboard: run records, HTTP pages, JSON, browser.

Pure parts (the run book, masking, the graph layout, the HTML) are tested
alone.  The rest runs for real: a DaskExecutor that starts its own embedded
LocalCluster (no set-up), a cluster started with the ``dask`` command line and
``--preload taskflow.dashboard`` shared by two clients, and headless Chromium
driven by Playwright.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from taskflow.dashboard import mask_parameters, page_link
from taskflow.dashboard.model import RunBook
from taskflow.dashboard.render import run_page
from taskflow.executors import DaskExecutor
from taskflow.schematic import graph_svg, layers
from tests import dashboard_flows as dfl
from tests.conftest import ROOT
from tests.dask_processes import DaskProcesses
from tests.polling import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
START_TIMEOUT = 60


# -- helpers ---------------------------------------------------------------------
until = wait_for  # poll a condition with a deadline (tests/polling.py)


def http(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def api(base: str, path: str = "") -> Any:
    status, body = http(f"{base}/taskflow/api/runs{path}")
    assert status == 200, (status, body)
    return json.loads(body)


def dashboard_base(client: Any) -> str:
    """The dashboard's root URL on 127.0.0.1, where the tests bind it."""
    return f"http://127.0.0.1:{client.scheduler_info()['services']['dashboard']}"


def task_of(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in run["tasks"] if t["name"] == name)


# -- the run book, alone -----------------------------------------------------------
def started(run: str, *, client: str = "c1", nodes: list[tuple[str, bool]], edges=(), ref=()) -> dict:
    return {"kind": "run", "phase": "started", "run": run, "flow_name": "f", "time": 1.0,
            "client": client, "nodes": [{"name": n, "task": n, "mapped": m} for n, m in nodes],
            "edges": [list(e) for e in edges], "reference": list(ref), "parameters": {}}


def state(run: str, name: str, typ: str, *, index: int | None = None, t: float = 2.0, **kw) -> dict:
    return {"kind": "state", "run": run, "name": name, "type": typ, "map_index": index,
            "attempt": 1, "started": 1.5, "ended": t if typ not in ("RUNNING",) else None,
            "time": t, **kw}


def test_secret_named_parameters_are_masked_and_the_others_shown():
    shown = mask_parameters({
        "n": 10, "API_KEY": "abc", "db_password": "pw", "github_token": "t",
        "storage_options": {"secret": "s", "anon": False}, "path": "s3://bucket/x",
    })

    assert shown["n"] == "10" and shown["path"] == "s3://bucket/x"
    assert shown["API_KEY"] == shown["db_password"] == shown["github_token"] == "********"
    assert shown["storage_options"] == "{'secret': '********', 'anon': False}"
    assert "pw" not in json.dumps(shown) and "'s'" not in json.dumps(shown)


def test_a_mapped_task_is_running_until_all_its_children_end_then_takes_their_verdict():
    book = RunBook()
    book.add(started("r", nodes=[("load", True), ("sum", False)], edges=[("load", "sum", "data")],
                     ref=["sum"]))
    book.add({"kind": "run", "phase": "update", "run": "r", "sizes": {"load": 3},
              "events": [state("r", "load", "RUNNING", message="mapped over 3 elements")]})
    book.add(state("r", "load[0]", "SUCCESS", index=0))
    book.add(state("r", "load[2]", "FAILED", index=2, message="boom", exc_repr="ValueError('x')"))

    run = book.run("r")
    load = next(n for n in run["nodes"] if n["name"] == "load")
    assert (load["state"], load["done"], load["size"]) == ("RUNNING", 2, 3)
    assert run["state"] == "RUNNING" and run["live"]
    assert run["counts"] == {"SUCCESS": 1, "FAILED": 1, "PENDING": 2}

    book.add(state("r", "load[1]", "SUCCESS", index=1))
    book.add(state("r", "sum", "TRIGGER_FAILED", message="upstream task 'load' failed"))
    book.add({"kind": "run", "phase": "finished", "run": "r", "time": 3.0, "lost": {}})

    run = book.run("r")
    load = next(n for n in run["nodes"] if n["name"] == "load")
    assert (load["state"], load["message"]) == ("FAILED", "1 of 3 mapped children did not succeed")
    assert run["state"] == "FAILED" and not run["live"]
    assert "sum" in run["message"]
    assert [t["name"] for t in run["tasks"]] == ["load", "load[0]", "load[1]", "load[2]", "sum"]
    assert task_of(run, "load[2]")["error"] == "ValueError('x')"


def test_the_book_keeps_the_last_runs_and_drops_finished_ones_first():
    book = RunBook(max_runs=2)
    book.add(started("live", nodes=[("a", False)]))
    book.add(started("done", nodes=[("a", False)]))
    book.add({"kind": "run", "phase": "finished", "run": "done", "time": 2.0, "lost": {}})
    book.add(started("new", nodes=[("a", False)]))

    assert len(book) == 2
    assert book.run("done") is None
    assert book.run("live") is not None and book.run("new") is not None


def test_the_book_drops_finished_runs_to_stay_under_its_task_run_budget():
    book = RunBook(max_runs=10, max_task_runs=3)
    for run in ("old", "mid"):
        book.add(started(run, nodes=[("a", False), ("b", False)]))
        book.add(state(run, "a", "SUCCESS"))
        book.add(state(run, "b", "SUCCESS"))
        book.add({"kind": "run", "phase": "finished", "run": run, "time": 2.0, "lost": {}})
    book.add(started("new", nodes=[("a", False)]))

    assert book.run("old") is None
    assert book.run("mid") is not None and book.run("new") is not None


def test_runs_of_a_client_that_went_away_end_with_unfinished_tasks_crashed():
    book = RunBook()
    book.add(started("r", client="c1", nodes=[("a", False), ("b", False)], ref=["b"]))
    book.add(state("r", "a", "SUCCESS"))
    book.add(state("r", "b", "RUNNING"))
    book.client_gone("c2")
    assert book.run("r")["state"] == "RUNNING"

    book.client_gone("c1")

    run = book.run("r")
    assert run["state"] == "FAILED" and not run["live"]
    b = next(n for n in run["nodes"] if n["name"] == "b")
    assert b["state"] == "CRASHED" and "disconnected" in b["message"]


def test_a_cancelled_run_shows_its_unfinished_tasks_cancelled_not_crashed():
    book = RunBook()
    book.add(started("r", client="c1", nodes=[("a", False), ("b", False)], ref=["b"]))
    book.add(state("r", "a", "SUCCESS"))
    book.add({"kind": "run", "phase": "finished", "run": "r", "time": 3.0, "lost": {},
              "cancelled": "the serve process stopped (SIGTERM)"})

    run = book.run("r")
    assert (run["state"], run["message"]) == ("CANCELLED", "the serve process stopped (SIGTERM)")
    states = {n["name"]: n["state"] for n in run["nodes"]}
    assert states == {"a": "SUCCESS", "b": "CANCELLED"}


def test_a_workers_batch_of_events_is_taken_event_by_event():
    book = RunBook()
    book.add({"kind": "batch", "events": [state("r1", "a", "RUNNING"), state("r1", "a", "SUCCESS"),
                                          state("r2", "b", "FAILED")]})

    assert task_of(book.run("r1"), "a")["state"] == "SUCCESS"
    assert task_of(book.run("r2"), "b")["state"] == "FAILED"


def test_events_of_other_kinds_or_without_a_run_are_ignored():
    book = RunBook()
    book.add({"kind": "state", "name": "a", "type": "SUCCESS"})
    book.add({"kind": "something", "run": "r"})
    assert book.runs() == []


def test_the_graph_puts_every_task_right_of_its_upstreams_and_dashes_ordering_edges():
    edges = [("extract", "clean", "data"), ("extract", "check", "data"),
             ("clean", "load", "data"), ("check", "load", "order")]
    cols = layers(["extract", "clean", "check", "load"], edges)

    assert cols == [["extract"], ["clean", "check"], ["load"]]
    svg = graph_svg([{"name": n, "state": "SUCCESS"} for n in ["extract", "clean", "check", "load"]],
                    edges)
    assert svg.count('class="edge"') == 4 and svg.count('stroke-dasharray="5,4"') == 1
    assert 'data-node="load"' in svg


def test_the_run_page_escapes_whatever_tasks_report():
    book = RunBook()
    book.add(started("r", nodes=[("a", False)]))
    book.add(state("r", "a", "FAILED", message="<script>alert(1)</script>", exc_repr="<b>x</b>"))

    html = run_page(book.run("r"), base="/taskflow", dask_root="/", refresh_ms=1000)

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>x</b>" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_run_page_link_sits_beside_the_dask_status_link():
    assert page_link("http://h:8787/status", "r1") == "http://h:8787/taskflow/run/r1"
    assert page_link("https://h/user/me/proxy/8787/status") == "https://h/user/me/proxy/8787/taskflow"
    assert page_link(None, "r1") is None


# -- an embedded LocalCluster, started by the executor itself ------------------------
@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[DaskExecutor, str]]:
    """A DaskExecutor that starts its own LocalCluster: nothing set up by hand."""
    ex = DaskExecutor(cluster_kwargs={
        "n_workers": 1, "threads_per_worker": 2, "processes": False, "host": None,
        "dashboard_address": "127.0.0.1:0", "silence_logs": 40,
    })
    try:
        yield ex, dashboard_base(ex.client)
    finally:
        ex.close()


@pytest.mark.timeout(60)
def test_a_run_on_the_embedded_cluster_is_on_the_page_with_no_set_up(embedded):
    ex, base = embedded
    run = dfl.squares.run(executor=ex, n=4)
    assert run.state.is_successful()

    shown = until(lambda: (lambda r: r if r["state"] == "SUCCESS" else None)(
        api(base, f"/{run.run_id}")), 10, "the run to show SUCCESS")

    assert shown["flow_name"] == "squares" and shown["done"] == shown["total"] == 6
    assert {t["name"] for t in shown["tasks"]} == {
        "numbers", "square", "square[0]", "square[1]", "square[2]", "square[3]", "total"}
    assert all(t["state"] == "SUCCESS" and t["attempts"] == 1 for t in shown["tasks"])
    assert task_of(shown, "total")["duration"] is not None
    assert shown["edges"] == [["numbers", "square", "data"], ["square", "total", "data"]]
    assert shown["parameters"] == {"n": "4", "db_password": "********"}
    assert run.run_id in {r["run_id"] for r in api(base)["runs"]}
    # the HTML pages show the run, never the secret
    status, listing = http(f"{base}/taskflow")
    assert status == 200 and run.run_id[:8] in listing and "squares" in listing
    status, page = http(f"{base}/taskflow/run/{run.run_id}")
    assert status == 200 and "<svg" in page and "square[3]" in page
    assert "hunter2" not in page and "********" in page
    assert run.run_page is not None and run.run_page.endswith(f"/taskflow/run/{run.run_id}")


@pytest.mark.timeout(60)
def test_a_runs_announcements_go_to_the_page_and_are_not_echoed_to_its_client(embedded):
    # the client subscribes to the state events' topic: the run's graph, sent to the
    # page at each start, must not come back to it (nor be written to a closed client)
    ex, base = embedded
    run = dfl.squares.run(executor=ex, n=2)
    until(lambda: (lambda r: r if r["state"] == "SUCCESS" else None)(
        api(base, f"/{run.run_id}")), 10, "the run to show SUCCESS")
    on_state_topic = [m for _, m in ex.client.get_events("taskflow")]
    announced = [m for _, m in ex.client.get_events("taskflow-runs") if m.get("run") == run.run_id]
    assert not [m for m in on_state_topic if m.get("kind") == "run"]
    assert [m["phase"] for m in announced][0] == "started" and announced[-1]["phase"] == "finished"
    assert announced[0]["topic"] == "taskflow" and announced[0]["nodes"]


@pytest.mark.timeout(60)
def test_a_failed_run_shows_failed_with_the_tasks_error(embedded):
    ex, base = embedded
    run = dfl.broken.run(executor=ex)
    assert run.state.is_failed()

    shown = until(lambda: (lambda r: r if not r["live"] else None)(api(base, f"/{run.run_id}")),
                  10, "the run to end")

    assert shown["state"] == "FAILED"
    assert shown["message"] == run.state.message
    explode = task_of(shown, "explode")
    assert explode["state"] == "FAILED" and "cannot add 3 numbers today" in explode["error"]
    assert "Traceback" in explode["traceback"]


@pytest.mark.timeout(60)
def test_the_page_is_read_only_and_says_when_a_run_is_unknown(embedded):
    _, base = embedded
    assert http(f"{base}/taskflow/api/runs", method="POST")[0] == 405
    assert http(f"{base}/taskflow", method="DELETE")[0] == 405
    status, body = http(f"{base}/taskflow/api/runs/nope")
    assert status == 404 and "nope" in json.loads(body)["error"]
    status, body = http(f"{base}/taskflow/run/nope")
    assert status == 404 and "No such flow run" in body


@pytest.mark.timeout(60)
def test_a_scheduler_that_cannot_take_the_page_gets_a_warning_saying_how_and_the_run_goes_on(
    embedded, monkeypatch, caplog
):
    from distributed import Client

    ex, _ = embedded
    with Client(ex.client.scheduler.address, timeout=10) as client:
        def refuse(plugin: Any, *args: Any, **kwargs: Any) -> None:
            raise ModuleNotFoundError("No module named 'taskflow'")

        monkeypatch.setattr(client, "register_plugin", refuse)
        with caplog.at_level(logging.WARNING, logger="taskflow.dashboard"):
            run = dfl.squares.run(executor=DaskExecutor(client=client), n=2)

    assert run.state.is_successful()
    warned = [r.getMessage() for r in caplog.records if r.name == "taskflow.dashboard"]
    assert len(warned) == 1 and "--preload taskflow.dashboard" in warned[0], warned


@pytest.mark.timeout(60)
def test_dask_groups_each_runs_tasks_in_a_span_named_for_the_run(embedded):
    ex, _ = embedded
    run = dfl.squares.run(executor=ex, n=2)

    def spans(dask_scheduler: Any) -> dict[tuple[str, ...], list[str]]:
        ext = dask_scheduler.extensions["spans"]
        return {s.name: sorted({g.prefix.name for g in s.groups}) for s in ext.spans.values()}

    seen = ex.client.run_on_scheduler(spans)

    prefixes = seen[("flow squares", run.run_id)]  # what the task stream and progress show
    assert {"numbers", "square", "total"} <= set(prefixes)
    assert all(p.split("_")[0] in ("numbers", "square", "total") for p in prefixes), prefixes


# -- a cluster started with the dask command line, shared by two clients ---------------
@pytest.fixture(scope="module")
def preloaded_cluster(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """``(scheduler address, dashboard base URL)`` of `dask scheduler --preload taskflow.dashboard`."""
    cluster = DaskProcesses(tmp_path_factory.mktemp("preloaded"))
    try:
        address = cluster.scheduler("--preload", "taskflow.dashboard", "--port", "0",
                                    dashboard=True)
        port = cluster.info["services"]["dashboard"]
        cluster.worker(address, "--nthreads", "2")
        yield address, f"http://127.0.0.1:{port}"
    finally:
        cluster.stop()


CLIENT_B = """
import json, sys
from taskflow.executors import DaskExecutor
from tests import dashboard_flows as dfl
with DaskExecutor(address=sys.argv[1]) as ex:
    run = dfl.broken.run(executor=ex)
print(json.dumps({"run_id": run.run_id, "state": run.state.type.value}))
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_runs_from_two_clients_of_one_preloaded_scheduler_are_listed_with_their_states(
    preloaded_cluster, tmp_path
):
    address, base = preloaded_cluster
    # the preload serves the page before any client comes
    status, body = http(f"{base}/taskflow")
    assert status == 200 and "Flow runs" in body
    # client B: another process, running a flow that fails
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p))
    b = subprocess.Popen([sys.executable, "-c", CLIENT_B, address], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # client A: this process, running a flow that succeeds, meanwhile
    with DaskExecutor(address=address) as ex:
        ex.client.wait_for_workers(1, timeout=START_TIMEOUT)
        run_a = dfl.squares.run(executor=ex, n=5)
    out, err = b.communicate(timeout=60)
    assert b.returncode == 0, err[-3000:]
    run_b = json.loads(out.strip().splitlines()[-1])
    assert run_a.state.is_successful() and run_b["state"] == "FAILED"

    def both_ended() -> dict[str, dict[str, Any]] | None:
        runs = {r["run_id"]: r for r in api(base)["runs"]}
        ids = (run_a.run_id, run_b["run_id"])
        return runs if all(i in runs and not runs[i]["live"] for i in ids) else None

    runs = until(both_ended, 20, "both runs to be listed as ended")

    a, b_run = runs[run_a.run_id], runs[run_b["run_id"]]
    assert (a["flow_name"], a["state"], a["done"], a["total"]) == ("squares", "SUCCESS", 7, 7)
    assert (b_run["flow_name"], b_run["state"]) == ("broken", "FAILED")
    assert a["client"] != b_run["client"]
    # log records from the worker process reach the run
    detail = api(base, f"/{run_a.run_id}")
    assert any(lg["task"] == "total" and lg["message"] == "adding 5 squares" for lg in detail["logs"])
    assert task_of(api(base, f"/{run_b['run_id']}"), "explode")["state"] == "FAILED"


# -- a real browser -----------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_in_a_browser_the_page_shows_a_run_while_it_runs_and_then_its_success(
    embedded, chromium, tmp_path
):
    ex, base = embedded
    gate = tmp_path / "gate"
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(dfl.gated.run(executor=ex, path=str(gate), n=5)))
    runner.start()
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        page.goto(f"{base}/taskflow")
        row = page.locator("tr", has=page.get_by_role("link", name="gated"))
        row.locator(".state", has_text="RUNNING").wait_for(timeout=15_000)  # auto-refresh brings it
        row.get_by_role("link", name="gated").click()

        waiting = page.locator('tr[data-task="wait_for_file"] .state')
        waiting.filter(has_text="RUNNING").wait_for(timeout=15_000)
        assert page.locator("#run-state .state").inner_text() == "RUNNING"
        for name in ("numbers", "square[0]", "square[4]", "wait_for_file"):
            assert page.locator(f'tr[data-task="{name}"]').count() == 1, name
        assert page.locator('svg g.node[data-node="wait_for_file"][data-state="RUNNING"]').count() == 1
        text = page.inner_text("body")
        assert "s3cr3t-value" not in text and "********" in text
        page.screenshot(path=str(tmp_path / "taskflow-running.png"), full_page=True)

        gate.write_text("go")
        page.locator("#run-state .state", has_text="SUCCESS").wait_for(timeout=20_000)

        assert waiting.inner_text() == "SUCCESS"
        assert page.locator('svg g.node[data-node="square"][data-state="SUCCESS"]').count() == 1
        shot = tmp_path / "taskflow-success.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, "/tmp/taskflow-dashboard.png")
    finally:
        gate.write_text("go")  # never leave the flow waiting
        page.close()
        runner.join(timeout=40)
    assert done and done[0].state.is_successful()
    assert requested and all(u.startswith(base) for u in requested), requested
