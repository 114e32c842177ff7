"""What ``benchmarks.fan_in_stall`` and ``benchmarks.release_stall`` share: a ticker on the
scheduler's event loop, the children's function, and the command line (ways, ``--n``, one
row a way)."""
from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any


def inc(x: int) -> int:
    return x + 1


class Ticker:
    """The longest gap between turns of ``loop`` (seconds) since :meth:`reset`."""

    def __init__(self, loop: Any) -> None:
        self.worst, self.last = 0.0, time.perf_counter()
        loop.add_callback(self._tick)

    async def _tick(self) -> None:
        while True:
            now = time.perf_counter()
            self.worst, self.last = max(self.worst, now - self.last), now
            await asyncio.sleep(0.01)

    def reset(self) -> None:
        self.worst, self.last = 0.0, time.perf_counter()


def run_ways(argv: list[str] | None, *, prog: str, doc: str | None, ways: tuple[str, ...],
             default_n: int, counted: str, wall: str,
             measure: Callable[[str, int], dict[str, Any]]) -> int:
    """Parse ``--n`` and ``--ways`` (a bad one is named with the choices), then print
    ``measure(way, n)``'s wall time and longest stall, a row a way as each ends."""
    p = argparse.ArgumentParser(prog=prog, description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=default_n, help=f"{counted} (default {default_n:,d})")
    p.add_argument("--ways", default=",".join(ways), help=f"among: {', '.join(ways)}")
    args = p.parse_args(argv)
    chosen = [w for w in args.ways.split(",") if w]
    unknown = [w for w in chosen if w not in ways]
    if unknown or args.n < 1:
        p.error(f"unknown ways {unknown}; choose among {', '.join(ways)}" if unknown
                else f"--n must be at least 1, got {args.n}")
    width = max(len(w) for w in ways)
    print(f"{counted:>9s}  {'way':{width}s} {wall:>17s} {'longest stall (s)':>18s}")
    for way in chosen:
        r = measure(way, args.n)
        print(f"{r['n']:9,d}  {r['way']:{width}s} {r['wall']:17.2f} {r['stall']:18.2f}", flush=True)
    return 0
