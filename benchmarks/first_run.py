"""Where a small flow's first run spends its time, next to plain Dask.

Run from the repository root::

    python -m benchmarks.first_run                  # 3 rounds, fan-out of 100, and the CLI
    python -m benchmarks.first_run --rounds 5 --skip-cli
    python -m benchmarks.first_run --skip-breakdown  # only `taskflow run` against a plain script

Two parts.

**Breakdown** (in this process).  Each round starts a fresh ``LocalCluster``
for each way (2 worker processes, 1 thread each; start time shown apart; for
taskflow the embedded one the executor starts, as ``taskflow run`` and
``flow.run()`` do, with the client's connection included), then runs a fan-out of ``--n`` no-ops and one fan-in twice on it: the
*first* run (what ``taskflow run`` always is) and a *second* run of a new flow
object on the same executor.  Plain Dask builds the same graph and sends it with
one ``client.get``.  The order of the ways alternates from round to round.  For
taskflow, the time of each phase of the run is measured by wrapping the
functions that do it: tracing, planning, the result-store check, the run
observers (history), the dashboard link, the taskflow page (plugin install and
run announcement), the event subscription, the checks made before tasks are sent
(pickling, worker imports, versions), submitting, waiting for the tasks, and
the wait for the last state events.  Round trips to the scheduler (RPC calls
and batched-stream messages sent by the client) are counted by name.  CPU is
read per thread from ``/proc/<pid>/task/*/schedstat`` (nanoseconds; the clock
ticks of ``os.times`` move by 10 ms): the run's process (its main thread, Dask's
event loop, which runs the in-process scheduler and the client's comms, and the
history writer) and the worker processes.

**CLI, end to end** (subprocesses).  ``taskflow run examples/etl.py:etl`` from
process start to exit, against ``python benchmarks/plain_etl.py``: the same
LocalCluster and the same computation with ``dask.delayed``.  Wall time and the
CPU seconds of the whole process tree (the workers included), alternated,
medians.  The run history goes to a temporary SQLite file (still recorded),
one for the whole benchmark, created before the first timed run: what a user's
history is after their first run on a machine (the breakdown's processes share one
too).

Python bytecode is cached for the child processes (``PYTHONPYCACHEPREFIX``, a
temporary folder filled by the warm-up round; ``PYTHONDONTWRITEBYTECODE`` is
dropped for them), as an installed package has its ``.pyc`` files: with
``PYTHONDONTWRITEBYTECODE=1`` (set on the machine these numbers were first taken
on) every process, each worker included, compiles every module of taskflow and of
the benchmark from source, which cost each worker ~40 ms of CPU and the CLI's
process more.  ``--no-bytecode-cache`` measures that way.

On a loaded machine wall times are noisy: read the CPU columns and the medians.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER_KWARGS: dict[str, Any] = dict(
    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
)

__all__ = ["main"]


# -- measuring --------------------------------------------------------------------
class Phases:
    """Wall seconds and calls of wrapped functions, and messages sent to the scheduler."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self.rpc: collections.Counter[str] = collections.Counter()
        self.active = False
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        """Time every call of ``owner.attr`` under ``label`` (a property's getter too)."""
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        phases = self

        def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def inner(*args: Any, **kwargs: Any) -> Any:
                if not phases.active:
                    return fn(*args, **kwargs)
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    phases.seconds[label] += time.perf_counter() - t0
                    phases.calls[label] += 1
            return inner

        if isinstance(original, property):
            replacement: Any = property(timed(original.fget), original.fset)  # type: ignore[arg-type]
        elif isinstance(original, (classmethod, staticmethod)):
            replacement = type(original)(timed(original.__func__))
        else:
            replacement = timed(original)
        setattr(owner, attr, replacement)
        self._undo.append(lambda: setattr(owner, attr, original))

    def count_messages(self) -> None:
        """Count RPC calls to the scheduler and batched-stream messages by operation."""
        from distributed import Client
        from distributed.core import PooledRPCCall

        phases = self
        getattr_ = PooledRPCCall.__getattr__
        send = Client._send_to_scheduler

        def counted_getattr(rpc: Any, key: str) -> Any:
            if phases.active and not key.startswith("_"):
                phases.rpc[f"rpc {key}"] += 1
            return getattr_(rpc, key)

        def counted_send(client: Any, msg: dict[str, Any]) -> None:
            if phases.active:
                phases.rpc[f"stream {msg.get('op')}"] += 1
            return send(client, msg)

        PooledRPCCall.__getattr__ = counted_getattr  # type: ignore[method-assign]
        Client._send_to_scheduler = counted_send  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(PooledRPCCall, "__getattr__", getattr_))
        self._undo.append(lambda: setattr(Client, "_send_to_scheduler", send))

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.rpc.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "calls": dict(self.calls), "rpc": dict(self.rpc)}

    def undo(self) -> None:
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()


