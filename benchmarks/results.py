"""Checkpoint throughput, next to writing the same bytes with fsspec directly.

Run from the repository root::

    python -m benchmarks.results            # 1 GB to local disk and to moto, 1,000-task fan-out
    python -m benchmarks.results --quick    # 64 MB and 200 tasks (smoke test)

On one processes LocalCluster (2 workers, 1 thread each), in one run:

``local`` / ``s3``
    ``--chunks`` tasks each return ``--total / --chunks`` bytes.  Ways run in
    alternation, ``--reps`` times each:

    * ``fsspec``: the task writes its bytes itself, ``fs.pipe_file(path, data)``
      (no taskflow result store at all);
    * ``checkpoint``: the task just returns the bytes, ``@task(checkpoint=True)``;
      taskflow's worker-side runner pickles, frames (XXH3 checksum), and writes
      them atomically (local: temp file, flush, rename; S3: one upload), with
      the default settings;
    * ``fsspec+fsync`` (local only): the task writes its bytes and fsyncs them;
    * ``checkpoint+fsync`` (local only): checkpoints to ``ResultStore(...,
      fsync=True)`` (``taskflow.results.fsync: true``): durable across a machine
      crash, compared with ``fsspec+fsync``.

    S3 is a moto server in its own process on 127.0.0.1.  Target: checkpoint
    within 1.2x of fsspec.
``fanout``
    ``--tasks`` no-op tasks and one fan-in, checkpointing off: plain Dask (one
    graph), taskflow without a store, taskflow with a store configured (nothing
    asked, so nothing may be written: the store is checked to be empty), and, for
    contrast, taskflow with ``taskflow.results.checkpoint: true``.

Prints a table and writes ``benchmarks/results/results.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dask
import fsspec
from distributed import Client, LocalCluster

from taskflow import Flow, flow, task, unmapped
from taskflow.executors import DaskExecutor

__all__ = ["main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
TARGET = 1.2
MB = 2**20


# -- tasks (module level: workers import them by reference) ------------------------------
def _payload(i: int, size: int) -> bytes:
    return bytes([i % 251]) * size


@task
def direct(i: int, size: int, url: str, options: dict[str, Any], fsync: bool = False) -> bytes:
    data = _payload(i, size)
    fs, root = fsspec.core.url_to_fs(url, **options)
    path = f"{root}/direct/{i}.bin"
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        fs.makedirs(os.path.dirname(path), exist_ok=True)
    if fsync:  # the same bytes, made durable (what a checkpoint does before its rename)
        with fs.open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    else:
        fs.pipe_file(path, data)
    return data


@task(checkpoint=True)
def checkpointed(i: int, size: int) -> bytes:
    return _payload(i, size)


def _ident(i: int) -> int:
    return i


@task
def noop(i: int) -> int:
    return i


@task
def fan_in(xs: list[int]) -> int:
    return sum(xs)


def _direct_flow(url: str, options: dict[str, Any], n: int, size: int,
                 fsync: bool = False) -> Flow[..., Any]:
    @flow(name="direct_writes")
    def direct_writes() -> None:
        direct.map(list(range(n)), size=unmapped(size), url=unmapped(url),
                   options=unmapped(options), fsync=unmapped(fsync))

    return direct_writes


def _checkpoint_flow(url: str, options: dict[str, Any], n: int, size: int,
                     fsync: bool | None = None) -> Flow[..., Any]:
    from taskflow.results import ResultStore

    store = ResultStore(url, storage_options=options, fsync=fsync)

    @flow(name="checkpoint_writes", result_store=store)
    def checkpoint_writes() -> None:
        checkpointed.map(list(range(n)), size=unmapped(size))

    return checkpoint_writes


def _fanout_flow(n: int, **options: Any) -> Flow[..., Any]:
    @flow(name="fanout", **options)
    def fanout() -> Any:
        return fan_in(noop.map(list(range(n))))

    return fanout


# -- helpers ----------------------------------------------------------------------------
@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in its own process; yields its endpoint."""
    code = ("import sys; from moto.server import ThreadedMotoServer; "
            "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start(); "
            "print(s.get_host_and_port()[1], flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _clear(url: str, options: dict[str, Any]) -> None:
    fs, root = fsspec.core.url_to_fs(url, **options)
    if fs.exists(root):
        for entry in fs.ls(root, detail=False):
            fs.rm(entry, recursive=True)
    fs.invalidate_cache()


def throughput(executor: DaskExecutor, url: str, options: dict[str, Any], total: int,
               chunks: int, reps: int) -> dict[str, Any]:
    size = total // chunks
    ways = {"fsspec": _direct_flow(url, options, chunks, size),
            "checkpoint": _checkpoint_flow(url, options, chunks, size)}
    if url.startswith("file://"):
        ways["fsspec+fsync"] = _direct_flow(url, options, chunks, size, fsync=True)
        ways["checkpoint+fsync"] = _checkpoint_flow(url, options, chunks, size, fsync=True)
    for warm in (_direct_flow(url, options, 2, MB), _checkpoint_flow(url, options, 2, MB)):
        warm.run(executor=executor)  # imports, filesystem instances, connections
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    for _ in range(reps):
        for way, fl in ways.items():
            _clear(url, options)
            took, run = _timed(lambda fl=fl: fl.run(executor=executor))
            if not run.state.is_successful():
                raise RuntimeError(f"{way} run failed: {run.state.message}")
            seconds[way].append(took)
    _clear(url, options)
    best = {w: min(v) for w, v in seconds.items()}
    med = {w: statistics.median(v) for w, v in seconds.items()}
    return {
        "bytes": size * chunks, "chunks": chunks, "seconds": seconds,
        "mb_per_s": {w: size * chunks / MB / best[w] for w in ways},
        "ratio": best["checkpoint"] / best["fsspec"],
        "median_ratio": med["checkpoint"] / med["fsspec"],
        "paired_ratio": statistics.median(
            c / f for c, f in zip(seconds["checkpoint"], seconds["fsspec"])),
        **({"fsync_ratio": best["checkpoint+fsync"] / best["fsspec+fsync"],
            "fsync_median_ratio": med["checkpoint+fsync"] / med["fsspec+fsync"]}
           if "fsspec+fsync" in best else {}),
    }


def fanout_overhead(client: Client, executor: DaskExecutor, tasks: int, reps: int,
                    store_dir: str) -> dict[str, Any]:
    def plain_dask() -> Any:
        uid = uuid.uuid4().hex
        dsk: dict[Any, Any] = {(f"noop-{uid}", i): (_ident, i) for i in range(tasks)}
        dsk[f"fan_in-{uid}"] = (sum, list(dsk))
        return client.get(dsk, f"fan_in-{uid}")

    no_store = _fanout_flow(tasks)
    store_flow = _fanout_flow(tasks, result_store=f"file://{store_dir}")
    ways: dict[str, Callable[[], Any]] = {
        "dask": plain_dask,
        "taskflow": lambda: no_store.run(executor=executor).result(),
        "taskflow+store": lambda: store_flow.run(executor=executor).result(),
    }
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    for fn in ways.values():
        fn()  # warm up
    for _ in range(reps):
        for way, fn in ways.items():
            took, value = _timed(fn)
            assert value == sum(range(tasks)), (way, value)
            seconds[way].append(took)
    written = sum(len(files) for _, _, files in os.walk(store_dir))
    with dask.config.set({"taskflow.results.checkpoint": True}):
        on, _ = _timed(lambda: store_flow.run(executor=executor).result())
    files_on = sum(len(files) for _, _, files in os.walk(store_dir))
    med = {w: statistics.median(v) for w, v in seconds.items()}
    return {
        "tasks": tasks + 1, "seconds": seconds,
        "ms_per_task": {w: 1000 * med[w] / (tasks + 1) for w in ways},
        "store_off_vs_no_store": med["taskflow+store"] / med["taskflow"],
        "files_written_with_checkpointing_off": written,
        "checkpointing_on": {"seconds": on, "files_written": files_on},
    }


# -- report -----------------------------------------------------------------------------
def format_table(doc: dict[str, Any]) -> str:
    lines = [f"Checkpoint throughput ({doc['cluster']})", ""]
    lines.append(f"{'store':<7}{'bytes':>9}{'chunks':>8}{'fsspec MB/s':>13}"
                 f"{'checkpoint MB/s':>17}{'ratio':>8}{'median':>8}{'paired':>8}  verdict")
    for name in ("local", "s3"):
        r = doc.get(name)
        if r is None:
            continue
        ok = "ok" if r["ratio"] <= TARGET else f"over {TARGET}x"
        lines.append(f"{name:<7}{r['bytes'] / MB:>7.0f}MB{r['chunks']:>8}"
                     f"{r['mb_per_s']['fsspec']:>13.0f}{r['mb_per_s']['checkpoint']:>17.0f}"
                     f"{r['ratio']:>7.2f}x{r['median_ratio']:>7.2f}x{r['paired_ratio']:>7.2f}x  {ok}")
    if "fsync_ratio" in doc.get("local", {}):
        r = doc["local"]
        lines.append(f"local, both made durable (fsync): fsspec+fsync "
                     f"{r['mb_per_s']['fsspec+fsync']:.0f} MB/s, checkpoint+fsync "
                     f"{r['mb_per_s']['checkpoint+fsync']:.0f} MB/s: {r['fsync_ratio']:.2f}x "
                     f"(median {r['fsync_median_ratio']:.2f}x)")
    f = doc["fanout"]
    lines += ["", f"Fan-out of {f['tasks']} no-op tasks, checkpointing off (ms per task, median)"]
    lines.append("  " + "   ".join(f"{w}: {v:.2f}" for w, v in f["ms_per_task"].items()))
    lines.append(f"  store configured but nothing asked / no store: {f['store_off_vs_no_store']:.2f}x;"
                 f" files written: {f['files_written_with_checkpointing_off']}")
    on = f["checkpointing_on"]
    lines.append(f"  for contrast, taskflow.results.checkpoint=true: {on['seconds']:.2f} s, "
                 f"{on['files_written']} files")
    lines += ["", "MB/s and ratio from the best repetition of each way; median: ratio of the "
              "median times;", "paired: median of the per-repetition ratios (each pair ran "
              "back to back).",
              f"Targets: checkpoint throughput within {TARGET}x of fsspec; "
              "no file written with checkpointing off."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small defaults: 64 MB in 8 chunks, 200 tasks, 1 repetition")
    p.add_argument("--total", type=int, help="MB of outputs per way (default 1024)")
    p.add_argument("--chunks", type=int, help="tasks sharing the bytes (default 64)")
    p.add_argument("--tasks", type=int, help="fan-out width (default 1000)")
    p.add_argument("--reps", type=int, help="repetitions of each way (default 3)")
    p.add_argument("--skip-s3", action="store_true", help="local disk only")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/results.json)")
    args = p.parse_args(argv)
    defaults = (64, 8, 200, 1) if args.quick else (1024, 64, 1000, 3)
    for name, value in zip(("total", "chunks", "tasks", "reps"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    work = tempfile.mkdtemp(prefix="taskflow-bench-")
    doc: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "cluster": "LocalCluster, 2 worker processes x 1 thread"}
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            executor = DaskExecutor(client=client)
            logging.getLogger("taskflow").setLevel(logging.WARNING)
            total = args.total * MB
            doc["local"] = throughput(executor, f"file://{work}/local", {}, total, args.chunks,
                                      args.reps)
            if not args.skip_s3:
                import s3fs

                with moto_server() as endpoint:
                    options = {"client_kwargs": {"endpoint_url": endpoint}}
                    s3fs.S3FileSystem(**options).mkdir("bench")
                    doc["s3"] = throughput(executor, "s3://bench/runs", options, total,
                                           args.chunks, args.reps)
            doc["fanout"] = fanout_overhead(client, executor, args.tasks, max(args.reps, 5),
                                            os.path.join(work, "fanout"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(format_table(doc))
    out = args.out or os.path.join(RESULTS, "results-quick.json" if args.quick else "results.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
