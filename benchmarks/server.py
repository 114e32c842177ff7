"""How fast `taskflow server` answers over a big history.

Fills a fresh SQLite history with 10,000 flow runs (of 20 flows, 4 task runs each)
and one run of 10,000 task runs (a mapped task), then serves it with the server's
own application in this process and times, per page, the **server time** (what the
server's access log measures: from request to last byte, on its event loop and
thread pool) and the round trip seen by a client on loopback:

* ``/`` (flows) and ``/api/flows``, ``/runs`` (first page) and ``/api/runs``, a
  filtered ``/runs?flow=...&state=FAILED``, a late page (``/runs?page=150``);
* ``/runs/<id>`` of the 10,000-task run, and its ``/api/runs/<id>?view=states`` (what
  the page polls every second while the run goes on).

It also times how long `taskflow server` takes to print its URL (a subprocess).
Targets (issue 11): flows page and runs list < 300 ms, the 10,000-task run page < 1 s,
start < 2 s.  A measurement, not a test: the exit code is 0 unless a page failed.

    python -m benchmarks.server            # ~1 min here (most of it filling the history)
    python -m benchmarks.server --quick    # 1,000 runs, 1,000 tasks
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATES = ["SUCCESS"] * 8 + ["FAILED", "CANCELLED"]


def fill(url: str, runs: int, tasks: int) -> str:
    """Write ``runs`` small runs and one run of ``tasks`` mapped children; return its id."""
    from taskflow.history.store import HistoryStore, WriteBatch

    store = HistoryStore(url)
    now = time.time() - runs * 10
    graph = json.dumps({"nodes": [{"name": "extract", "task": "extract", "mapped": False},
                                  {"name": "clean", "task": "clean", "mapped": True},
                                  {"name": "total", "task": "total", "mapped": False}],
                        "edges": [["extract", "clean", "data"], ["clean", "total", "data"]],
                        "reference": ["total"]})
    batch = WriteBatch()
    for i in range(runs):
        run_id = uuid.uuid4().hex
        state = STATES[i % len(STATES)]
        start = now + i * 10
        batch.started.append(dict(id=run_id, flow_name=f"flow{i % 20:02d}",
                                  parameters=json.dumps({"n": i}), state=state,
                                  message="" if state == "SUCCESS" else "it did not work",
                                  started_at=start, ended_at=start + 2, heartbeat=start + 2,
                                  host="bench", pid=1, graph=graph))
        for j, name in enumerate(["extract", "clean", "clean[0]", "total"]):
            batch.tasks.append(dict(run_id=run_id, name=name, seq=j, key=f"{name}-{i}",
                                    map_index=0 if name == "clean[0]" else None, state=state,
                                    attempts=1, message="", started_at=start, ended_at=start + 1,
                                    worker="tcp://127.0.0.1:1", traceback=None,
                                    result_location=None, updated_at=start + 1))
        if len(batch.started) >= 1000:
            store.write(batch)
            batch = WriteBatch()
    big = uuid.uuid4().hex
    batch.started.append(dict(id=big, flow_name="big", parameters="{}", state="SUCCESS",
                              message="", started_at=now, ended_at=now + 60, heartbeat=now + 60,
                              host="bench", pid=1, graph=graph))
    names = ["extract", "clean", *[f"clean[{k}]" for k in range(tasks)], "total"]
    for j, name in enumerate(names):
        index = int(name[6:-1]) if name.startswith("clean[") else None
        batch.tasks.append(dict(run_id=big, name=name, seq=j, key=f"{name}-big", map_index=index,
                                state="SUCCESS", attempts=1, message="", started_at=now,
                                ended_at=now + 1, worker="tcp://127.0.0.1:1", traceback=None,
                                result_location=None, updated_at=now + 1))
    store.write(batch)
    store.close()
    return big


class _Times(logging.Handler):
    """Takes the server's access log: path -> milliseconds."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = re.match(r"(\d+) (\w+) (\S+) ([\d.]+) ms", record.getMessage())
        if m:
            self.seen.append((m.group(3), float(m.group(4))))

    def next(self, count: int, path: str) -> float:
        """The server time of request number ``count`` (its log line comes after the answer)."""
        deadline = time.monotonic() + 10
        while len(self.seen) <= count and time.monotonic() < deadline:
            time.sleep(0.001)
        logged, ms = self.seen[count]
        assert logged == path, (logged, path)
        return ms


def serve_in_thread(url: str) -> tuple[int, threading.Event]:
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from taskflow.server.app import make_app

    ready, port = threading.Event(), []

    def main() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        app, _ctx = make_app(url)
        sockets = bind_sockets(0, "127.0.0.1")
        HTTPServer(app).add_sockets(sockets)
        port.append(sockets[0].getsockname()[1])
        ready.set()
        asyncio.get_event_loop().run_forever()

    threading.Thread(target=main, daemon=True).start()
    ready.wait(30)
    return port[0], ready


def startup_time(url: str) -> float:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "taskflow.cli", "server", "--port", "0",
                             "--history", url], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    line = proc.stdout.readline()
    took = time.monotonic() - started
    proc.terminate()
    proc.wait(10)
    assert line.startswith("taskflow server at"), line
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    runs = args.runs or (1000 if args.quick else 10_000)
    tasks = args.tasks or (1000 if args.quick else 10_000)
    folder = tempfile.mkdtemp(prefix="taskflow-server-bench-")
    url = f"sqlite:///{folder}/history.db"
    t0 = time.monotonic()
    big = fill(url, runs, tasks)
    print(f"history: {runs:,} runs of 20 flows + one run of {tasks:,} task runs, written in "
          f"{time.monotonic() - t0:.1f} s ({url})")
    times = _Times()
    log = logging.getLogger("taskflow.server")
    log.addHandler(times)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    port, _ = serve_in_thread(url)
    base = f"http://127.0.0.1:{port}"
    pages = [("flows page", "/", 0.3), ("flows API", "/api/flows", 0.3),
             ("runs page", "/runs", 0.3), ("runs API", "/api/runs?limit=50", 0.3),
             ("runs filtered", "/runs?flow=flow07&state=FAILED", 0.3),
             ("runs page 150", "/runs?page=150", 0.3),
             (f"run of {tasks:,} tasks", f"/runs/{big}", 1.0),
             ("its polled states", f"/api/runs/{big}?view=states", 1.0)]
    print(f"\n{'page':<22}{'server ms (median)':>20}{'max':>8}{'client ms':>11}{'bytes':>10}"
          f"{'target':>9}")
    ok = True
    asked = 0

    def get(path: str) -> tuple[float, float, int]:
        nonlocal asked, ok
        t = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as r:
            body = r.read()
            ok = ok and r.status == 200
        client_ms = (time.perf_counter() - t) * 1000
        asked += 1
        return times.next(asked - 1, path.split("?")[0]), client_ms, len(body)

    for _, path, _ in pages:  # warm the database's and the templates' caches
        get(path)
    for label, path, target in pages:
        server, client = [], []
        for _ in range(args.reps):
            s_ms, c_ms, size = get(path)
            server.append(s_ms)
            client.append(c_ms)
        med = statistics.median(server)
        print(f"{label:<22}{med:>20.1f}{max(server):>8.1f}{statistics.median(client):>11.1f}"
              f"{size:>10,}{'<' + str(int(target * 1000)):>9}"
              f"{'' if med < target * 1000 else '  MISSED'}")
    print(f"\n`taskflow server` printed its URL after {startup_time(url):.2f} s (target < 2 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
