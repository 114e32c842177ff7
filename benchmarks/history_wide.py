"""The run history at a million task runs: writing them, then reading them back.

Run from the repository root::

    python -m benchmarks.history --million          # 1,000,000 task runs (a few minutes)
    python -m benchmarks.history --records 100000   # another width
    python -m benchmarks.history --million --url postgresql://user@127.0.0.1:5432/db

No cluster: the events a run of ``n`` mapped children would send (each child
RUNNING, then SUCCESS some 200 children later, as a busy cluster reports them;
every tenth child logs one line) go through the real recording path, the
process's :class:`~taskflow.history.recorder.HistoryRecorder` hooks
(``run_started``, ``event`` for each message, ``run_finished``), into a fresh
SQLite file (or ``--url``), as fast as this process can make them: the worst
case for the writer, which must then push back (a bounded queue) rather than
hold them all.

Printed:

* **writing**: events per second through the hooks until ``run_finished``
  returned (everything written), the transactions the writer made and the rows
  in the largest, how often the hooks waited for room (back-pressure), and this
  process's peak RSS growth (the kernel's high-water mark, reset before);
* **none lost**: the rows counted in the database (task runs, SUCCESS ones,
  log records) against what was sent;
* **reading**: ``taskflow runs --limit 1`` (the baseline: what starting the
  command costs), ``taskflow logs RUN`` (every record, to ``/dev/null``),
  ``taskflow logs RUN --by-time --offset ... --limit 100`` and ``taskflow show RUN
  --offset <last page>``, each in its own process: wall time, CPU time and peak RSS
  (the command's own high-water mark, ``VmHWM``, read as it exits).

The numbers go to ``benchmarks/results/history-wide.json``.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

from benchmarks.core import PeakRss
from taskflow.engine.events import KIND
from taskflow.history.recorder import HistoryRecorder
from taskflow.history.store import HistoryStore
from taskflow.states import State, StateType

__all__ = ["measure"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAG = 200  # a child's SUCCESS comes this many children after its RUNNING
_LOG_EVERY = 10


class _Flow:
    name = "wide_history"


class _RunInfo:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id


class _Plan:
    """What the recorder reads of a plan (a graph already described, no tasks)."""

    def __init__(self, run_id: str) -> None:
        self.run = _RunInfo(run_id)
        self.parameters: dict[str, Any] = {"n": 0}
        self.graph = json.dumps({"nodes": [{"name": "square", "mapped": True}], "edges": [],
                                 "reference": ["square"]})
        self.tasks: dict[str, Any] = {}


class _Executor:
    address = None

    def __repr__(self) -> str:
        return "<benchmark>"

    def cancel(self, run_id: str, reason: str) -> bool:
        return False


class _States(Mapping[str, State]):
    """The flow runner's final states, made as they are read (not held)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.state = State(StateType.SUCCESS, attempts=1)

    def __getitem__(self, name: str) -> State:
        return self.state

    def __iter__(self) -> Iterator[str]:
        return (f"square[{i}]" for i in range(self.n))

    def __len__(self) -> int:
        return self.n

    def items(self) -> Iterator[tuple[str, State]]:  # type: ignore[override]
        return ((f"square[{i}]", self.state) for i in range(self.n))


def _event(run_id: str, i: int, kind: str, now: float) -> dict[str, Any]:
    msg = {"kind": KIND, "run": run_id, "name": f"square[{i}]", "key": f"square-ab12-{i}",
           "type": kind, "message": "", "attempt": 1, "started": now,
           "ended": now if kind == "SUCCESS" else None, "time": now, "worker": "tcp://127.0.0.1:1",
           "map_index": i}
    return msg


