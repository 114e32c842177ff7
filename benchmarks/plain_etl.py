"""examples/etl.py's flow in plain Dask: the baseline of ``taskflow run examples/etl.py:etl``.

It starts the LocalCluster taskflow's default executor starts (worker processes,
scheduler and dashboard on 127.0.0.1), computes the same thing with
``dask.delayed`` (extract -> transform -> total and count, with ``n=10``, the flow's default), prints
the result and exits.  :mod:`benchmarks.first_run` times both from process start
to exit.
"""
from __future__ import annotations

import dask
from distributed import Client, LocalCluster


@dask.delayed
def extract(n: int) -> list[int]:
    return list(range(n))


@dask.delayed
def transform(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@dask.delayed
def total(xs: list[int]) -> int:
    return sum(xs)


@dask.delayed
def count(xs: list[int]) -> int:
    return len(xs)


def main(n: int = 10) -> None:
    cluster = LocalCluster(host="127.0.0.1", dashboard_address="127.0.0.1:8787", processes=True)
    client = Client(cluster)
    try:
        squares = transform(extract(n))
        result = dask.compute({"total": total(squares), "count": count(squares)})[0]
        print(f"result: {result!r}")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":  # a LocalCluster of processes needs this guard
    main()
