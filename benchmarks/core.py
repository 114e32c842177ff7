"""taskflow against plain Dask, on one LocalCluster, in one run.

Run from the repository root::

    python -m benchmarks.core              # full sizes, 3 repetitions (a few minutes)
    python -m benchmarks.core --quick      # small sizes, 1 repetition (smoke test)
    python -m benchmarks.core --reps 5 --only fan_5k,chain

Each workload of :mod:`benchmarks.workloads` runs three ways on the same cluster:

``graph``
    plain Dask, one graph: ``client.get(dsk, [final_key], sync=False)``, then wait.
``submit``
    plain Dask, one ``client.submit`` per task, futures passed as arguments.
``taskflow``
    the same computation as a ``@flow``, run with ``DaskExecutor(client=client)``.

For every run it measures, in this (the client) process: wall time, peak RSS
growth, bytes read from and sent to sockets, and CPU time of the client, the
scheduler and the workers.  The LocalCluster lives in a helper
process, so the scheduler's memory, reads and CPU are not counted as the
client's (a LocalCluster runs its scheduler inside the process that starts it).

It prints one table and writes every number to ``benchmarks/results/core.json``
(``core-quick.json`` with ``--quick``).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import dask
import distributed
import psutil
from distributed import Client, wait

import taskflow
from benchmarks.workloads import (
    MAP_NAMES,
    WORKLOAD_NAMES,
    Workload,
    make_map_workloads,
    make_workloads,
)
from taskflow.executors import DaskExecutor

__all__ = ["main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
WAYS = ("graph", "submit", "taskflow")
PLAIN_WAYS = ("graph", "submit")
TARGET_RATIO = 1.1  # issue 14: within 1.1x of the best plain-Dask way, everywhere
TARGET_CLIENT_BYTES = 1_000_000  # for big_array
BUSY_SHARE = 0.10  # a run during which other processes used more of the machine is redone
REDO_LIMIT = 2
CLUSTER_KWARGS: dict[str, Any] = dict(
    n_workers=2,
    threads_per_worker=1,
    processes=True,
    host="127.0.0.1",
    dashboard_address="127.0.0.1:0",
    silence_logs=logging.ERROR,
)


# -- the cluster, in a helper process ---------------------------------------------
def _serve_cluster(conn: Connection, kwargs: dict[str, Any]) -> None:
    """Helper-process body: start the LocalCluster, send its address, wait for "stop"."""
    from distributed import LocalCluster

    with LocalCluster(**kwargs) as cluster:
        conn.send(cluster.scheduler_address)
        with contextlib.suppress(EOFError):
            conn.recv()


@contextlib.contextmanager
def local_cluster(timeout: float = 120.0, **overrides: Any) -> Iterator[tuple[str, int]]:
    """Start ONE LocalCluster in a helper process; yield its address and the process id.

    ``overrides`` replace entries of :data:`CLUSTER_KWARGS` (``silence_logs``, say).

    Worker processes must import :mod:`benchmarks.workloads`, so the repository
    root goes on ``PYTHONPATH`` first.
    """
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p
    )
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_serve_cluster, args=(theirs, {**CLUSTER_KWARGS, **overrides}),
                       name="cluster")
    proc.start()
    try:
        if not ours.poll(timeout):
            raise RuntimeError(f"the LocalCluster did not start within {timeout:g} s")
        yield ours.recv(), proc.pid  # type: ignore[misc]
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        proc.join(60)
        if proc.is_alive():
            proc.terminate()
            proc.join(10)


def _scheduler_idle(dask_scheduler: Any) -> bool:
    """True when the scheduler holds no task and no worker holds data."""
    return not dask_scheduler.tasks and all(
        not ws.has_what for ws in dask_scheduler.workers.values()
    )


def wait_idle(client: Client, timeout: float = 60.0) -> None:
    """Block until the previous run's keys are released everywhere."""
    deadline = time.monotonic() + timeout
    while not client.run_on_scheduler(_scheduler_idle):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster still holds keys after {timeout:g} s")
        time.sleep(0.05)