def _write(n: int, url: str) -> dict[str, Any]:
    from taskflow.runs import FlowRun

    recorder = HistoryRecorder(url)
    run_id = f"{os.getpid():08x}" + "0" * 24
    plan = _Plan(run_id)
    HistoryStore(url).close()  # tables made and SQLAlchemy imported before the clock
    rss = PeakRss()
    rss.start()
    start = time.perf_counter()
    cpu = time.process_time()
    recorder.run_preparing(flow=_Flow(), plan=plan)
    recorder.run_started(flow=_Flow(), plan=plan, executor=_Executor(), dashboard_link=None)
    event = recorder.event
    sent = logs = 0
    for i in range(n + _LAG):
        now = time.time()
        if i < n:
            event(event=_event(run_id, i, "RUNNING", now))
            sent += 1
        done = i - _LAG
        if done >= 0:
            if done % _LOG_EVERY == 0:
                event(event={"kind": "log", "name": "taskflow.task_runs", "level": 20,
                             "msg": f"child {done} squared its number", "created": now,
                             "flow_name": "wide_history", "run": run_id,
                             "task": f"square[{done}]", "process": 1, "thread": "t"})
                logs += 1
            event(event=_event(run_id, done, "SUCCESS", now))
            sent += 1
    end = State(StateType.SUCCESS, message=f"{n} task runs")
    recorder.run_finished(run=FlowRun("wide_history", run_id, {}, end, _States(n), None),
                          plan=plan)
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = rss.stop()
    writer = next(iter(recorder._writers.values()))
    batches, largest, waits = writer.batches, writer.largest, writer.queue.waits
    recorder.close()
    with HistoryStore(url) as store:
        counts = store.task_counts(run_id)
        run = store.get_run(run_id)
        from taskflow.history.streams import log_total

        stored_logs = log_total(store, run_id)
    return {"task_runs": n, "events": sent + logs, "log_records": logs, "seconds": took,
            "cpu_seconds": cpu, "events_per_s": (sent + logs) / took,
            "task_runs_per_s": n / took, "transactions": batches, "largest_batch_rows": largest,
            "back_pressure_waits": waits, "peak_rss_growth": peak,
            "stored_task_runs": sum(counts.values()), "stored_success": counts.get("SUCCESS", 0),
            "stored_logs": stored_logs, "run_state": run.state, "run_id": run_id}


_PEAK_AT_EXIT = (  # the command's own high-water mark (VmHWM: of its process after exec)
    "import atexit, sys\n"
    "def peak():\n"
    "    line = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
    "    sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from taskflow.cli import main\n"
    "main(sys.argv[1:])\n")


def _cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cli(url: str, *args: str) -> tuple[float, float, int, int]:
    """Wall time, CPU time, peak RSS (bytes) and exit code of one ``taskflow`` command."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    cpu = _cpu_of_children()
    start = time.perf_counter()
    with open(os.devnull, "w") as out:
        proc = subprocess.run([sys.executable, "-c", _PEAK_AT_EXIT, "--history", url, *args],
                              stdout=out, stderr=subprocess.PIPE, env=env, timeout=3600, text=True)
    took = time.perf_counter() - start
    found = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK ")]
    return (took, _cpu_of_children() - cpu, int(found[-1].split()[1]) * 1024 if found else 0,
            proc.returncode)


def _mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB"


def measure(n: int, url: str = "", out: str = "") -> dict[str, Any]:
    """Write ``n`` task runs through the recorder, count them, read them back; print it."""
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{tmp}/history.db"
        print(f"writing {n:,} task runs ({2 * n:,} state events, {n // _LOG_EVERY:,} log "
              f"records) through the recorder into {url.split('@')[-1]} ...", flush=True)
        w = _write(n, url)
        lost = n - w["stored_task_runs"]
        print(f"  {w['seconds']:.1f} s ({w['cpu_seconds']:.1f} s CPU), {w['events_per_s']:,.0f} "
              f"events/s, {w['task_runs_per_s']:,.0f} task runs/s; {w['transactions']:,} "
              f"transactions, the largest {w['largest_batch_rows']:,} rows; the hooks waited "
              f"for room {w['back_pressure_waits']:,} times; peak RSS growth "
              f"{_mb(w['peak_rss_growth'])} ({w['peak_rss_growth'] / n:.0f} B per task run)")
        print(f"  stored: {w['stored_task_runs']:,} task runs ({w['stored_success']:,} SUCCESS), "
              f"{w['stored_logs']:,} log records, run {w['run_state']}: "
              f"{'none lost' if not lost and w['stored_logs'] == w['log_records'] else 'LOST ROWS'}")
        reads = {}
        short = w["run_id"][:8]
        page = max(n - 1000, 0)
        for label, args in (
            ("runs --limit 1 (baseline)", ["runs", "--limit", "1"]),
            ("logs (all, by task run)", ["logs", short]),
            ("logs --by-time, last 100", ["logs", short, "--by-time", "--offset",
                                          str(max(w["log_records"] - 100, 0)), "--limit", "100"]),
            ("logs --task square[<last>]", ["logs", short, "--task", f"square[{n - 1}]"]),
            (f"show --offset {page:,}", ["show", short, "--offset", str(page)]),
        ):
            took, cpu, peak, code = _cli(url, *args)
            reads[label] = {"seconds": took, "cpu_seconds": cpu, "peak_rss": peak,
                            "exit_code": code}
            print(f"  taskflow {label}: {took:.1f} s ({cpu:.1f} s CPU), peak RSS {_mb(peak)}"
                  + ("" if code == 0 else f", exit code {code}"), flush=True)
    result = {"write": w, "reads": reads}
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    return result
