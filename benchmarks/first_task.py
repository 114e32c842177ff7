"""How a wide run-time map starts: a timeline of its first windows and first tasks.

Run from the repository root::

    python -m benchmarks.first_task                # 30,000 children, 3 runs
    python -m benchmarks.first_task 100000 2
    SPY=4 python -m benchmarks.first_task          # and py-spy each worker for 4 s

On a 2-worker LocalCluster, each run of ``stamp.map(numbers(n))`` prints, in time
order from ``flow.run``: when the client sent each of its first windows (wrapping
``taskflow.executors.dask.send``), when the scheduler took each graph in and moved
the first tasks to ``processing`` and ``memory`` (a scheduler plugin's
``update_graph`` and ``transition`` hooks), and the first transitions on each
worker (a worker plugin's ``transition`` hook).  The scheduler runs in this process (the
client's planning competes with it for the GIL).  A diagnosis of the time to first
task (issue 13's 1 s bar), not a measurement against plain Dask: see
:mod:`benchmarks.wide` for that.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import dask
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

import taskflow.executors.dask as tdask
from benchmarks.wide import _config, _map_body
from taskflow import Flow
from taskflow.executors import DaskExecutor


class Timeline(SchedulerPlugin):
    name = "timeline"
    def __init__(self):
        self.log = []
    def update_graph(self, scheduler, *, client, keys, tasks, **kw):
        self.log.append((time.time(), f"update_graph {len(tasks)}"))
    def transition(self, key, start, finish, *args, **kw):
        if len(self.log) < 14 and ("stamp" in str(key) or "numbers" in str(key)) and finish in ("processing", "memory"):
            self.log.append((time.time(), f"{str(key)[-14:]} {start}->{finish} {kw.get('worker', '')[-5:]}"))


class WTimeline(WorkerPlugin):
    name = "wtimeline"
    def __init__(self):
        self.log = []
    def transition(self, key, start, finish, **kw):
        if len(self.log) < 10 and "stamp" in str(key):  # the children only
            self.log.append((time.time(), f"{str(key)[-14:]} {start}->{finish}"))


def slog(dask_scheduler):
    p = dask_scheduler.plugins["timeline"]
    out = list(p.log)
    p.log.clear()
    return out


def wlog(dask_worker):
    p = dask_worker.plugins["wtimeline"]
    out = list(p.log)
    p.log.clear()
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sends = []
    orig = tdask.send
    def send(client, graph, *a, **k):
        t = time.time()
        out = orig(client, graph, *a, **k)
        sends.append((t, time.time()))
        return out
    tdask.send = send
    tmp = tempfile.mkdtemp()
    with dask.config.set(_config(tmp)):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
        client.register_plugin(Timeline())
        client.register_plugin(WTimeline())
        ex = DaskExecutor(client=client)
        Flow("wide_map", _map_body).run(n=100, executor=ex)
        spies = []
        if os.environ.get("SPY"):
            for pid in [*client.run(os.getpid).values(), os.getpid()]:  # and this process's scheduler
                spies.append(subprocess.Popen(["py-spy", "record", "-p", str(pid), "-d", os.environ["SPY"], "-r", "200",
                                               "-o", os.path.join(tmp, f"spy{pid}.txt"), "-f", "raw", "--idle"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)  # py-spy attaching: not a synchronisation
            print("py-spy output (raw, collapsed stacks) in", tmp)
        for r in range(runs):
            client.run_on_scheduler(slog)
            client.run(wlog)
            sends.clear()
            asked = time.time()
            earliest = Flow("wide_map", _map_body).run(n=n, executor=ex).result()
            rows = [(t, "client send", f"{e - asked:.3f}") for t, e in sends[:4]]
            rows += [(t, "sched", m) for t, m in client.run_on_scheduler(slog)]
            for w, lg in client.run(wlog).items():
                rows += [(t, "w" + w[-5:], m) for t, m in lg]
            print(f"--- run {r}: first task {earliest - asked:.3f}s")
            for t, who, m in sorted(rows)[:60]:
                print(f"  {t - asked:7.3f} {who:12} {m}")
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
