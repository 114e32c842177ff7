"""Before and after in one run: :mod:`benchmarks.core` or :mod:`benchmarks.mapping`
from this checkout and from another, interleaved.

Run from the repository root::

    python -m benchmarks.compare --before /work/wt/old -- core --only fan_100,diamond --reps 3
    python -m benchmarks.compare --before /work/wt/old --rounds 3 -- mapping --only map_1k

Each round runs the suite once from this checkout and once from ``--before`` (each in
its own process with its own LocalCluster, the checkout's own benchmark code and
taskflow; which goes first alternates), so a slower machine moves both sides alike.
It prints, per workload, the best plain-Dask way's median and taskflow's median of
each side, and both ratios (taskflow over the best plain way of the same process):
the medians over rounds of each round's medians.

``--before`` is a checkout of the commit to compare with, e.g. a detached worktree::

    git worktree add --detach /work/wt/old <commit>
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = ("core", "mapping")


def run_suite(checkout: str, suite: str, args: list[str], out: str) -> dict[str, Any]:
    """One run of ``python -m benchmarks.<suite>`` in ``checkout``; its JSON's workloads."""
    env = dict(os.environ, PYTHONPATH=checkout)
    cmd = [sys.executable, "-m", f"benchmarks.{suite}", *args, "--out", out]
    done = subprocess.run(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL, timeout=7200)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} in {checkout} failed (exit {done.returncode})")
    with open(out) as f:
        return json.load(f)["workloads"]


def summarize(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per workload: medians over rounds of the best plain way's and taskflow's seconds."""
    names = [n for n in rounds[0] if all(n in r for r in rounds)]
    rows = {}
    for name in names:
        plain = [r[name]["ways"][r[name]["best_plain_dask"]]["median_seconds"] for r in rounds]
        ours = [r[name]["ways"]["taskflow"]["median_seconds"] for r in rounds]
        ratios = [r[name]["taskflow_over_best_plain"] for r in rounds]
        rows[name] = {"plain": statistics.median(plain), "taskflow": statistics.median(ours),
                      "ratio": statistics.median(ratios)}
    return rows


def format_table(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> str:
    head = (f"{'workload':18s} {'plain':>8s} {'before':>8s} {'ratio':>6s}   "
            f"{'plain':>8s} {'after':>8s} {'ratio':>6s}")
    lines = [head, "-" * len(head)]
    for name, a in after.items():
        b = before.get(name)
        left = (f"{b['plain']:8.3f} {b['taskflow']:8.3f} {b['ratio']:5.2f}x" if b
                else f"{'-':>8s} {'-':>8s} {'-':>6s}")
        lines.append(f"{name:18s} {left}   {a['plain']:8.3f} {a['taskflow']:8.3f} {a['ratio']:5.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, metavar="CHECKOUT",
                   help="a checkout of the commit to compare with (e.g. a detached worktree)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--out", default=None, help="also write both sides' summaries as JSON here")
    p.add_argument("suite", choices=SUITES, help="the benchmark to run on both sides")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments (e.g. --only fan_100)")
    args = p.parse_args(argv)
    before = os.path.abspath(args.before)
    if not os.path.isfile(os.path.join(before, "benchmarks", f"{args.suite}.py")):
        p.error(f"--before {args.before!r} is not a taskflow checkout with benchmarks/{args.suite}.py; "
                "make one with: git worktree add --detach <dir> <commit>")
    if os.path.samefile(before, ROOT):
        p.error(f"--before {args.before!r} is this checkout; give a checkout of another commit")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    extra = [a for a in args.args if a != "--"]
    sides: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="taskflow-compare-") as tmp:
        for i in range(args.rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for side in order:
                checkout = before if side == "before" else ROOT
                out = os.path.join(tmp, f"{side}-{i}.json")
                sides[side].append(run_suite(checkout, args.suite, extra, out))
                print(f"round {i + 1}/{args.rounds}: {side} done", file=sys.stderr, flush=True)
    after_rows, before_rows = summarize(sides["after"]), summarize(sides["before"])
    print(f"before: {before}\nafter:  {ROOT}\n(medians over {args.rounds} round(s))\n")
    print(format_table(after_rows, before_rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"before": before_rows, "after": after_rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
