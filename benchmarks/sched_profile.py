"""Where the scheduler's memory goes for a wide map, taskflow against ``client.map``.

Run from the repository root::

    python -m benchmarks.sched_profile                 # 100,000 children
    python -m benchmarks.sched_profile --n 20000 --top 30

One LocalCluster in a helper process (as :mod:`benchmarks.wide`); for each way
(``client.map`` then taskflow's run-time map, the same work as
``benchmarks.wide``'s), a warm-up of 100, then ``tracemalloc`` is started inside
the scheduler's process (``--frames``, 25) and a scheduler plugin takes a snapshot at
the peak: when the fan-in task (the one with ``n`` dependencies) starts
processing, every child's output is in memory.  The snapshot is compared with
one taken just before the run, grouped by the innermost frame in
``distributed``, ``dask`` or ``taskflow`` (what allocated it), and each group
is put under an owner (TaskState, its sets, run specs, annotations, events,
spans...).  Printed per child, side by side.  Also: how many distinct
annotation dicts the children's TaskStates hold (one shared object, or one
each).
"""
from __future__ import annotations

import argparse
import linecache
import sys
from typing import Any

import dask
from distributed import Client

from benchmarks.core import local_cluster, wait_idle
from benchmarks.wide import _CONFIG, WAYS
from taskflow.executors import DaskExecutor

# (owner, substring of "file:line source") - the first that matches wins
_OWNERS = [
    ("annotations", "annotation"),
    ("spans extension", "spans.py"),
    ("events / log buffers", "log_event"),
    ("events / log buffers", "_log_event"),
    ("events / log buffers", "events"),
    ("transition log / stories", "transition_log"),
    ("transition log / stories", "_transition_counter"),
    ("task groups / prefixes", "TaskGroup"),
    ("task groups / prefixes", "TaskPrefix"),
    ("task groups / prefixes", "task_groups"),
    ("task groups / prefixes", "task_prefixes"),
    ("deps / dependents / waiters sets", "dependents"),
    ("deps / dependents / waiters sets", "dependencies"),
    ("deps / dependents / waiters sets", "waiters"),
    ("deps / dependents / waiters sets", "waiting_on"),
    ("who_has / has_what", "who_has"),
    ("who_has / has_what", "has_what"),
    ("who_wants / wants_what", "who_wants"),
    ("who_wants / wants_what", "wants_what"),
    ("run specs (task objects)", "_task_spec.py"),
    ("run specs (task objects)", "pickle"),
    ("run specs (task objects)", "serialize"),
    ("run specs (task objects)", "run_spec"),
    ("taskflow's own objects", "taskflow/"),
    ("TaskState objects and dicts", "TaskState"),
    ("TaskState objects and dicts", "scheduler.py"),
    ("comms / messages", "comm/"),
    ("comms / messages", "batched.py"),
    ("comms / messages", "msgpack"),
]


def _where(trace: Any) -> str:
    """The innermost frame of ``trace`` in distributed, dask or taskflow, with its source."""
    for frame in reversed(trace):
        name = frame.filename
        for lib in ("/distributed/", "/dask/", "/taskflow/", "/msgpack/"):
            if lib in name:
                line = linecache.getline(name, frame.lineno).strip()
                return f"{name[name.index(lib) + 1:]}:{frame.lineno} {line}"
    frame = trace[-1]
    return f"{frame.filename}:{frame.lineno}"


def _owner(where: str) -> str:
    for owner, needle in _OWNERS:
        if needle in where:
            return owner
    return "other"


