"""Per-task fixed costs that load does not change: taskflow against plain Dask.

Run from the repository root::

    python -m benchmarks.per_task                    # diamond and fan-out 100, 5 runs each way
    python -m benchmarks.per_task --only diamond --reps 7
    python -m benchmarks.per_task --profile          # also cProfile the worker-side replay
    python -m benchmarks.per_task --by-value         # functions sent by value (a script's)

On one 2-worker LocalCluster in a helper process (as :mod:`benchmarks.core`), for
each workload (``diamond``: 50 x 10, 2 edges each; ``fan_100``: 100 no-ops and a
fan-in) it prints, plain Dask (one graph) next to taskflow:

* **bytes per task as sent**: the scheduler's pickle of each task's run spec, as it
  goes to a worker in its ``compute-task`` message (measured on the scheduler by
  wrapping ``Scheduler._task_to_msg``; median and total over one run);
* **messages per run**, worker to scheduler, by operation (``log-event`` is
  taskflow's event batches), and their bytes as Dask serializes them, counted on
  each worker's batched stream; messages the scheduler sent the client (the
  events it forwards), counted on the scheduler's client stream;
* **CPU per task** of the scheduler and of the workers (process CPU seconds over
  a run, divided by its tasks; median of ``--reps`` interleaved runs), and of
  the client;
* **worker-side µs per task**: every task of one run, as the scheduler sends it
  (pickled), unpickled and called on a worker in its task thread, timed with the
  thread's CPU clock (``time.thread_time``): Dask's unpickling of the spec plus
  everything taskflow does around the user's function (the state events go to a
  topic no client reads).

With ``--by-value``, the workloads' module is registered with
``cloudpickle.register_pickle_by_value`` in the client, as a flow file run by path
(``taskflow run flow.py:f``) is: taskflow then sends its tasks' code, not their
names, as for a flow defined in a script or a notebook.  (Plain Dask's graph still
names its functions: Dask pickles what the standard pickle can by reference.)

CPU seconds and counts are what carry the comparison on a loaded machine; the
wall time of the same runs is printed only for reference.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from typing import Any

import dask
from distributed import Client

import taskflow
from benchmarks.core import Meter, SocketBytes, local_cluster, run_graph, wait_idle
from benchmarks.workloads import Workload, diamond, fan
from taskflow.executors import DaskExecutor

__all__ = ["main"]


# -- on the scheduler ---------------------------------------------------------------
def _install_spec_sizes(dask_scheduler: Any) -> None:
    """Record the pickled size of every run spec the scheduler sends a worker."""
    from distributed.protocol import pickle

    if getattr(dask_scheduler, "_per_task_sizes", None) is not None:
        return
    sizes: list[int] = []
    dask_scheduler._per_task_sizes = sizes
    original = dask_scheduler._task_to_msg

    def wrapped(ts: Any) -> Any:
        sizes.append(len(pickle.dumps(ts.run_spec, protocol=5)))
        return original(ts)

    dask_scheduler._task_to_msg = wrapped


def _take_spec_sizes(dask_scheduler: Any) -> list[int]:
    sizes = dask_scheduler._per_task_sizes
    out = list(sizes)
    sizes.clear()
    return out


def _install_client_counts(dask_scheduler: Any) -> None:
    """Count the messages the scheduler sends its clients (forwarded events among them)."""
    if getattr(dask_scheduler, "_per_task_client_msgs", None) is not None:
        return
    counts = dask_scheduler._per_task_client_msgs = Counter()

    def count(comm: Any) -> None:
        if getattr(comm, "_per_task_counted", False):
            return
        comm.send = _counting(comm.send, counts)
        comm._per_task_counted = True

    dask_scheduler._per_task_count = count


def _counting(send: Any, counts: Counter[str]) -> Any:
    """``send``, counting each message it is given by its op in ``counts``."""
    def counted(*msgs: Any) -> None:
        for m in msgs:
            counts[m.get("op", "?") if isinstance(m, dict) else "?"] += 1
        send(*msgs)

    return counted


def _take_client_counts(dask_scheduler: Any) -> dict[str, int]:
    for comm in dask_scheduler.client_comms.values():
        dask_scheduler._per_task_count(comm)
    counts = dask_scheduler._per_task_client_msgs
    out = dict(counts)
    counts.clear()
    return out


# -- on the workers -----------------------------------------------------------------
def _install_stream_counts(dask_worker: Any) -> None:
    """Count the messages (by op) and bytes this worker sends the scheduler."""
    stream = dask_worker.batched_stream
    if getattr(stream, "_per_task_counts", None) is not None:
        return
    counts: Counter[str] = Counter()
    stream._per_task_counts = counts
    stream.send = _counting(stream.send, counts)


def _take_stream_counts(dask_worker: Any) -> dict[str, int]:
    stream = dask_worker.batched_stream
    out = dict(stream._per_task_counts)
    out["_bytes"] = stream.byte_count
    out["_batches"] = stream.batch_count
    stream._per_task_counts.clear()
    return out


def _replay(blobs: list[bytes], values: dict[Any, Any], profile: bool,
            span: bool = False) -> tuple[float, str]:
    """Unpickle and call every task in ``blobs`` (as Dask does), timed on this thread's CPU.

    With ``span``, inside a span's annotation, as a worker runs the tasks of a flow
    run (Dask's own cost of entering it per task is not counted).
    """
    from distributed.protocol import pickle

    with dask.annotate(span={"name": ("flow replay",), "ids": ("replay",)}) if span \
            else contextlib.nullcontext():
        return _replayed(blobs, values, profile, pickle)


def _replayed(blobs: list[bytes], values: dict[Any, Any], profile: bool,
              pickle: Any) -> tuple[float, str]:
    prof = cProfile.Profile() if profile else None
    spent = 0.0
    for blob in blobs:
        t0 = time.thread_time()
        if prof is not None:
            prof.enable()
        task = pickle.loads(blob)
        values[task.key] = task({k: values.get(k, 1) for k in task.dependencies})
        if prof is not None:
            prof.disable()
        spent += time.thread_time() - t0
    text = ""
    if prof is not None:
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out)
        st.sort_stats("tottime").print_stats(25)
        st.print_callers("_find_and_load|_annotations|__init__")
        text = out.getvalue()
    return spent / len(blobs), text


# -- the measures -------------------------------------------------------------------
def _diff(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for w, counts in after.items():
        for op, n in counts.items():
            out[op] += n - before.get(w, {}).get(op, 0) if op.startswith("_") else n
    return out


class Measures:
    """Load-independent measures of one way of running one workload."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.worker_msgs: Counter[str] = Counter()
        self.client_msgs: Counter[str] = Counter()
        self.cpu: dict[str, list[float]] = {"client": [], "scheduler": [], "workers": []}
        self.walls: list[float] = []
        self.replay_us = 0.0
        self.counted_seconds = 0.0  # wall time of the run whose messages were counted


def _plain_blobs(w: Workload) -> list[bytes]:
    from dask._task_spec import convert_legacy_graph
    from distributed.protocol import pickle

    dsk, _ = w.graph(uuid.uuid4().hex)
    return [pickle.dumps(t, protocol=5) for t in convert_legacy_graph(dsk).values()]


def _each_pickled(graph: bytes) -> list[bytes]:
    """On the scheduler: the tasks of a pickled graph, each pickled on its own."""
    from dask._task_spec import Task
    from distributed.protocol import pickle

    tasks = pickle.loads(graph)
    return [pickle.dumps(t, protocol=5) for t in tasks.values() if isinstance(t, Task)]


class Captured:
    """The graphs taskflow's Dask executor builds, kept (wrapping ``to_dask_graph``)."""

    def __init__(self) -> None:
        from taskflow.executors import dask as executor_module

        self.graphs: list[Any] = []
        self._module = executor_module
        self._original = executor_module.to_dask_graph

        def capture(*args: Any, **kwargs: Any) -> Any:
            graph = self._original(*args, **kwargs)
            self.graphs.append(graph)
            return graph

        executor_module.to_dask_graph = capture

    def blobs(self, client: Client) -> list[bytes]:
        """Each task of the kept graphs as the scheduler sends it to a worker.

        The graphs go to the scheduler pickled whole (as the client sends them), and
        the scheduler pickles each task on its own, as ``_task_to_msg`` does: what a
        task run shares with others of its window travels whole in a few tasks only.
        """
        from distributed.protocol import pickle

        out = []
        for g in self.graphs:
            tasks = g.to_dict() if hasattr(g, "to_dict") else g
            out.extend(client.run_on_scheduler(_each_pickled, pickle.dumps(dict(tasks), protocol=5)))
        self.graphs.clear()
        return out

    def close(self) -> None:
        self._module.to_dask_graph = self._original


def measure(client: Client, meter: Meter, w: Workload, executor: DaskExecutor, reps: int,
            profile: bool) -> dict[str, Measures]:
    """Every measure of ``w``, plain graph and taskflow, runs interleaved."""
    ways = {"graph": lambda: run_graph(client, w),
            "taskflow": lambda: w.flow().run(executor=executor).result()}
    out = {way: Measures() for way in ways}
    for fn in ways.values():  # warm up (imports, connections)
        wait_idle(client)
        assert fn() == w.expected
    # bytes per task and messages per run: one run each way, counted
    client.run_on_scheduler(_install_spec_sizes)
    client.run_on_scheduler(_take_spec_sizes)
    for way, fn in ways.items():
        wait_idle(client)
        before = client.run(_take_stream_counts)
        client.run_on_scheduler(_take_client_counts)
        t0 = time.perf_counter()
        assert fn() == w.expected
        out[way].counted_seconds = time.perf_counter() - t0
        wait_idle(client)  # every message of the run has left its worker
        time.sleep(0.2)
        out[way].sizes = client.run_on_scheduler(_take_spec_sizes)
        out[way].worker_msgs = _diff(client.run(_take_stream_counts), before)
        out[way].client_msgs = Counter(client.run_on_scheduler(_take_client_counts))
    # CPU per task: interleaved runs, nothing counted
    client.run_on_scheduler(_uninstall_spec_sizes)
    for rep in range(reps):
        for way in (list(ways) if rep % 2 == 0 else list(ways)[::-1]):
            wait_idle(client)
            gc.collect()
            result, sample = meter.measure(ways[way])
            assert result == w.expected
            m = out[way]
            m.walls.append(sample.seconds)
            m.cpu["client"].append(sample.client_cpu)
            m.cpu["scheduler"].append(sample.scheduler_cpu)
            m.cpu["workers"].append(sample.workers_cpu)
    # worker-side replay of one run's tasks, as pickled
    captured = Captured()
    try:
        wait_idle(client)
        w.flow().run(executor=executor).result()
        tf_blobs = captured.blobs(client)
    finally:
        captured.close()
    for way, blobs in (("graph", _plain_blobs(w)), ("taskflow", tf_blobs)):
        us, text = client.submit(_replay, blobs, {}, profile, way == "taskflow",
                                 pure=False).result()
        out[way].replay_us = us * 1e6
        if text:
            print(f"--- cProfile of the worker-side replay, {w.name}, {way}\n{text}")
    return out


def _uninstall_spec_sizes(dask_scheduler: Any) -> None:
    wrapped = dask_scheduler.__dict__.pop("_task_to_msg", None)
    del wrapped
    dask_scheduler._per_task_sizes = None


def report(w: Workload, found: dict[str, Measures]) -> str:
    g, t = found["graph"], found["taskflow"]
    n = w.n_tasks

    def cpu(m: Measures, part: str) -> float:
        return statistics.median(m.cpu[part]) / n * 1e6

    def msgs(m: Measures) -> str:
        ops = {k: v for k, v in m.worker_msgs.items() if not k.startswith("_")}
        return ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))

    rows = [
        ("tasks sent to workers", f"{len(g.sizes)}", f"{len(t.sizes)}"),
        ("bytes per task as sent, median", f"{statistics.median(g.sizes):.0f}",
         f"{statistics.median(t.sizes):.0f}"),
        ("bytes of all tasks sent, per run", f"{sum(g.sizes):,}", f"{sum(t.sizes):,}"),
        ("worker -> scheduler messages, per run", f"{sum(v for k, v in g.worker_msgs.items() if not k.startswith('_'))}",
         f"{sum(v for k, v in t.worker_msgs.items() if not k.startswith('_'))}"),
        ("  of which log-event", f"{g.worker_msgs.get('log-event', 0)}",
         f"{t.worker_msgs.get('log-event', 0)}"),
        ("  log-event per second of that run (its wall s)",
         f"0 ({g.counted_seconds:.2f})",
         f"{t.worker_msgs.get('log-event', 0) / t.counted_seconds:.0f} ({t.counted_seconds:.2f})"),
        ("worker -> scheduler writes (batches)", f"{g.worker_msgs.get('_batches', 0)}",
         f"{t.worker_msgs.get('_batches', 0)}"),
        ("worker -> scheduler bytes, per run", f"{g.worker_msgs.get('_bytes', 0):,}",
         f"{t.worker_msgs.get('_bytes', 0):,}"),
        ("scheduler -> client messages, per run", f"{sum(g.client_msgs.values())}",
         f"{sum(t.client_msgs.values())}"),
        ("worker-side us per task (unpickle + call)", f"{g.replay_us:.1f}", f"{t.replay_us:.1f}"),
        ("worker CPU us per task (process)", f"{cpu(g, 'workers'):.0f}", f"{cpu(t, 'workers'):.0f}"),
        ("scheduler CPU us per task", f"{cpu(g, 'scheduler'):.0f}", f"{cpu(t, 'scheduler'):.0f}"),
        ("client CPU us per task", f"{cpu(g, 'client'):.0f}", f"{cpu(t, 'client'):.0f}"),
        ("wall time, median (s; load-dependent)", f"{statistics.median(g.walls):.3f}",
         f"{statistics.median(t.walls):.3f}"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{w.name}: {w.shape} ({n} tasks, {len(g.walls)} runs each way for CPU)",
             f"  {'':<{width}}  {'plain graph':>12}  {'taskflow':>12}"]
    lines += [f"  {a:<{width}}  {b:>12}  {c:>12}" for a, b, c in rows]
    lines.append(f"  worker messages by op: plain: {msgs(g)}")
    lines.append(f"                         taskflow: {msgs(t)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.per_task", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="diamond,fan_100",
                        help="workloads: diamond, fan_100 (comma-separated)")
    parser.add_argument("--reps", type=int, default=5, help="runs each way for the CPU measures")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the worker-side replay")
    parser.add_argument("--by-value", action="store_true",
                        help="send the workloads' functions by value (as a script's are)")
    args = parser.parse_args(argv)
    if args.by_value:
        import cloudpickle

        from benchmarks import workloads

        cloudpickle.register_pickle_by_value(workloads)
    made = {"diamond": lambda: diamond("diamond", 50, 10), "fan_100": lambda: fan("fan_100", 100)}
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in made]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {sorted(made)}")
    sockets = SocketBytes()
    with tempfile.TemporaryDirectory(prefix="taskflow-bench-") as tmp, dask.config.set({
        "taskflow.logging.level": "warning",
        # as benchmarks.core: the history goes to a throw-away database
        "taskflow.history.url": f"sqlite:///{os.path.join(tmp, 'history.db')}",
    }), local_cluster() as (address, pid), Client(address) as client:
        meter = Meter(pid, sockets)
        client.run(_install_stream_counts)
        client.run_on_scheduler(_install_client_counts)
        executor = DaskExecutor(client=client)
        print(f"per-task fixed costs, taskflow from {os.path.dirname(taskflow.__file__)}; "
              f"functions by {'value' if args.by_value else 'reference'}; "
              f"load average {_load()}", flush=True)
        for name in names:
            w = made[name]()
            print(report(w, measure(client, meter, w, executor, args.reps, args.profile)),
                  flush=True)
        print(f"load average at the end {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
