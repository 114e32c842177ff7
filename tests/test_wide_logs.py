"""Logs, the history's writer and the progress bar at the width of a million task runs.

The big histories are written through the recorder's own hooks (the events a
cluster would send), into real SQLite files; no cluster is needed for them.
"""
from __future__ import annotations

import contextlib
import io
import json
import random
import threading
import time
import tracemalloc

import dask
import pytest
from click.testing import CliRunner

from taskflow.cli import cli
from taskflow.history import streams
from taskflow.history.recorder import HistoryRecorder
from taskflow.history.store import HistoryStore, WriteBatch
from taskflow.progress import ProgressBar, RunProgress
from taskflow.runs import FlowRun
from taskflow.states import State, StateType
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

RUN = "c" * 32


def _row(name, seq, map_index=None, state="SUCCESS"):
    return dict(run_id=RUN, name=name, seq=seq, key="", map_index=map_index, state=state,
                attempts=1, message="", started_at=None, ended_at=None, worker="",
                traceback=None, result_location=None, updated_at=time.time())


def _mixed_logs(store):
    """Two maps reporting interleaved with plain tasks; logs in no order, some of no task run."""
    rng = random.Random(11)
    names = ["load"] + [f"sq[{i}]" for i in range(30)] + ["mid"] + [f"inc[{i}]" for i in range(20)]
    names += ["sq", "inc", "end"]
    rng.shuffle(names)
    rows = [_row(n, seq, int(n[n.index("[") + 1:-1]) if "[" in n else None)
            for seq, n in enumerate(names)]
    logs = []
    for i in range(300):
        task = rng.choice(names + ["", "ghost"])
        logs.append(dict(run_id=RUN, task=task, level=rng.choice([10, 20, 30]), logger="l",
                         message=f"record {i}", created=1000.0 + rng.randrange(100), worker=""))
    attempts = [dict(run_id=RUN, name=n, attempt=a, state="RETRYING", exception_type="E",
                     message=f"{n} attempt {a} failed", traceback=f"tb of {n} {a}", worker="w",
                     failed_at=1.0) for n in ("sq[3]", "load", "inc[7]") for a in (2, 1)]
    store.write(WriteBatch(started=[dict(id=RUN, flow_name="mixed", parameters="{}",
                                         state="SUCCESS", started_at=1.0, heartbeat=1.0)],
                           tasks=rows, logs=logs, attempts=attempts))
    return names


def _expected(store, task=None):
    """The order the whole-run readers give: by task run in show order, then time."""
    order = {t.name: i for i, t in enumerate(store.task_runs(RUN, task=task))}
    return sorted(store.logs(RUN, task=task), key=lambda r: order.get(r.task, -1))


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_streamed_logs_are_the_whole_runs_records_in_the_same_order(tmp_path, chunk, monkeypatch):
    _check_streams(f"sqlite:///{tmp_path / 'h.db'}", chunk, monkeypatch)


def test_streamed_logs_read_the_same_from_postgresql(postgres_url, monkeypatch):
    _check_streams(postgres_url, 7, monkeypatch)


def _check_streams(url, chunk, monkeypatch):
    with HistoryStore(url) as store:
        _mixed_logs(store)
        assert list(streams.task_run_names(store, RUN, chunk=chunk)) == [
            t.name for t in store.task_runs(RUN)]
        for together in (5000, 3):  # one query per chunk of task runs, or one per task run
            monkeypatch.setattr(streams, "_TOGETHER", together)
            for task in (None, "sq", "load", "sq[3]"):
                whole = [r.message for r in _expected(store, task)]
                assert [r.message for r in streams.logs(store, RUN, task, chunk=chunk)] == whole
                for offset in (0, 1, 13, len(whole) - 1, len(whole), len(whole) + 4):
                    got = [r.message for r in streams.logs(store, RUN, task, offset=offset, chunk=chunk)]
                    assert got == whole[offset:], (task, offset, together)
            by_time = [r.message for r in store.logs(RUN)]
            assert [r.message for r in streams.logs(store, RUN, by_time=True, chunk=chunk)] == by_time
            assert [r.message for r in streams.logs(store, RUN, by_time=True, offset=250,
                                               chunk=chunk)] == by_time[250:]
        warnings = [r.message for r in store.logs(RUN) if r.level >= 30]
        assert [r.message for r in streams.logs(store, RUN, by_time=True, min_level=30,
                                           chunk=chunk)] == warnings
        assert streams.log_total(store, RUN) == 300
        assert streams.log_total(store, RUN, min_level=30) == len(warnings)
        assert [r.message for r in streams.last_logs(store, RUN, 5)] == by_time[-5:]
        retried = [(a.name, a.attempt) for a in store.task_attempts(RUN)]
        assert [(a.name, a.attempt) for a in streams.retried_attempts(store, RUN)] == retried
        assert [a.name for a in streams.retried_attempts(store, RUN, "sq")] == ["sq[3]", "sq[3]"]


