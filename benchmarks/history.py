"""What recording run history costs: the same fan-out with history on and off.

Run from the repository root::

    python -m benchmarks.history                # 5,000 no-op tasks, 3 runs each way
    python -m benchmarks.history --n 1000 --reps 1

One LocalCluster of worker processes (2 workers, 1 thread each) runs the
``fan_5k`` workload of :mod:`benchmarks.workloads` (``n`` no-op tasks, then one
task taking all their outputs) as a flow, alternately with
``taskflow.history.enabled`` off and on (off, on, on, off, ...: drift hits both
alike), after one warm-up run each way.  History goes to a SQLite file in a
temporary directory.  The scheduler lives in this process, as with the default
embedded cluster, so the history's writer thread competes with it for this
process's CPU: the honest case.

It prints the median wall time each way and their ratio (target: within 1.1x),
checks that every run with history on left all its task runs in the store, and
writes the numbers to ``benchmarks/results/history.json`` (``--out`` to change).

``--million`` (or ``--records N``) measures the history alone at that width,
without a cluster: see :mod:`benchmarks.history_wide`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from typing import Any

import dask
from distributed import Client, LocalCluster

from benchmarks.workloads import fan
from taskflow.executors import DaskExecutor
from taskflow.history import open_history

__all__ = ["main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.1


def _timed(flow: Any, executor: DaskExecutor, enabled: bool) -> tuple[float, float, str]:
    """Wall time and this process's CPU time (client, scheduler, history writer) of one run."""
    with dask.config.set({"taskflow.history.enabled": enabled}):
        start, cpu = time.perf_counter(), time.process_time()
        run = flow.run(executor=executor)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not run.state.is_successful():
        raise SystemExit(f"benchmark run failed: {run.state!r}")
    return took, cpu, run.run_id


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="no-op tasks in the fan-out")
    parser.add_argument("--reps", type=int, default=3, help="timed runs each way")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "history.json"))
    parser.add_argument("--million", action="store_true",
                        help="the history alone at 1,000,000 task runs (no cluster)")
    parser.add_argument("--records", type=int, default=0,
                        help="the history alone at this many task runs (no cluster)")
    parser.add_argument("--url", default="",
                        help="with --million/--records: this history (e.g. postgresql://...) "
                             "instead of a fresh SQLite file")
    args = parser.parse_args(argv)
    if args.million or args.records:
        from benchmarks.history_wide import measure

        return measure(args.records or 1_000_000, args.url,
                       args.out.replace("history.json", "history-wide.json"))
    logging.getLogger("taskflow").setLevel(logging.WARNING)
    workload = fan("fan_5k", args.n)
    order = [i % 4 in (0, 3) for i in range(2 * args.reps)]  # off, on, on, off, ...
    times: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp, dask.config.set(
        {"taskflow.history.url": f"sqlite:///{tmp}/history.db"}
    ), LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        executor = DaskExecutor(client=client)
        for enabled in (False, True):  # warm-up: workers import, SQLAlchemy loads
            _timed(workload.flow(), executor, enabled)
        recorded = []
        for off in order:
            took, cpu, run_id = _timed(workload.flow(), executor, not off)
            times[not off].append(took)
            cpus[not off].append(cpu)
            print(f"  history {'off' if off else 'on '}: {took:6.2f} s wall, {cpu:6.2f} s CPU "
                  "of this process", flush=True)
            if not off:
                recorded.append(run_id)
        with open_history() as history:
            for run_id in recorded:
                tasks = history.task_runs(run_id)
                if len(tasks) != args.n + 1 or {t.state for t in tasks} != {"SUCCESS"}:
                    raise SystemExit(f"run {run_id[:8]} recorded {len(tasks)} task runs")
    off_s, on_s = statistics.median(times[False]), statistics.median(times[True])
    off_cpu, on_cpu = statistics.median(cpus[False]), statistics.median(cpus[True])
    ratio = on_s / off_s
    print(f"fan-out of {args.n} no-op tasks, median of {args.reps}: history off {off_s:.2f} s, "
          f"on {on_s:.2f} s, ratio {ratio:.3f} (target <= {TARGET_RATIO}); CPU of this "
          f"process off {off_cpu:.2f} s, on {on_cpu:.2f} s, ratio {on_cpu / off_cpu:.3f}")
    result = {"n_tasks": args.n + 1, "reps": args.reps, "off_s": times[False],
              "on_s": times[True], "median_off_s": off_s, "median_on_s": on_s, "ratio": ratio,
              "off_cpu_s": cpus[False], "on_cpu_s": cpus[True], "median_off_cpu_s": off_cpu,
              "median_on_cpu_s": on_cpu, "cpu_ratio": on_cpu / off_cpu,
              "target_ratio": TARGET_RATIO}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