# -- measuring the client process -------------------------------------------------
def _status_kb(field_name: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in kB."""
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field_name}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"no {field_name} in /proc/self/status")
    return int(match.group(1))


class PeakRss:
    """Peak RSS of this process between :meth:`start` and :meth:`stop`.

    Uses the kernel's high-water mark, reset with ``/proc/self/clear_refs``
    (Linux >= 4.0): exact and free.  Where that is not allowed, a thread
    samples the RSS every 10 ms instead.
    """

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_rss = 0
        self._peak = 0

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.start_rss = _status_kb("VmHWM") * 1024  # the RSS at the reset
        except OSError:
            self.start_rss = self._peak = self._proc.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        """Peak RSS minus RSS at :meth:`start`, in bytes."""
        if self._thread is None:
            # the kernel's RSS counters are approximate (per-CPU caches): clamp at 0
            return max(0, _status_kb("VmHWM") * 1024 - self.start_rss)
        self._stop.set()
        self._thread.join()
        return max(self._peak, self._proc.memory_info().rss) - self.start_rss


class SocketBytes:
    """Counts the bytes this process reads from and writes to sockets, in every thread.

    ``psutil.Process().io_counters().read_chars`` does not see them: it counts
    ``read()``-family system calls, and Tornado (under distributed's TCP comms)
    reads sockets with ``recv_into``.  So the receive and send methods of
    :class:`socket.socket` are wrapped, once, for the whole process.
    """

    def __init__(self) -> None:
        self.read = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._install()

    def _add(self, read: int = 0, sent: int = 0) -> None:
        with self._lock:
            self.read += read
            self.sent += sent

    def _install(self) -> None:
        cls = socket.socket
        recv, recv_into, send, sendall = cls.recv, cls.recv_into, cls.send, cls.sendall
        add = self._add

        def counted_recv(sock: socket.socket, *args: Any) -> bytes:
            data = recv(sock, *args)
            add(read=len(data))
            return data

        def counted_recv_into(sock: socket.socket, *args: Any) -> int:
            n = recv_into(sock, *args)
            add(read=n)
            return n

        def counted_send(sock: socket.socket, data: Any, *args: Any) -> int:
            n = send(sock, data, *args)
            add(sent=n)
            return n

        def counted_sendall(sock: socket.socket, data: Any, *args: Any) -> None:
            sendall(sock, data, *args)
            add(sent=memoryview(data).nbytes)

        cls.recv, cls.recv_into = counted_recv, counted_recv_into  # type: ignore[method-assign,assignment]
        cls.send, cls.sendall = counted_send, counted_sendall  # type: ignore[method-assign,assignment]


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have been busy (all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


@dataclass
class Sample:
    """What one timed run cost."""

    seconds: float
    rss_peak_growth: int
    read_bytes: int
    sent_bytes: int
    client_cpu: float
    scheduler_cpu: float
    workers_cpu: float
    other_cpu: float
    redone: int = 0


def busy_share(s: Sample) -> float:
    """Share of the machine's CPU that other processes used during the run ``s``."""
    return s.other_cpu / (s.seconds * (os.cpu_count() or 1)) if s.seconds else 0.0


class Meter:
    """Measures one run: wall time, client RSS and reads, CPU of every process."""

    def __init__(self, cluster_pid: int, sockets: SocketBytes) -> None:
        self.me = psutil.Process()
        self.sockets = sockets
        self.cluster = psutil.Process(cluster_pid)  # runs the scheduler
        self.workers = [p for p in self.cluster.children(recursive=True)]

    def _cpu(self) -> tuple[float, float, float, float]:
        """CPU seconds so far: client, scheduler, workers, whole machine."""
        workers = 0.0
        for p in self.workers:
            with contextlib.suppress(psutil.Error):
                workers += _cpu_seconds(p)
        machine = _machine_busy_seconds()
        return _cpu_seconds(self.me), _cpu_seconds(self.cluster), workers, machine

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, Sample]:
        """Call ``fn`` and return its result and what it cost."""
        rss = PeakRss()
        cpu0 = self._cpu()
        rss.start()
        read0, sent0 = self.sockets.read, self.sockets.sent
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        read, sent = self.sockets.read - read0, self.sockets.sent - sent0
        growth = rss.stop()
        client, scheduler, workers, machine = (b - a for a, b in zip(cpu0, self._cpu(), strict=True))
        other = max(0.0, machine - client - scheduler - workers)
        return result, Sample(seconds, growth, read, sent, client, scheduler, workers, other)


# -- the three ways to run a workload ---------------------------------------------
def run_graph(client: Client, w: Workload) -> Any:
    """Plain Dask, one graph submission."""
    dsk, keys = w.graph(uuid.uuid4().hex)
    futures = client.get(dsk, keys, sync=False)
    wait(futures)
    return futures[0].result()


def run_submit(client: Client, w: Workload) -> Any:
    """Plain Dask, one ``client.submit`` per task."""
    return w.submit(client, uuid.uuid4().hex).result()


def run_taskflow(executor: DaskExecutor, w: Workload) -> Any:
    """taskflow: a freshly defined flow, traced and run on the same client."""
    run = w.flow().run(executor=executor)
    if not run.state.is_successful():
        raise RuntimeError(f"{w.name}: the taskflow run ended {run.state!r}")
    return run.result()


def _check(w: Workload, way: str, result: Any) -> None:
    if result != w.expected:
        raise RuntimeError(f"{w.name} via {way} returned {result!r}, expected {w.expected!r}")


# -- the benchmark ----------------------------------------------------------------
@dataclass
class WorkloadResult:
    """All samples of one workload, by way."""

    name: str
    shape: str
    n_tasks: int
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {w: [] for w in WAYS})

    def median(self, way: str, attr: str = "seconds") -> float:
        return statistics.median(getattr(s, attr) for s in self.samples[way])

    @property
    def best_plain(self) -> str:
        return min(PLAIN_WAYS, key=self.median)

    @property
    def ratio(self) -> float:
        return self.median("taskflow") / self.median(self.best_plain)

    def to_json(self) -> dict[str, Any]:
        ways = {}
        for way, samples in self.samples.items():
            ways[way] = {
                "median_seconds": self.median(way),
                "median_rss_peak_growth_bytes": self.median(way, "rss_peak_growth"),
                "median_read_bytes": self.median(way, "read_bytes"),
                "median_sent_bytes": self.median(way, "sent_bytes"),
                "median_cpu_seconds": {
                    who: self.median(way, f"{who}_cpu") for who in ("client", "scheduler", "workers")
                },
                "samples": [asdict(s) for s in samples],
            }
        return {
            "shape": self.shape,
            "n_tasks": self.n_tasks,
            "best_plain_dask": self.best_plain,
            "taskflow_over_best_plain": self.ratio,
            "spread": spread(self),
            "ways": ways,
        }