def _invoke(url, *args):
    return CliRunner().invoke(cli, ["--history", url, "logs", *args])


def test_pages_of_taskflow_logs_are_its_whole_output_cut_and_say_where_the_next_starts(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        _mixed_logs(store)
    whole = _invoke(url, "cccc")
    assert whole.exit_code == 0, whole.output
    lines = whole.stdout.splitlines()
    records = lines[:300]
    assert lines[300:302] == ["", "retried attempts:"] and "attempt 1 failed" in whole.stdout
    paged: list[str] = []
    for offset in range(0, 300, 64):
        page = _invoke(url, "cccc", "--offset", str(offset), "--limit", "64")
        assert page.exit_code == 0, page.output
        got = page.stdout.splitlines()
        paged += got[:min(64, 300 - offset)]
        if offset + 64 < 300:
            assert "retried attempts" not in page.stdout  # only after the last record
            assert (f"log records {offset + 1} to {offset + 64} of 300; next: taskflow logs "
                    f"cccccccc --offset {offset + 64} --limit 64") in page.stderr
        else:
            assert "retried attempts:" in page.stdout
    assert paged == records
    by_time = _invoke(url, "cccc", "--by-time", "--limit", "10", "--offset", "290")
    assert by_time.stdout.splitlines()[:10] == _invoke(url, "cccc", "--by-time").stdout.splitlines()[290:300]
    past = _invoke(url, "cccc", "--offset", "400")
    assert past.exit_code == 0 and "no log records from offset 400: flow run cccccccc has 300" \
        in past.stderr
    tb = _invoke(url, "cccc", "--task", "load", "-t")
    assert "--- load, attempt 1 ---\ntb of load 1" in tb.stdout


def test_taskflow_logs_refuses_bad_limits_and_names_the_tasks_of_a_run_for_an_unknown_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        _mixed_logs(store)
    for args, option in ((["--limit", "0"], "--limit"), (["--limit", "-5"], "--limit"),
                         (["--offset", "-1"], "--offset"), (["--limit", "many"], "--limit")):
        bad = _invoke(url, "cccc", *args)
        assert bad.exit_code == 2 and option in bad.output, (args, bad.output)
    typo = _invoke(url, "cccc", "--task", "lod")
    assert typo.exit_code == 2
    assert "flow run cccccccc has no task run named 'lod'; did you mean 'load'?" in typo.output
    assert "Its tasks: " in typo.output and "`taskflow show cccccccc` lists its task runs" in typo.output
    assert "ghost" not in typo.output.split("Its tasks: ")[1]  # a name of logs, not of a task run
    ghost = _invoke(url, "cccc", "--task", "ghost")  # records of it, but no task run: shown
    assert ghost.exit_code == 0 and "ghost |" in ghost.stdout


# -- written through the recorder's hooks, as a run of that width would -----------------------
class _Plan:
    def __init__(self, run_id):
        self.run = type("Run", (), {"run_id": run_id})()
        self.parameters = {}
        self.graph = json.dumps({"nodes": [{"name": "sq", "mapped": True}], "edges": [],
                                 "reference": ["sq"]})
        self.tasks = {}

    def keys_of(self, names):  # the keys of task runs (Plan.keys_of): none here
        return {}


class _Flow:
    name = "wide"


class _Executor:
    address = None

    def cancel(self, run_id, reason):
        return False


def _event(run_id, i, typ, logline=False):
    if logline:
        return {"kind": "log", "name": "taskflow.task_runs", "level": 20, "created": 1.0 + i,
                "msg": f"child {i} says hello", "run": run_id, "task": f"sq[{i}]"}
    return {"kind": "state", "run": run_id, "name": f"sq[{i}]", "key": f"sq-1-{i}", "type": typ,
            "attempt": 1, "started": 1.0, "ended": 2.0 if typ != "RUNNING" else None,
            "time": 2.0, "worker": "w", "map_index": i}


def _record_wide(url, n, run_id, logs_every=1):
    """``n`` mapped children (RUNNING, a log line, SUCCESS each), through a recorder; its writer."""
    recorder = HistoryRecorder(url)
    plan = _Plan(run_id)
    try:
        recorder.run_started(flow=_Flow(), plan=plan, executor=_Executor(), dashboard_link=None)
        writer = recorder._runs[run_id]
        for i in range(n):
            recorder.event(event=_event(run_id, i, "RUNNING"))
            if i % logs_every == 0:
                recorder.event(event=_event(run_id, i, "", logline=True))
            recorder.event(event=_event(run_id, i, "FAILED" if i == 7 else "SUCCESS"))
        states = {f"sq[{i}]": State(StateType.FAILED if i == 7 else StateType.SUCCESS, attempts=1)
                  for i in range(n)}
        states["sq"] = State(StateType.FAILED, message="1 child failed")  # only the runner knows
        recorder.run_finished(run=FlowRun("wide", run_id, {}, State(StateType.FAILED), states,
                                          None), plan=plan)
        return writer
    finally:
        recorder.close()


def test_a_flood_of_events_is_written_in_bounded_batches_with_the_queue_pushing_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with dask.config.set({"taskflow.history.batch-size": 500,
                          "taskflow.history.queue-size": 1000}):
        writer = _record_wide(url, 20_000, "d" * 32, logs_every=10)
    assert writer.largest <= 500 + 2  # a batch is cut when full (a run's end may add its own)
    assert writer.batches >= 22_000 // 500
    assert writer.queue.waits > 0  # the hooks were faster than the writer: they waited
    with HistoryStore(url) as store:  # and nothing was lost
        assert store.task_counts("d" * 32) == {"SUCCESS": 19_999, "FAILED": 2}  # 7 and sq
        assert streams.log_total(store, "d" * 32) == 2000
        assert store.get_run("d" * 32).state == "FAILED"
        page = [t.name for t in streams.unsuccessful(store, "d" * 32)]
        assert page == ["sq[7]", "sq"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_taskflow_logs_of_forty_thousand_task_runs_holds_a_chunk_not_the_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    n, run_id = 40_000, "e" * 32  # the same reader at any width: a chunk of 1,000 rows
    _record_wide(url, n, run_id)
    from taskflow.cli_logs import print_logs

    out = tmp_path / "out.txt"
    with dask.config.set({"taskflow.history.url": url}):
        with HistoryStore(url) as store:  # what reading it whole holds, for scale
            tracemalloc.start()
            whole = store.logs(run_id)
            order = {t.name: i for i, t in enumerate(store.task_runs(run_id))}
            _, whole_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert len(whole) == n and len(order) == n + 1
            del whole, order
        for args in ({}, {"by_time": True}):
            with open(out, "w") as f, contextlib.redirect_stdout(f):
                tracemalloc.start()
                print_logs(run_id[:8], **args)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            lines = out.read_text().splitlines()
            assert len(lines) == n and lines[0].endswith("sq[0] | child 0 says hello")
            assert lines[-1].endswith(f"sq[{n - 1}] | child {n - 1} says hello")
            assert peak < 20_000_000 and peak * 5 < whole_peak, (peak, whole_peak)


@pytest.mark.slow
def test_the_progress_bar_counts_a_million_events_in_constant_memory():
    class Plan:  # what the progress bar asks of a plan
        run = type("Run", (), {"run_id": "p" * 32})()
        parents = {"sq": None}

        @staticmethod
        def childless():
            return []

        @staticmethod
        def task_run_count():
            return 1_000_001

    progress = RunProgress()
    progress.run_started(flow=_Flow(), plan=Plan(), executor=None, dashboard_link=None)
    n = 1_000_000
    base = {"kind": "state", "run": "p" * 32, "attempt": 1}
    events = ({**base, "name": f"sq[{i}]", "map_index": i, "type": t}
              for i in range(n) for t in ("RUNNING", "FAILED" if i % 1000 == 0 else "SUCCESS"))
    feed = progress.event
    for i, ev in enumerate(events):
        feed(event=ev)
        if i == 1_000_000:  # child 500,000 RUNNING
            assert progress.counts() == (1_000_001, 500_000, 500, 1)
        if i == 1_800_000:  # the last 100,000 children: nothing it keeps grows (traced)
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    ours = [tracemalloc.Filter(True, "*taskflow/progress.py"),
            tracemalloc.Filter(True, "*taskflow/state_table.py")]  # not other tests' threads
    grown = sum(d.size_diff for d in after.filter_traces(ours).compare_to(
        before.filter_traces(ours), "filename"))
    assert progress.counts() == (1_000_001, n, 1000, 0)
    assert grown < 10_000, grown
    assert progress._states.nbytes() <= 2 ** 20  # all it holds: a byte per child
    for t in ("RUNNING", "SUCCESS"):  # Dask recomputing a lost result: counted once
        feed(event={**base, "name": "sq[5]", "map_index": 5, "type": t})
        assert progress.counts().done == (n - 1 if t == "RUNNING" else n)
    feed(event={**base, "name": "sq", "type": "FAILED"})  # the parent: counted by its children
    assert progress.counts() == (1_000_001, n, 1000, 0)


def test_the_progress_bar_redraws_at_most_once_an_interval_however_fast_events_come():
    class Plan:
        run = type("Run", (), {"run_id": "q" * 32})()
        parents: dict = {}
        asked = 0

        def childless(self):
            return []

        def task_run_count(self):
            Plan.asked += 1
            time.sleep(0.01)  # a plan of many nodes takes a while to count
            return 50_000

    progress = RunProgress()
    progress.run_started(flow=_Flow(), plan=Plan(), executor=None, dashboard_link=None)
    stream = io.StringIO()
    bar = ProgressBar(progress, stream=stream, interval=0.02).start()
    start = time.monotonic()
    stop = threading.Event()
    for i in range(50_000):
        progress.event(event={"kind": "state", "run": "q" * 32, "name": f"m[{i}]",
                              "map_index": i, "type": "SUCCESS"})
    took = time.monotonic() - start
    stop.set()
    bar.stop()
    draws = stream.getvalue().count("\r")
    assert draws <= took / 0.02 + 2, (draws, took)
    assert Plan.asked <= took / 0.2 + 3, (Plan.asked, took)  # every 20x its 10 ms at most
    assert stream.getvalue().rstrip().split("\r")[-1].startswith(
        "[##############################] 50000/50000 done")


# -- the server's readers ---------------------------------------------------------------------
@pytest.fixture
def served_history(tmp_path):
    """(base URL, history URL) of the server's application over a fresh SQLite history."""
    import asyncio

    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from taskflow.server.app import make_app

    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        _mixed_logs(store)
    ready, box = threading.Event(), {}

    def main():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app, ctx = make_app(url)
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        box.update(loop=loop, port=sockets[0].getsockname()[1], server=server, ctx=ctx)
        ready.set()
        loop.run_forever()
        server.stop()
        ctx.history.close()
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{box['port']}", url
    box["loop"].call_soon_threadsafe(box["loop"].stop)
    thread.join(10)


def _get(url):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_logs_api_pages_a_runs_records_in_time_order_and_refuses_bad_pages(served_history):
    base, url = served_history
    with HistoryStore(url) as store:
        whole = [r.message for r in store.logs(RUN)]
        warnings = [r.message for r in store.logs(RUN) if r.level >= 30]
    got, offset = [], 0
    while offset is not None:
        status, page = _get(f"{base}/api/runs/cccc/logs?limit=64&offset={offset}")
        assert status == 200 and page["total"] == 300 and len(page["logs"]) <= 64
        got += [r["message"] for r in page["logs"]]
        offset = page["next_offset"]
    assert got == whole
    status, page = _get(f"{base}/api/runs/cccc/logs?level=WARNING")
    assert [r["message"] for r in page["logs"]] == warnings and page["next_offset"] is None
    status, page = _get(f"{base}/api/runs/cccc/logs?offset=1000")
    assert status == 200 and page["logs"] == [] and page["total"] == 300
    for query, word in (("limit=0", "limit"), ("limit=-3", "limit"), ("limit=20000", "limit"),
                        ("offset=-1", "offset"), ("limit=x", "limit")):
        status, body = _get(f"{base}/api/runs/cccc/logs?{query}")
        assert status == 400 and word in body["error"], (query, body)
    status, run = _get(f"{base}/api/runs/cccc")
    assert status == 200 and run["log_total"] == 300 and len(run["logs"]) == 300


def test_a_big_runs_json_holds_a_page_of_task_runs_and_its_latest_log_records(tmp_path,
                                                                             monkeypatch):
    from taskflow.server import views

    monkeypatch.setattr(views, "MAX_TASKS", 100)
    monkeypatch.setattr(views, "LOGS_SHOWN", 50)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        n = 6000
        rows = [_row(f"sq[{i}]", i, i) for i in range(n)] + [_row("sq", n)]
        logs = [dict(run_id=RUN, task=f"sq[{i}]", level=20, logger="", message=f"m{i}",
                     created=float(i), worker="") for i in range(n)]
        store.write(WriteBatch(started=[dict(id=RUN, flow_name="big", parameters="{}",
                                             state="SUCCESS", started_at=1.0, heartbeat=1.0)],
                               tasks=rows, logs=logs))
        whole = views.run_view(store, RUN, task_limit=None, svg=False)  # the API's "all"
        assert len(whole["tasks"]) == 100 and whole["task_total"] == n + 1
        assert [lg["message"] for lg in whole["logs"]] == [f"m{i}" for i in range(n - 50, n)]
        assert whole["log_total"] == n
        states = views.run_states(store, RUN, task_limit=None)
        assert len(states["tasks"]) == 100 and states["task_total"] == n + 1


def test_taskflow_runs_pages_with_offset(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        store.write(WriteBatch(started=[dict(id=f"{i:02d}" * 16, flow_name="f", parameters="{}",
                                             state="SUCCESS", started_at=float(i), heartbeat=1.0)
                                        for i in range(30)]))
    page = CliRunner().invoke(cli, ["--history", url, "runs", "--limit", "5", "--offset", "20"])
    assert [line.split()[0] for line in page.stdout.splitlines()[1:]] == [
        f"{i:02d}" * 4 for i in (9, 8, 7, 6, 5)]
    past = CliRunner().invoke(cli, ["--history", url, "runs", "--offset", "30"])
    assert past.exit_code == 0 and "no flow runs from offset 30" in past.stderr
    bad = CliRunner().invoke(cli, ["--history", url, "runs", "--offset", "-1"])
    assert bad.exit_code == 2 and "--offset" in bad.output


def test_a_full_writer_queue_waits_for_its_writer_only_while_one_takes_and_drops_nothing():
    from taskflow.history.inbox import Inbox

    gone = Inbox(limit=2, patience=30)
    gone.bound = lambda: 0  # its writer ended: putting never waits
    start = time.monotonic()
    for i in range(10):
        gone.put(i)
    assert time.monotonic() - start < 1 and gone.waits == 8  # asked 8 times, never waited
    stuck = Inbox(limit=2, patience=0.2)  # a writer that takes nothing: waited for once
    start = time.monotonic()
    for i in range(10):
        stuck.put(i)
    took = time.monotonic() - start
    assert 0.2 <= took < 2 and stuck.waits == 1
    taker = Inbox(limit=3, patience=30)
    got = []

    def take():
        while len(got) < 1000:
            item = taker.take()
            if item is None:
                time.sleep(0.001)
            else:
                got.append(item)

    thread = threading.Thread(target=take)
    thread.start()
    for i in range(1000):
        taker.put(i)
        assert len(taker._items) <= 3
    thread.join(30)
    assert got == list(range(1000)) and taker.waits > 0
