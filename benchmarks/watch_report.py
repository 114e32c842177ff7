"""One line per sample of ``benchmarks/watch_wide.sh``: the unread (Recv-Q) and untaken
(Send-Q) bytes at both ends of the client's connection to the scheduler, and the
innermost frames of each side's event loop ("IO loop" thread).

Usage::

    python benchmarks/watch_report.py /tmp/wide-watch [--from HHMMSS]

A connection that Dask drops after ``distributed.comm.timeouts.tcp`` shows as Recv-Q at
the scheduler's end (and Send-Q at the client's) staying the same, sample after sample.
"""
from __future__ import annotations

import argparse
import glob
import os
import re


def _loop_top(path: str, depth: int = 4) -> str:
    if not os.path.exists(path):
        return "-"
    m = re.search(r'"IO loop"\n((?:    .*\n){0,' + str(depth) + '})', open(path).read())
    if not m:
        return "?"
    return " < ".join(x.strip().split(" (")[0] for x in m.group(1).splitlines())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--from", dest="start", default="000000", help="first sample, HHMMSS")
    args = p.parse_args()
    for f in sorted(glob.glob(os.path.join(args.folder, "ss_*.txt"))):
        ts = f.rsplit("_", 1)[1][:6]
        if ts < args.start:
            continue
        pids = dict(kv.split("=") for kv in open(os.path.join(args.folder, f"pids_{ts}.txt")).read().split())
        client, sched = pids.get("client", ""), pids.get("scheduler", "")
        rows = [line.split() for line in open(f) if not line.startswith("\t")]
        ends = {}
        port = None
        for r in rows:  # the client's first connection to the scheduler is its stream
            if len(r) > 4 and f"pid={client}," in r[-1] and port is None:
                port, ends["client"] = r[2].rsplit(":", 1)[1], f"client rq={r[0]} sq={r[1]}"
        for r in rows:
            if port and len(r) > 4 and r[3].endswith(":" + port):
                ends["scheduler"] = f"scheduler rq={r[0]} sq={r[1]}"
        print(ts, ends.get("client", "client -"), ends.get("scheduler", "scheduler -"),
              "| S:", _loop_top(os.path.join(args.folder, f"dump_{ts}_{sched}.txt")),
              "| C:", _loop_top(os.path.join(args.folder, f"dump_{ts}_{client}.txt")))


if __name__ == "__main__":
    main()