def _start(dask_scheduler: Any, n: int, frames: int = 25) -> None:
    import tracemalloc

    from distributed.diagnostics.plugin import SchedulerPlugin

    s = dask_scheduler
    tracemalloc.start(frames)
    s._tf_profile = {"before": tracemalloc.take_snapshot(), "peak": None}

    class Peak(SchedulerPlugin):
        name = "taskflow-profile-peak"

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
            if finish != "processing" or s._tf_profile["peak"] is not None:
                return
            ts = s.tasks.get(key)
            if ts is None or len(ts.dependencies) < n:
                return
            kids = list(ts.dependencies)
            s._tf_profile["peak"] = tracemalloc.take_snapshot()
            s._tf_profile["traced"] = tracemalloc.get_traced_memory()[0]
            s._tf_profile["sharing"] = {
                "children": len(kids),
                "distinct annotations dicts": len({id(k.annotations) for k in kids}),
                "distinct span values": len({id((k.annotations or {}).get("span")) for k in kids}),
                "children with annotations": sum(1 for k in kids if k.annotations),
                "children's dependencies (sum)": sum(len(k.dependencies) for k in kids),
                "children's who_wants (sum)": sum(len(k.who_wants or ()) for k in kids),
                "task groups": len(s.task_groups), "task prefixes": len(s.task_prefixes),
                "tasks": len(s.tasks),
            }

    s.add_plugin(Peak())


def _collect(dask_scheduler: Any) -> dict[str, Any]:
    import tracemalloc

    s = dask_scheduler
    prof = s._tf_profile
    s.remove_plugin(name="taskflow-profile-peak")
    out: dict[str, Any] = {"sharing": prof.get("sharing"), "groups": {}}
    if prof["peak"] is not None:
        stats = prof["peak"].compare_to(prof["before"], "traceback")
        groups: dict[str, int] = {}
        for st in stats:
            if st.size_diff:
                w = _where(st.traceback)
                groups[w] = groups.get(w, 0) + st.size_diff
        out["groups"] = groups
    tracemalloc.stop()
    del s._tf_profile
    return out


def profile(client: Client, executor: DaskExecutor, way: str, n: int,
            frames: int = 25) -> dict[str, Any]:
    WAYS[way](client, executor, 100)  # warm-up: imports, connections, first graphs
    wait_idle(client, timeout=600)
    client.run_on_scheduler(_start, n=n, frames=frames)
    try:
        WAYS[way](client, executor, n)
    finally:
        out = client.run_on_scheduler(_collect)
    wait_idle(client, timeout=600)
    return out


def report(results: dict[str, dict[str, Any]], n: int, top: int) -> str:
    ways = list(results)
    lines = [f"scheduler memory at the peak (fan-in starting), {n:,} children, bytes per child"]
    owners: dict[str, dict[str, int]] = {}
    for way, r in results.items():
        for where, size in r["groups"].items():
            owners.setdefault(_owner(where), {}).setdefault(way, 0)
            owners[_owner(where)][way] += size
    head = f"{'owner':36s}" + "".join(f"{w:>16s}" for w in ways)
    lines += [head, "-" * len(head)]
    for owner, per in sorted(owners.items(), key=lambda kv: -max(kv[1].values())):
        lines.append(f"{owner:36s}" + "".join(f"{per.get(w, 0) / n:16.0f}" for w in ways))
    totals = {w: sum(r["groups"].values()) for w, r in results.items()}
    lines.append(f"{'total':36s}" + "".join(f"{totals[w] / n:16.0f}" for w in ways))
    for way, r in results.items():
        lines += ["", f"{way}: {r['sharing']}", f"top {top} allocation sites (B per child):"]
        for where, size in sorted(r["groups"].items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"  {size / n:8.0f}  [{_owner(where)}] {where[:150]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sched_profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="children")
    p.add_argument("--ways", default="client.map,taskflow map")
    p.add_argument("--frames", type=int, default=25, help="frames tracemalloc keeps (fewer: faster)")
    p.add_argument("--top", type=int, default=20, help="allocation sites printed per way")
    args = p.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    with dask.config.set(_CONFIG), local_cluster() as (address, _pid), Client(address) as client:
        executor = DaskExecutor(client=client)
        for way in [w for w in args.ways.split(",") if w]:
            results[way] = profile(client, executor, way, args.n, args.frames)
            print(f"{way}: done", file=sys.stderr, flush=True)
    print(report(results, args.n, args.top))
    return 0


if __name__ == "__main__":
    from benchmarks.sched_profile import main as _main  # tasks by reference

    sys.exit(_main())
