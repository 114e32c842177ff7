"""A DataFrame pipeline as taskflow tasks against plain dask.dataframe, in one run.

Run from the repository root::

    python -m benchmarks.collections                 # 0.25 GB in memory: about a minute
    python -m benchmarks.collections --gb 4          # the issue's size (needs ~10 GB RAM)
    python -m benchmarks.collections --gb 1 --reps 3 --no-s3

The pipeline (:mod:`benchmarks.frames`): load a synthetic dataset made on the
workers -> clean -> two aggregations by group -> a join of their outputs.  Ways:

``plain``
    plain dask.dataframe with one ``client.persist`` of the cleaned frame;
``taskflow``
    the same steps as tasks; the cleaned frame is a task output, persisted by
    taskflow on the cluster and shared by the two aggregation tasks;
``plain+parquet`` / ``taskflow+checkpoint``
    the same, with the cleaned frame written as Parquet: plain calls
    ``to_parquet`` on its persisted frame; taskflow checkpoints the task
    (``checkpoint=True``), to local disk and to a moto S3 server.

For each run: wall time, client RSS peak growth, bytes the client received,
how many times each source partition was computed (1.00 = once), CPU seconds
of the client, the scheduler and the workers, and the share of the machine
other processes used meanwhile (wall times on a busy machine are noise; a way
that costs more CPU than the other is not).  Targets
(issue 13): taskflow within 1.1x of plain, client read under 1 MB, source once;
with checkpoints within 1.2x of ``to_parquet``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import dask
import pandas as pd
from distributed import Client

from benchmarks import frames
from benchmarks.core import Meter, SocketBytes, busy_share, fmt_bytes, local_cluster, wait_idle
from taskflow import Flow
from taskflow.executors import DaskExecutor
from taskflow.results import ResultStore


def _measure(fn: Any, meter: Meter) -> dict[str, Any]:
    gc.collect()
    out, s = meter.measure(fn)
    return {"wall": s.seconds, "rss": s.rss_peak_growth, "read": s.read_bytes, "out": out,
            "client_cpu": s.client_cpu, "scheduler_cpu": s.scheduler_cpu,
            "workers_cpu": s.workers_cpu, "others": busy_share(s)}


def _store(kind: str, tmp: str, endpoint: str | None) -> tuple[str, dict[str, Any]]:
    if kind == "local":
        return f"file://{tmp}/store", {}
    return "s3://bench-frames/store", {"client_kwargs": {"endpoint_url": endpoint}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = max(1, int(args.gb * 1e9 / frames.ROW_BYTES / args.partitions))
    tmp = tempfile.mkdtemp(prefix="tf-frames-")
    sockets = SocketBytes()
    doc: dict[str, Any] = {"gb": args.partitions * rows * frames.ROW_BYTES / 1e9,
                           "partitions": args.partitions, "rows": args.partitions * rows,
                           "runs": {}}
    stores = ["local"] + ([] if args.no_s3 else ["s3"])
    endpoint_ctx: Any = _null() if args.no_s3 else _moto()
    with endpoint_ctx as endpoint, local_cluster() as (address, pid), Client(address) as client:
        if endpoint is not None:
            import s3fs

            s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("bench-frames")
        executor = DaskExecutor(client=client)
        meter = Meter(pid, sockets)
        ways: dict[str, Any] = {}

        def counter(name: str) -> str:
            return os.path.join(tmp, f"{name}-{time.monotonic_ns()}")

        def plain_way(store: str | None = None) -> Any:
            def go(c: str) -> Any:
                target = None
                if store is not None:
                    url, opts = _store(store, tmp, endpoint)
                    target = (f"{url}/plain-{time.monotonic_ns()}", opts)
                return frames.plain(client, args.partitions, rows, c, target)
            return go

        def taskflow_way(store: str | None = None) -> Any:
            def go(c: str) -> Any:
                if store is None:
                    f = Flow("pipeline", frames.pipeline.fn)
                else:
                    url, opts = _store(store, tmp, endpoint)
                    f = Flow("pipeline", frames.pipeline_checkpointed.fn,
                             result_store=ResultStore(url, storage_options=opts))
                return f.run(parts=args.partitions, rows=rows, counter=c,
                             executor=executor).result()
            return go

        ways["plain"] = plain_way()
        ways["taskflow"] = taskflow_way()
        for s in stores:
            ways[f"plain+parquet:{s}"] = plain_way(s)
            ways[f"taskflow+checkpoint:{s}"] = taskflow_way(s)
        expected = None
        doc["runs"] = {name: [] for name in ways}
        with dask.config.set({"taskflow.logging.level": "warning"}):
            for rep in range(args.reps + 1):  # the first round is a warm-up, not kept
                order = list(ways)
                order = order[rep % len(order):] + order[:rep % len(order)]
                for name in order:
                    wait_idle(client)
                    c = counter(name)
                    m = _measure(lambda n=name, c=c: ways[n](c), meter)
                    out = m.pop("out").sort_index()
                    if expected is None:
                        expected = out
                    pd.testing.assert_frame_equal(out, expected, check_exact=False,
                                                  obj=f"the answer of {name}")
                    m["source_computed"] = frames.count_parts(c) / args.partitions
                    if rep:
                        doc["runs"][name].append(m)
                    print(f"  {'warm-up' if not rep else f'rep {rep}'} {name:28s} "
                          f"{m['wall']:7.2f} s  (CPU client {m['client_cpu']:.2f} s, workers "
                          f"{m['workers_cpu']:.2f} s; other processes {m['others']:.0%} of the "
                          "machine)", file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return doc


def _median(runs: list[dict[str, Any]], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def format_table(doc: dict[str, Any]) -> str:
    runs = doc["runs"]
    lines = [f"pipeline on {doc['gb']:.2f} GB in memory ({doc['rows']:,} rows, "
             f"{doc['partitions']} partitions); medians of {len(runs['plain'])} run(s)", ""]
    head = f"{'way':30s} {'wall (s)':>9s} {'vs plain':>9s} {'client read':>12s} " \
           f"{'client RSS':>11s} {'source x':>9s} {'CPU s: client / sched / workers':>32s} " \
           f"{'others':>7s}"
    lines += [head, "-" * len(head)]
    for name, rs in runs.items():
        base = "plain" if ":" not in name else f"plain+parquet:{name.split(':')[1]}"
        ratio = _median(rs, "wall") / _median(runs[base], "wall")
        cpu = " / ".join(f"{_median(rs, f'{who}_cpu'):.2f}" for who in ("client", "scheduler", "workers"))
        lines.append(f"{name:30s} {_median(rs, 'wall'):9.2f} {ratio:8.2f}x "
                     f"{fmt_bytes(_median(rs, 'read')):>12s} {fmt_bytes(_median(rs, 'rss')):>11s} "
                     f"{_median(rs, 'source_computed'):9.2f} {cpu:>32s} {_median(rs, 'others'):6.0%}")
    lines += ["", "targets: taskflow <= 1.1x plain, client read < 1 MB, source x 1.00; "
              "taskflow+checkpoint <= 1.2x plain+parquet",
              "others: share of the machine's CPU used by other processes during the runs "
              "(a loaded machine makes wall times noisy; CPU seconds are steadier)"]
    return "\n".join(lines)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _moto() -> Any:
    from benchmarks.results import moto_server

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    return moto_server()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.collections", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=float, default=0.25,
                   help="size of the dataset in memory, in GB (default 0.25; the issue asks 4)")
    p.add_argument("--partitions", type=int, default=0,
                   help="partitions (default: one per 64 MB, at least 8)")
    p.add_argument("--reps", type=int, default=1, help="timed repetitions (default 1)")
    p.add_argument("--no-s3", action="store_true", help="skip the moto S3 runs")
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "collections.json"))
    args = p.parse_args(argv)
    if args.partitions <= 0:
        args.partitions = max(8, int(args.gb * 1e9 / 64e6))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
