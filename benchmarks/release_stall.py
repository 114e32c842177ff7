"""How long the scheduler's event loop stalls while a run releases N kept keys.

    python -m benchmarks.release_stall --n 200000

A wide run keeps the keys later windows need as wanted by its client's keeper
(:mod:`taskflow.executors.dask_wants`), and releases them when no later step needs
them: a map's million children all at once, when its fan-in's parts are sent.  The
scheduler handles what a client sent over 10 ms in one step of its loop; each way
starts a LocalCluster, maps ``inc`` over N numbers (keys ``(base, i)``), has them
wanted by the keeper (their futures dropped), then releases them:

- ``at-once``: messages of 50,000 keys sent one after the other (taskflow before
  this benchmark: they reach the scheduler in one batch);
- ``paced``: :meth:`Wants.release` now (10,000 keys a message, 25 ms apart).

A 10 ms ticker on the scheduler's loop reports its longest gap from the release
until every key is forgotten.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from distributed import Client, LocalCluster, wait

from benchmarks.stalls import Ticker, inc, run_ways
from taskflow.executors.dask_wants import Wants

WAYS = ("at-once", "paced")


def _left(dask_scheduler: Any, base: str) -> int:
    return sum(1 for k in dask_scheduler.tasks if type(k) is tuple and k[0] == base)


def _only_keeper(dask_scheduler: Any, base: str) -> bool:
    return all(len(ts.who_wants or ()) == 1 for k, ts in dask_scheduler.tasks.items()
               if type(k) is tuple and k[0] == base)


def measure(way: str, n: int) -> dict[str, Any]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        base = "kept-0f1e"
        wants = Wants(client)
        for start in range(0, n, 10_000):
            stop = min(n, start + 10_000)
            keys = [(base, i) for i in range(start, stop)]
            futures = client.map(inc, range(start, stop), key=keys)
            wait(futures)
            wants.want(keys)  # as a window's kept keys are
            del futures
        while not client.run_on_scheduler(_only_keeper, base=base):
            time.sleep(0.2)
        ticker = Ticker(cluster.scheduler.loop)
        time.sleep(0.2)
        ticker.reset()
        began = time.perf_counter()
        if way == "paced":
            wants.release()
        else:
            keeper = wants._as
            for start in range(0, n, 50_000):
                client._send_to_scheduler({"op": "client-releases-keys", "client": keeper,
                                           "keys": [(base, i) for i in range(start, min(n, start + 50_000))]})
        while client.run_on_scheduler(_left, base=base):
            time.sleep(0.05)
        return {"way": way, "n": n, "wall": time.perf_counter() - began, "stall": ticker.worst}


def main(argv: list[str] | None = None) -> int:
    return run_ways(argv, prog="python -m benchmarks.release_stall", doc=__doc__, ways=WAYS,
                    default_n=200_000, counted="keys", wall="release wall (s)",
                    measure=measure)


if __name__ == "__main__":
    from benchmarks.release_stall import main as _main  # the tasks by reference

    sys.exit(_main())