class Bench:
    """Runs workloads the three ways on one client, measuring each run."""

    def __init__(self, client: Client, cluster_pid: int, sockets: SocketBytes) -> None:
        self.client = client
        self.executor = DaskExecutor(client=client)
        self.meter = Meter(cluster_pid, sockets)
        self.runners: dict[str, Callable[[Workload], Any]] = {
            "graph": lambda w: run_graph(client, w),
            "submit": lambda w: run_submit(client, w),
            "taskflow": lambda w: run_taskflow(self.executor, w),
        }

    def _settle(self) -> None:
        wait_idle(self.client)
        gc.collect()

    def warm_up(self, w: Workload) -> None:
        """Run ``w`` once each way, untimed (imports, connections, caches, memory)."""
        for way in WAYS:
            self._settle()
            _check(w, way, self.runners[way](w))

    def run(self, w: Workload, reps: int) -> WorkloadResult:
        """Warm up, then ``reps`` (at least ``w.min_reps``) timed runs of each way.

        The order of the ways rotates each repetition.

        The warm-up comes right before the timed runs: on this VM, memory left
        untouched for minutes is slow to touch again (the 1 GB workload's
        first run after other workloads took 5 s instead of 0.3 s).
        """
        self.warm_up(w)
        out = WorkloadResult(w.name, w.shape, w.n_tasks)
        for rep in range(max(reps, w.min_reps)):
            for way in WAYS[rep % 3:] + WAYS[: rep % 3]:
                sample = self._timed(w, way)
                out.samples[way].append(sample)
                print(f"  {w.name:<10} {way:<8} rep {rep + 1}: {sample.seconds:7.3f} s",
                      file=sys.stderr, flush=True)
        return out

    def _timed(self, w: Workload, way: str) -> Sample:
        """One timed run, redone (at most ``REDO_LIMIT`` times) if the machine was busy.

        Other processes on a 2-core machine slow one run and not the next, which
        skews a median of 3; a run during which they used more than
        ``BUSY_SHARE`` of the machine is measured again.
        """
        for attempt in range(REDO_LIMIT + 1):
            self._settle()
            result, sample = self.meter.measure(lambda: self.runners[way](w))
            _check(w, way, result)
            sample.redone = attempt
            if busy_share(sample) <= BUSY_SHARE:
                break
            print(f"  {w.name:<10} {way:<8} other processes took {busy_share(sample):.0%} "
                  "of the machine; measuring again", file=sys.stderr, flush=True)
        return sample