# The phases of a taskflow run, in the order they happen: (label, module, owner, attribute).
PHASES: list[tuple[str, str, str | None, str]] = [
    ("default observers (imports)", "taskflow.engine.launch", None, "install_default_observers"),
    ("tracing", "taskflow.flow", "Flow", "graph"),
    ("parameters, store settings", "taskflow.results.runs", None, "prepare_run"),
    ("parameters, store settings", "taskflow.engine.flow_runner", None, "prepare_run"),
    ("planning", "taskflow.engine.flow_runner", None, "build_plan"),
    ("result store check", "taskflow.results.runs", None, "begin_run"),
    ("result store check", "taskflow.engine.flow_runner", None, "begin_run"),
    ("dashboard link", "taskflow.executors.dask", "DaskExecutor", "dashboard_link"),
    ("observers, all hooks", "taskflow.engine.observers", None, "notify"),
    ("  history: run started", "taskflow.history.recorder", "HistoryRecorder", "run_started"),
    ("  history: events", "taskflow.history.recorder", "HistoryRecorder", "event"),
    ("  history: run finished (flush)", "taskflow.history.recorder", "HistoryRecorder", "run_finished"),
    ("  history: opening (writer thread)", "taskflow.history.recorder", "_Writer", "_open"),
    ("event subscription", "taskflow.executors.dask", None, "router_for"),
    ("taskflow page (plugin, announce)", "taskflow.dashboard.announce", "RunAnnouncer", "start"),
    ("check versions", "taskflow.executors.dask", None, "check_versions"),
    ("check pickling", "taskflow.executors.dask", None, "check_picklable"),
    ("check worker imports", "taskflow.executors.dask", None, "check_workers_import"),
    ("check workers (versions, imports)", "taskflow.executors.dask", None, "check_workers"),
    ("check resources", "taskflow.executors.dask", None, "check_resources"),
    ("submit (client.get)", "distributed", "Client", "get"),
    ("run, all of it (execute)", "taskflow.executors.dask", "DaskExecutor", "execute"),
    ("  waiting for the tasks", "taskflow.executors.dask", None, "wait"),
    ("  gather", "distributed", "Client", "gather"),
    ("  last events (end wait)", "taskflow.executors.dask_events", "EndTracker", "wait_flushed"),
    ("  last events (end wait)", "taskflow.executors.dask", "_Settle", "wait"),
]


def install_phases(phases: Phases) -> None:
    """Wrap every phase's function; one in a module not imported yet is wrapped when
    the run imports it (what a first run imports is part of its cost, as for a user)."""
    import importlib

    done: set[str] = set()
    later: dict[str, list[tuple[str, str | None, str]]] = collections.defaultdict(list)

    def wrap(mod: Any, label: str, owner: str | None, attr: str) -> None:
        target = getattr(mod, owner, None) if owner else mod
        if label in done or target is None or not hasattr(target, attr):
            return  # found where another layout had it, or renamed or gone in this version
        phases.wrap(target, attr, label)
        done.add(label)

    for label, module, owner, attr in PHASES:
        if module in sys.modules:
            wrap(sys.modules[module], label, owner, attr)
        elif module.startswith("taskflow."):
            later[module].append((label, owner, attr))
        else:
            with contextlib.suppress(ImportError):
                wrap(importlib.import_module(module), label, owner, attr)
    if later:
        finder = _WrapWhenImported(later, wrap)
        sys.meta_path.insert(0, finder)
        phases._undo.append(lambda: sys.meta_path.remove(finder))
    phases.count_messages()


class _WrapWhenImported:
    """A meta path finder that lets the usual finders find ``pending`` modules and
    wraps their phases' functions as soon as each module has run."""

    def __init__(self, pending: dict[str, list[tuple[str, str | None, str]]],
                 wrap: Callable[[Any, str, str | None, str], None]) -> None:
        self.pending, self._wrap = pending, wrap

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        loader, wraps = spec.loader, self.pending.pop(name)
        exec_module = loader.exec_module

        def exec_then_wrap(module: Any) -> None:
            exec_module(module)
            for label, owner, attr in wraps:
                self._wrap(module, label, owner, attr)

        loader.exec_module = exec_then_wrap  # type: ignore[method-assign]
        return spec


