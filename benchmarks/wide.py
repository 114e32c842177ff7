"""Wide flows: client memory per task, time to first task and wall time, against plain Dask.

Run from the repository root::

    python -m benchmarks.wide                      # 10,000 and 100,000 tasks
    python -m benchmarks.wide --sizes 10000        # one size
    python -m benchmarks.wide --million            # adds 1,000,000 (tens of minutes on 2 cores)

Each size runs these ways, one after the other, on one LocalCluster (2 workers, one
thread each, in a helper process so the scheduler is not measured as the client):

``client.map``
    ``client.map(stamp, range(n))`` then one ``client.submit(min, futures)``;
``dask.delayed``
    ``n`` delayed ``stamp`` calls and a delayed ``min``, one ``client.compute``;
``taskflow static``
    a flow calling the ``stamp`` task ``n`` times and a ``first`` task over them
    (the whole graph known ahead: one submission);
``taskflow map``
    ``stamp.map(numbers(n))``: a map over a list only known at run time.

Every task returns the time it started (``time.time()``); the final task returns
the earliest, so **time to first task** is that minus the moment the run was asked
for.  **Client growth** is the peak RSS of the client process over the run minus
its RSS before it (the kernel's high-water mark), and per task that divided by
``n``.  Each measurement runs in a fresh client process (after a warm-up of 100
tasks there), so memory one way freed is not reused by the next.  **Scheduler
peak** is the same high-water mark of the process holding the scheduler (the
LocalCluster's helper process; workers are separate processes), over the run.
Targets (issue 13): client growth under 1 GB and under 0.5x of plain Dask's,
first task within 1 s, whatever the width, scheduler within 1.2x of ``client.map``'s.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import dask
from distributed import Client

from benchmarks.core import PeakRss, SocketBytes, fmt_bytes, local_cluster, wait_idle
from taskflow import Flow, task
from taskflow.executors import DaskExecutor


def stamp(i: int) -> float:
    """A no-op task that says when it ran."""
    return time.time()


def first(xs: list[float]) -> float:
    return min(xs)


@task(name="stamp")
def stamp_task(i: int) -> float:
    return stamp(i)


@task(name="first")
def first_task(xs: list[float]) -> float:
    return first(xs)


@task(name="numbers")
def numbers_task(n: int) -> list[int]:
    return list(range(n))


def _map_body(n: int) -> float:
    return first_task(stamp_task.map(numbers_task(n)))


def way_client_map(client: Client, executor: DaskExecutor, n: int) -> float:
    futures = client.map(stamp, range(n), key=[f"stamp-{os.getpid()}-{time.monotonic_ns()}-{i}"
                                                for i in range(n)])
    return client.submit(first, futures).result()


def way_delayed(client: Client, executor: DaskExecutor, n: int) -> float:
    parts = [dask.delayed(stamp, pure=False)(i) for i in range(n)]
    return client.compute(dask.delayed(first)(parts)).result()


def way_static(client: Client, executor: DaskExecutor, n: int) -> float:
    def wide_static() -> float:  # a new flow per run: tracing is part of the run
        return first_task([stamp_task(i) for i in range(n)])

    return Flow("wide_static", wide_static).run(executor=executor).result()


def way_map(client: Client, executor: DaskExecutor, n: int) -> float:
    return Flow("wide_map", _map_body).run(n=n, executor=executor).result()


# A run-time list of a million numbers is about 36 MB: above ``taskflow.map.split-above``
# (16 MiB) each child would take its element through a task of its own (two tasks per
# element); here every child takes it from the list, as client.map's get theirs.
_CONFIG = {"taskflow.logging.level": "warning", "taskflow.map.split-above": "64 MiB"}


def _config(tmp: str) -> dict[str, Any]:
    """:data:`_CONFIG`, and the run history in a throw-away database under ``tmp``
    (recorded as a user's would be, but not into the user's own history)."""
    return {**_CONFIG, "taskflow.history.url": f"sqlite:///{os.path.join(tmp, 'history.db')}"}

WAYS = {"client.map": way_client_map, "dask.delayed": way_delayed,
        "taskflow static": way_static, "taskflow map": way_map}


def measure(client: Client, executor: DaskExecutor, way: str, n: int,
            sockets: SocketBytes) -> dict[str, Any]:
    wait_idle(client, timeout=600)
    gc.collect()
    rss = PeakRss()
    read0 = sockets.read
    rss.start()
    asked = time.time()
    start = time.perf_counter()
    earliest = WAYS[way](client, executor, n)
    wall = time.perf_counter() - start
    growth = rss.stop()
    return {"way": way, "n": n, "wall": wall, "first_task": earliest - asked,
            "growth": growth, "per_task": growth / n, "read": sockets.read - read0}


def _hwm(pid: int, reset: bool = False) -> int:
    """The peak RSS (bytes) of process ``pid`` since its last reset; ``reset`` starts anew."""
    if reset:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    with open(f"/proc/{pid}/status") as f:
        found = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def _stalls(dask_scheduler: Any, reset: bool = False) -> float:
    """Through ``run_on_scheduler``: the longest its event loop went without a turn
    (seconds) since the last reset; the first call starts a 10 ms ticker there.  Over
    ``distributed.comm.timeouts.tcp`` (30 s), clients and workers lose their connection."""
    import asyncio

    probe = getattr(dask_scheduler, "_benchmark_stalls", None)
    if probe is None:
        probe = dask_scheduler._benchmark_stalls = {"worst": 0.0, "last": time.perf_counter()}

        async def tick() -> None:
            while True:
                now = time.perf_counter()
                probe["worst"] = max(probe["worst"], now - probe["last"])
                probe["last"] = now
                await asyncio.sleep(0.01)

        dask_scheduler.loop.add_callback(tick)
    worst = probe["worst"]
    if reset:
        probe["worst"] = 0.0
    return worst


def measure_apart(address: str, scheduler_pid: int, way: str, n: int) -> dict[str, Any]:
    """:func:`measure` in a fresh client process, with the scheduler's peak around it."""
    cmd = [sys.executable, "-m", "benchmarks.wide", "--one", way, "--sizes", str(n),
           "--address", address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "ready": warmed up, about to measure
    if line.strip() != "ready":
        raise RuntimeError(f"benchmark client for {way} said {line!r}")
    before = _hwm(scheduler_pid, reset=True)
    with Client(address) as watcher:
        watcher.run_on_scheduler(_stalls, reset=True)
        out, _ = proc.communicate(timeout=7200)
        row = json.loads(out)
        row["scheduler"] = max(0, _hwm(scheduler_pid) - before)
        row["stall"] = watcher.run_on_scheduler(_stalls)
    return row


def _one(address: str, way: str, n: int) -> int:
    """The body of :func:`measure_apart`'s client process: warm up, measure, print JSON."""
    sockets = SocketBytes()
    with tempfile.TemporaryDirectory(prefix="taskflow-wide-") as tmp, \
            dask.config.set(_config(tmp)), Client(address) as client:
        executor = DaskExecutor(client=client)
        measure(client, executor, way, 100, sockets)
        wait_idle(client, timeout=600)
        print("ready", flush=True)
        row = measure(client, executor, way, n, sockets)
    print(json.dumps(row), flush=True)
    return 0


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'tasks':>9s}  {'way':16s} {'wall (s)':>9s} {'first task (s)':>15s} "
            f"{'client growth':>14s} {'per task':>9s} {'client read':>12s} {'scheduler peak':>15s} "
            f"{'longest stall (s)':>18s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        sched = fmt_bytes(r["scheduler"]) if "scheduler" in r else "-"
        lines.append(f"{r['n']:9,d}  {r['way']:16s} {r['wall']:9.2f} {r['first_task']:15.2f} "
                     f"{fmt_bytes(r['growth']):>14s} {fmt_bytes(r['per_task']):>9s} "
                     f"{fmt_bytes(r['read']):>12s} {sched:>15s} "
                     f"{r['stall'] if 'stall' in r else float('nan'):18.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.wide", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="comma-separated widths")
    p.add_argument("--million", action="store_true", help="also 1,000,000 (slow)")
    p.add_argument("--ways", default=",".join(WAYS), help=f"among: {', '.join(WAYS)}")
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "wide.json"))
    p.add_argument("--together", action="store_true",
                   help="measure every way in this process (no scheduler peak; faster)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--address", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    if args.one:
        return _one(args.address, args.one, sizes[0])
    ways = [w for w in args.ways.split(",") if w]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        p.error(f"unknown ways {unknown}; choose among {', '.join(WAYS)}")
    sockets = SocketBytes()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="taskflow-wide-") as tmp, dask.config.set(_config(tmp)), \
            local_cluster(silence_logs=logging.WARNING) as (address, pid), Client(address) as client:
        executor = DaskExecutor(client=client)
        if args.together:
            for w in ways:  # warm-up: imports on the workers, connections
                measure(client, executor, w, 100, sockets)
        for n in sizes:
            for w in ways:
                wait_idle(client, timeout=600)
                row = (measure(client, executor, w, n, sockets) if args.together
                       else measure_apart(address, pid, w, n))
                rows.append(row)
                print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_table(rows))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    from benchmarks.wide import main as _main  # the tasks by reference, not as __main__'s

    sys.exit(_main())
