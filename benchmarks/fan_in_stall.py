"""How long the scheduler's event loop stalls while a fan-in over N finished children lands.

    python -m benchmarks.fan_in_stall --n 200000          # about 4 minutes a way on 2 cores

The scheduler takes in a task's dependencies in one step of its event loop; while it
does, it answers no one, and past ``distributed.comm.timeouts.tcp`` (30 s) clients and
workers lose their connections to it.  Each way starts a LocalCluster, maps ``inc`` over
N numbers (keys ``(base, i)``, as a taskflow map's children), waits for them, then sends
one task over all of them:

- ``dask``: ``client.submit(f, futures)``, plain Dask;
- ``group``: taskflow's :class:`~taskflow.executors.dask_groups.GroupTask` over the
  children as one group (taskflow before a700d48);
- ``parts``: the group in parts of ``PART_SIZE``, each sent as a message of its own, and
  the task over the parts (taskflow at a700d48: sent in a row, the client's 10 ms
  batching delivers them as one read, which the scheduler handles in one go);
- ``paced``: the same parts ``PART_SPACING`` apart, each a read of its own (981b3da);
- ``taken``: each part sent once the scheduler has taken in the one before (taskflow now).

A 10 ms ticker on the scheduler's loop reports its longest gap while the fan-in lands.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from distributed import Client, LocalCluster, wait

from benchmarks.stalls import Ticker, inc, run_ways
from taskflow.executors.dask_graph import named, send, taken_in
from taskflow.executors.dask_groups import GroupTask, Siblings, parts_of

WAYS = ("dask", "group", "parts", "paced", "taken")
PART_SPACING = 0.025  # the paced way's wait between two parts (taskflow at 981b3da)


def count(xs: list[int]) -> int:
    return len(xs)


def measure(way: str, n: int) -> dict[str, Any]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        base = "child-0f1e"
        futures = []
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            futures += client.map(inc, range(start, stop), key=[(base, i) for i in range(start, stop)])
        wait(futures)
        ticker = Ticker(cluster.scheduler.loop)
        time.sleep(0.2)
        ticker.reset()
        began = time.perf_counter()
        if way == "dask":
            fan_in = client.submit(count, futures, key="fan-in")
        else:
            group: Siblings = Siblings(base, n)
            parts: list[Any] = []
            if way in ("parts", "paced", "taken"):
                group, tasks = parts_of(group)
                for i, t in enumerate(tasks):
                    if way == "paced" and i:
                        time.sleep(PART_SPACING)
                    elif way == "taken" and i:
                        taken_in(client, tasks[i - 1].key)
                    parts.append(send(client, named({t.key: t}), [t.key], None)[0])
            (fan_in,) = send(client, named({"fan-in": GroupTask("fan-in", count, group)}),
                             ["fan-in"], None)
            del parts
        assert fan_in.result() == n
        return {"way": way, "n": n, "wall": time.perf_counter() - began, "stall": ticker.worst}


def main(argv: list[str] | None = None) -> int:
    return run_ways(argv, prog="python -m benchmarks.fan_in_stall", doc=__doc__, ways=WAYS,
                    default_n=100_000, counted="children", wall="fan-in wall (s)",
                    measure=measure)


if __name__ == "__main__":
    from benchmarks.fan_in_stall import main as _main  # the tasks by reference, not as __main__'s

    sys.exit(_main())