# -- reporting --------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    """Decimal units: ``1 MB`` is 10**6 bytes (as in the target)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _verdict(r: WorkloadResult) -> str:
    ok = r.ratio <= TARGET_RATIO
    if r.name == "big_array":
        ok = ok and r.median("taskflow", "read_bytes") < TARGET_CLIENT_BYTES
    return "ok" if ok else "MISSED"


def format_table(results: list[WorkloadResult], reps: int, quick: bool) -> str:
    """The results as one text table, the three ways side by side."""
    head = [
        "taskflow vs plain Dask: one LocalCluster (2 worker processes x 1 thread), "
        f"medians of {reps} run(s) per way unless 'runs' says more"
        f"{'; QUICK: sizes scaled down' if quick else ''}",
        f"Targets: taskflow within {TARGET_RATIO}x of the best plain-Dask way on every workload; "
        f"big_array moves under {fmt_bytes(TARGET_CLIENT_BYTES)} through the client.",
        "Ways: graph = one client.get(dsk, keys, sync=False); submit = one client.submit per "
        "task; taskflow = @flow on DaskExecutor(client).",
        "",
    ]
    groups = ["", "", "", "wall time (s)", "", "", "", "", "client RSS peak growth", "", "",
              "client bytes read", "", ""]
    cols = ["workload", "tasks", "runs", "graph", "submit", "taskflow", "tf/best", "target",
            "graph", "submit", "taskflow", "graph", "submit", "taskflow"]
    rows = []
    for r in results:
        rows.append(
            [r.name, str(r.n_tasks), str(len(r.samples["taskflow"]))]
            + [f"{r.median(w):.3f}" for w in WAYS]
            + [f"{r.ratio:.2f}x", _verdict(r)]
            + [fmt_bytes(r.median(w, "rss_peak_growth")) for w in WAYS]
            + [fmt_bytes(r.median(w, "read_bytes")) for w in WAYS]
        )
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = head + [
        _group_line(groups, widths),
        _row(cols, widths),
        _row(["-" * w for w in widths], widths),
        *(_row(row, widths) for row in rows),
        "",
        "Where it went (medians): CPU seconds of client / scheduler / workers, "
        "and bytes the client sent",
    ]
    detail = [
        [r.name] + [
            f"{r.median(w, 'client_cpu'):.2f} / {r.median(w, 'scheduler_cpu'):.2f} / "
            f"{r.median(w, 'workers_cpu'):.2f}  {fmt_bytes(r.median(w, 'sent_bytes')):>8}"
            for w in WAYS
        ]
        for r in results
    ]
    dcols = ["workload", *WAYS]
    dwidths = [max(len(c), *(len(row[i]) for row in detail)) for i, c in enumerate(dcols)]
    lines += [_row(dcols, dwidths), *(_row(row, dwidths) for row in detail)]
    lines += ["", "Workloads:"] + [f"  {r.name:<10} {r.shape}" for r in results]
    lines += ["", _machine_note(results), *_noise_notes(results)]
    return "\n".join(lines)


def other_cpu_share(results: list[WorkloadResult]) -> float:
    """Share of the machine's CPU that other processes used during the timed runs."""
    samples = [s for r in results for ss in r.samples.values() for s in ss]
    capacity = sum(s.seconds for s in samples) * (os.cpu_count() or 1)
    return sum(s.other_cpu for s in samples) / capacity if capacity else 0.0


def spread(r: WorkloadResult) -> float:
    """The largest max/min ratio of one way's run times in ``r``."""
    return max(max(t) / min(t) for t in
               ([s.seconds for s in ss] for ss in r.samples.values()))