def _thread_cpu(pid: int | None = None) -> dict[int, float]:
    """CPU seconds of each thread of ``pid`` (default: this process), in nanoseconds'
    resolution (``/proc/<pid>/task/<tid>/schedstat``; the clock-tick counters of
    ``os.times`` move by 10 ms, as much as a first run's whole difference)."""
    pid = pid or os.getpid()
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    out[int(tid)] = int(f.read().split()[0]) / 1e9
    return out


def _cpu() -> float:
    if not os.path.exists("/proc/self/task"):  # not Linux: clock ticks
        t = os.times()
        return t.user + t.system
    return sum(_thread_cpu().values())


def _threads_cpu() -> dict[str, float]:
    """This process's CPU by thread role: the caller's thread, Dask's event loop (the
    in-process scheduler and the client's comms), taskflow's history writer, the rest."""
    import threading

    roles = {t.native_id: ("main" if t is threading.current_thread() else
                           "event loop" if t.name == "IO loop" else
                           "history writer" if t.name == "taskflow-history" else "other")
             for t in threading.enumerate()}
    out: dict[str, float] = collections.defaultdict(float)
    for tid, seconds in _thread_cpu().items():
        out[roles.get(tid, "other")] += seconds
    return dict(out)


def _children_cpu() -> float:
    """CPU seconds of this process's children (nannies and workers), alive ones."""
    import psutil

    total = 0.0
    for p in psutil.Process().children(recursive=True):
        per_thread = _thread_cpu(p.pid)
        if per_thread:
            total += sum(per_thread.values())
            continue
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


# -- the breakdown ----------------------------------------------------------------
def _plain_graph(n: int) -> tuple[dict[str, Any], str]:
    from benchmarks.workloads import collect, noop

    uid = uuid.uuid4().hex
    keys = [f"noop-{uid}-{i}" for i in range(n)]
    dsk: dict[str, Any] = {k: (noop, i) for i, k in enumerate(keys)}
    dsk[f"collect-{uid}"] = (collect, keys)
    return dsk, f"collect-{uid}"


def run_plain(client: Any, n: int) -> int:
    from distributed import wait

    dsk, final = _plain_graph(n)
    futures = client.get(dsk, [final], sync=False)
    wait(futures)
    return int(futures[0].result())


def run_taskflow(executor: Any, n: int) -> int:
    from benchmarks.workloads import fan

    run = fan("fan_first", n).flow().run(executor=executor)
    if not run.state.is_successful():
        raise RuntimeError(f"the taskflow run ended {run.state!r}")
    return int(run.result())


@contextlib.contextmanager
def fresh_cluster() -> Iterator[tuple[Any, float]]:
    from distributed import LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(**CLUSTER_KWARGS)
    started = time.perf_counter() - t0
    try:
        yield cluster, started
    finally:
        cluster.close()


def one_way(way: str, n: int, phases: Phases) -> dict[str, Any]:
    """First and second run of ``way`` on a fresh cluster; what each cost."""
    from distributed import Client

    from taskflow.executors import DaskExecutor

    out: dict[str, Any] = {"way": way}
    with contextlib.ExitStack() as stack:
        if way == "taskflow":  # the embedded cluster, as `taskflow run` and `flow.run()` start it
            executor: Any = DaskExecutor(cluster_kwargs=CLUSTER_KWARGS)
            stack.callback(executor.close)
            t0 = time.perf_counter()
            client = executor.client
            out["cluster_start"], out["connect"] = time.perf_counter() - t0, 0.0
        else:
            executor = None
            cluster, out["cluster_start"] = stack.enter_context(fresh_cluster())
            t0 = time.perf_counter()
            client = Client(cluster)
            out["connect"] = time.perf_counter() - t0
        try:
            for which in ("first", "second"):
                phases.reset()
                phases.active = True
                roles0 = _threads_cpu()
                cpu0, wcpu0, t0 = _cpu(), _children_cpu(), time.perf_counter()
                value = run_taskflow(executor, n) if executor else run_plain(client, n)
                wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
                workers_cpu = _children_cpu() - wcpu0
                roles = {k: v - roles0.get(k, 0.0) for k, v in _threads_cpu().items()}
                phases.active = False
                if value != sum(range(n)):
                    raise RuntimeError(f"{way} returned {value}, expected {sum(range(n))}")
                out[which] = {"wall": wall, "cpu": cpu, "workers_cpu": workers_cpu,
                              **{f"cpu_{k}": v for k, v in roles.items()},
                              **phases.snapshot()}
        finally:
            phases.active = False
            if executor is None:
                client.close()
    return out


