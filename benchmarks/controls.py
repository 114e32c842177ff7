"""What state hooks and concurrency limits cost per task run.

Run from the repository root::

    python -m benchmarks.controls               # 1,000 no-op mapped children, 3 runs each way
    python -m benchmarks.controls --n 500 --reps 1

One LocalCluster of worker processes (2 workers, 1 thread each) runs a map of
``n`` no-op children three ways, interleaved (drift hits every way alike), after
one warm-up run each:

* ``plain``: no hooks, no tags;
* ``hook``: each child has a no-op ``on_completion`` hook (one short thread per call);
* ``tag``: each child carries a tag with a limit it never reaches (it never
  waits: the cost is one semaphore acquire and one release, two round trips to
  the scheduler).

It prints the median wall time of each way and the extra milliseconds per task
run over ``plain``, and writes the numbers to ``benchmarks/results/controls.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from typing import Any

import dask
from distributed import Client, LocalCluster

from taskflow import flow, task
from taskflow.executors import DaskExecutor

__all__ = ["main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _noop_hook(task: Any, task_run: Any, state: Any) -> None:
    pass


@task
def noop(i: int) -> int:
    return i


hooked = noop.with_options(name="hooked", on_completion=[_noop_hook])
tagged = noop.with_options(name="tagged", tags=["bench_free"])


def _flow(kind: str, n: int) -> Any:
    t = {"plain": noop, "hook": hooked, "tag": tagged}[kind]

    @flow(name=f"controls_{kind}")
    def controls():
        return t.map(list(range(n)))

    return controls


def _timed(kind: str, n: int, executor: DaskExecutor) -> float:
    limit = {"bench_free": 1_000_000}
    f = _flow(kind, n)
    with dask.config.set({"taskflow.concurrency.limits": limit, "taskflow.history.enabled": False}):
        start = time.perf_counter()
        run = f.run(executor=executor)
        took = time.perf_counter() - start
    if not run.state.is_successful():
        raise SystemExit(f"benchmark run {kind} failed: {run.state!r}")
    return took


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="mapped no-op children")
    parser.add_argument("--reps", type=int, default=3, help="timed runs each way")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "controls.json"))
    args = parser.parse_args(argv)
    logging.getLogger("taskflow").setLevel(logging.WARNING)
    kinds = ["plain", "hook", "tag"]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        executor = DaskExecutor(client=client)
        for kind in kinds:  # warm-up: workers import, semaphores are registered
            _timed(kind, min(args.n, 50), executor)
        for rep in range(args.reps):
            for kind in kinds if rep % 2 == 0 else reversed(kinds):
                took = _timed(kind, args.n, executor)
                times[kind].append(took)
                print(f"  {kind:9s} {took:6.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    extra = {k: (med[k] - med["plain"]) / args.n * 1000 for k in kinds}
    print(f"map of {args.n} no-op children, median of {args.reps}: " + ", ".join(
        f"{k} {med[k]:.2f} s ({extra[k]:+.2f} ms/task)" for k in kinds))
    result = {"n_tasks": args.n, "reps": args.reps, "times_s": times, "median_s": med,
              "extra_ms_per_task": extra}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