def _noise_notes(results: list[WorkloadResult]) -> list[str]:
    noisy = [r for r in results if len(next(iter(r.samples.values()))) > 1 and spread(r) > 1.5]
    return [
        f"Noisy: {r.name} (runs of one way differ up to {spread(r):.1f}x); its ratio is not "
        f"reliable: rerun with --only {r.name} --reps 7." for r in noisy
    ]


def _machine_note(results: list[WorkloadResult]) -> str:
    share = other_cpu_share(results)
    redone = sum(s.redone for r in results for ss in r.samples.values() for s in ss)
    note = f"Other processes used {share:.0%} of the machine's CPU during the kept runs"
    if share > 0.05:
        note += ": the machine was not quiet, times (and ratios) are skewed"
    if redone:
        note += f"; {redone} run(s) were measured again because of them"
    return note + "."


def _group_line(groups: list[str], widths: list[int]) -> str:
    """Headers spanning column groups: wall time, RSS, bytes read."""
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
    line = [" "] * (starts[-1] + widths[-1])
    for i, g in enumerate(groups):
        line[starts[i]: starts[i] + len(g)] = g
    return "".join(line).rstrip()


def _git_state() -> dict[str, Any]:
    """The commit measured, and whether ``taskflow/`` had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True)
        return done.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "taskflow_dirty": bool(git("status", "--porcelain", "--", "taskflow"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def write_json(path: str, results: list[WorkloadResult], args: argparse.Namespace) -> None:
    """Every sample and median, plus what machine and versions produced them."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": args.quick,
            "reps": args.reps,
            "cluster": {k: str(v) for k, v in CLUSTER_KWARGS.items()},
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "taskflow": taskflow.__version__,
            "taskflow_path": os.path.dirname(taskflow.__file__),
            "git": _git_state(),
            "other_cpu_share": other_cpu_share(results),
            "targets": {"taskflow_over_best_plain": TARGET_RATIO,
                        "big_array_client_read_bytes": TARGET_CLIENT_BYTES},
        },
        "workloads": {r.name: r.to_json() for r in results},
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


# -- command line -----------------------------------------------------------------
SUITES = {"core": (WORKLOAD_NAMES, make_workloads), "map": (MAP_NAMES, make_map_workloads)}


def parse_args(argv: list[str] | None = None, suite: str = "core") -> argparse.Namespace:
    names = SUITES[suite][0]
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{'core' if suite == 'core' else 'mapping'}",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (smoke test)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per way (default 3)")
    p.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                   help=f"run only these workloads: {', '.join(names)}")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/core.json)")
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.reps < 1:
        p.error("--reps must be at least 1")
    if args.only:
        args.only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            p.error(f"unknown workload(s) {unknown}; choose from {', '.join(names)}")
    if args.out is None:
        args.out = os.path.join(RESULTS, f"{suite}-quick.json" if args.quick else f"{suite}.json")
    return args


def main(argv: list[str] | None = None, suite: str = "core") -> int:
    """Run the benchmark; print the table; write the JSON.  Returns the exit code."""
    args = parse_args(argv, suite)
    make = SUITES[suite][1]
    workloads = [w for w in make(args.quick) if not args.only or w.name in args.only]
    started = time.perf_counter()
    sockets = SocketBytes()
    with tempfile.TemporaryDirectory(prefix="taskflow-bench-") as tmp, dask.config.set({
        "taskflow.logging.level": "warning",
        # taskflow's defaults otherwise, but its run history goes to a throw-away
        # database, not the user's (the cost of recording it is still measured)
        "taskflow.history.url": f"sqlite:///{os.path.join(tmp, 'history.db')}",
    }):
        with local_cluster() as (address, cluster_pid), Client(address) as client:
            bench = Bench(client, cluster_pid, sockets)
            print(f"cluster {address}; taskflow from {os.path.dirname(taskflow.__file__)}",
                  file=sys.stderr, flush=True)
            results = [bench.run(w, args.reps) for w in workloads]
    print(format_table(results, args.reps, args.quick))
    write_json(args.out, results, args)
    print(f"\nwrote {os.path.relpath(args.out)} in {time.perf_counter() - started:.0f} s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