def breakdown_in_this_process(way: str, n: int) -> dict[str, Any]:
    """One way's first and second run, measured in this (fresh) process."""
    phases = Phases()
    install_phases(phases)
    try:
        return one_way(way, n, phases)
    finally:
        phases.undo()


def _child_env(taskflow_root: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [taskflow_root, ROOT, os.environ.get("PYTHONPATH", "")] if p)}


def breakdown(rounds: int, n: int, history: str, before: str | None = None) -> list[dict[str, Any]]:
    """Each way in a fresh process per round (the first run in a process is what
    ``taskflow run`` pays), rotating which goes first.  ``before``: also run
    taskflow from that checkout (way ``before``)."""
    ways = ["plain", "taskflow"] + (["before"] if before else [])
    results = []
    for r in range(rounds + 1):  # round 0 warms the page cache, not kept
        order = ways[r % len(ways):] + ways[:r % len(ways)]
        for way in order:
            root = before if way == "before" and before else ROOT
            proc = subprocess.run(
                [sys.executable, os.path.join(ROOT, "benchmarks", "first_run.py"), "--one-way",
                 "plain" if way == "plain" else "taskflow", "--n", str(n), "--history", history],
                cwd=root, env=_child_env(root), capture_output=True, text=True, timeout=300,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"the {way} process exited {proc.returncode}:\n{proc.stderr}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["way"] = way
            if r:
                results.append(res)
            print(f"  round {r}{' (warm-up)' if not r else ''} {way:<9} first "
                  f"{res['first']['wall']:.3f} s, second {res['second']['wall']:.3f} s, "
                  f"cluster start {res['cluster_start']:.2f} s", flush=True)
    return results


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_breakdown(results: list[dict[str, Any]], n: int) -> None:
    by_way: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in results:
        by_way[r["way"]].append(r)
    ways = [w for w in ("plain", "before", "taskflow") if by_way[w]]
    print(f"\nFan-out of {n} no-ops + 1 fan-in, fresh 2-worker LocalCluster per way and "
          f"round, each in a fresh process, {len(by_way['taskflow'])} rounds, medians (s):\n")
    print(f"{'':<34}" + "".join(f"{w:>10}" for w in ways) + f"{'tf/plain':>10}")
    for label in ("cluster_start", "connect"):
        vals = [_median([r[label] for r in by_way[w]]) for w in ways]
        print(f"{label.replace('_', ' '):<34}" + "".join(f"{v:>10.3f}" for v in vals))
    for which in ("first", "second"):
        for metric, what in (("wall", "wall"), ("cpu", "CPU, client+scheduler"),
                             ("cpu_main", "  main thread"), ("cpu_event loop", "  event loop"),
                             ("cpu_history writer", "  history writer"),
                             ("workers_cpu", "CPU, workers")):
            vals = [_median([r[which].get(metric, 0.0) for r in by_way[w]]) for w in ways]
            ratio = vals[-1] / vals[0] if vals[0] else float("nan")
            print(f"{which + ' run, ' + what:<34}" + "".join(f"{v:>10.4f}" for v in vals)
                  + f"{ratio:>9.2f}x")
    for way in ways[1:]:
        for which in ("first", "second"):
            runs = by_way[way]
            print(f"\n{way} {which} run, by phase (wall s, median; calls):")
            for label in dict.fromkeys(label for label, *_ in PHASES):
                vals = [r[which]["seconds"].get(label, 0.0) for r in runs]
                calls = max(r[which]["calls"].get(label, 0) for r in runs)
                if calls:
                    print(f"  {label:<34}{_median(vals):>8.4f}   x{calls}")
            counts: collections.Counter[str] = collections.Counter()
            for r in runs:
                for k, v in r[which]["rpc"].items():
                    counts[k] = max(counts[k], v)
            print("  messages to the scheduler (max over rounds): "
                  + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    plain_msgs: collections.Counter[str] = collections.Counter()
    for r in by_way["plain"]:
        for k, v in r["first"]["rpc"].items():
            plain_msgs[k] = max(plain_msgs[k], v)
    print(f"\nplain first run messages: {', '.join(f'{k} {v}' for k, v in sorted(plain_msgs.items()))}")


# -- the CLI, end to end ----------------------------------------------------------
def _timed_process(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the process tree, and stdout of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def cli(rounds: int, history: str, before: str | None = None) -> dict[str, list[tuple[float, float]]]:
    run = [sys.executable, "-c", "from taskflow.cli import main; main()", "run", "examples/etl.py:etl"]
    ways: dict[str, tuple[list[str], str]] = {
        "taskflow run": (run, ROOT),
        "plain script": ([sys.executable, os.path.join(ROOT, "benchmarks", "plain_etl.py")], ROOT),
    }
    if before:
        ways["before"] = (run, before)
    expected = "'total': 285"
    out: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    names = list(ways)
    for r in range(rounds + 1):  # round 0 warms the page cache and creates the history
        order = names[r % len(names):] + names[:r % len(names)]
        for way in order:
            cmd, root = ways[way]
            env = {**_child_env(root), "DASK_TASKFLOW__HISTORY__URL": history}
            if way != "plain script":
                env["PYTHONPATH"] = root  # that checkout's taskflow, in the workers too
            wall, cpu, stdout = _timed_process(cmd, env, root)
            if expected not in stdout:
                raise RuntimeError(f"{way} printed {stdout!r}, expected {expected}")
            if r:
                out[way].append((wall, cpu))
            print(f"  round {r}{' (warm-up)' if not r else ''} {way:<13} {wall:.2f} s wall, "
                  f"{cpu:.2f} s CPU", flush=True)
    return out


def print_cli(out: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\nexamples/etl.py:etl end to end (process start to exit), {len(out['plain script'])}"
          " rounds, medians:\n")
    print(f"{'':<16}{'wall s':>8}{'CPU s (tree)':>14}")
    for way, vals in out.items():
        print(f"{way:<16}{_median([v[0] for v in vals]):>8.2f}{_median([v[1] for v in vals]):>14.2f}")
    for way in [w for w in out if w not in ("taskflow run", "plain script")]:
        print(f"{way + ' - plain':<16}{_median([v[0] for v in out[way]]) - _median([v[0] for v in out['plain script']]):>+8.2f}"
              f"{_median([v[1] for v in out[way]]) - _median([v[1] for v in out['plain script']]):>+14.2f}")
    tf, plain = (_median([v[0] for v in out[w]]) for w in ("taskflow run", "plain script"))
    tfc, plainc = (_median([v[1] for v in out[w]]) for w in ("taskflow run", "plain script"))
    print(f"{'difference':<16}{tf - plain:>+8.2f}{tfc - plainc:>+14.2f}   (target: wall within +0.30 s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=100, help="no-op tasks of the fan-out")
    parser.add_argument("--skip-breakdown", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also run taskflow from this checkout (e.g. /work/main), as 'before'")
    parser.add_argument("--one-way", choices=("plain", "taskflow"), help=argparse.SUPPRESS)
    parser.add_argument("--history", help=argparse.SUPPRESS)  # the children's: the parent's
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="compile every module from source in each process, as "
                             "PYTHONDONTWRITEBYTECODE=1 makes it (the default caches bytecode "
                             "in a temporary folder, as an installed package has it)")
    args = parser.parse_args(argv)
    if args.one_way is None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p)
        if not args.no_bytecode_cache:  # the children (and their workers) keep compiled modules
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="taskflow-first-run-pyc-")
    history = args.history or f"sqlite:///{tempfile.mkdtemp(prefix='taskflow-first-run-')}/history.db"
    import dask

    import taskflow  # noqa: F401 - registers the config section

    dask.config.set({"taskflow.history.url": history, "taskflow.logging.level": "warning"})
    if args.one_way:  # a child of the breakdown: one way, JSON on the last line
        print(json.dumps(breakdown_in_this_process(args.one_way, args.n)))
        return 0
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores; "
          + ("modules compiled from source in every process" if args.no_bytecode_cache else
             "bytecode cached (warm-up round) in " + os.environ["PYTHONPYCACHEPREFIX"]))
    from taskflow.history.store import HistoryStore

    HistoryStore(history).close()  # created once, as a user's history is after a first run
    if not args.skip_breakdown:
        print_breakdown(breakdown(args.rounds, args.n, history, args.before), args.n)
    if not args.skip_cli:
        print_cli(cli(args.rounds, history, args.before))
    return 0


if __name__ == "__main__":  # LocalClusters of processes need this guard
    sys.exit(main())
