"""The README's main job: a small ETL flow on the embedded LocalCluster.

Run it with ``python examples/etl.py`` (``--n 1000`` to change the parameter).
It prints the flow run's state, its result and where to watch it on the Dask
dashboard.
"""
from __future__ import annotations

import argparse
import time

from taskflow import flow, get_run_logger, task


@task(retries=2, retry_delay=0.5)
def extract(n: int) -> list[int]:
    """Pretend to download ``n`` records."""
    return list(range(n))


@task
def transform(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@task
def total(xs: list[int]) -> int:
    get_run_logger().info("summing %d numbers", len(xs))
    return sum(xs)


@task
def count(xs: list[int]) -> int:
    return len(xs)


@flow
def etl(n: int = 10):
    squares = transform(extract(n))
    return {"total": total(squares), "count": count(squares)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds to keep the cluster up afterwards, to look at the dashboard")
    args = parser.parse_args()

    run = etl.run(n=args.n)
    print(f"flow run:  {run.run_id}")
    print(f"state:     {run.state!r}")
    for name, state in run.task_states.items():
        print(f"  {name:<10} {state!r}")
    print(f"result:    {run.result()}")
    print(f"dashboard: {run.dashboard_link}")
    print(f"run page:  {run.run_page}")
    if args.hold:
        time.sleep(args.hold)


if __name__ == "__main__":  # a LocalCluster of processes needs this guard
    main()
