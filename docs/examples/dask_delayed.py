"""Plain Dask, with dask.delayed: load three files, clean each, add them up."""
import dask
from distributed import Client, LocalCluster


@dask.delayed
def load(i: int) -> list[int]:
    return list(range(i * 10, i * 10 + 10))


@dask.delayed
def clean(xs: list[int]) -> list[int]:
    return [x for x in xs if x % 3]


@dask.delayed
def total(parts: list[list[int]]) -> int:
    return sum(sum(p) for p in parts)


if __name__ == "__main__":
    with LocalCluster(n_workers=2, dashboard_address="127.0.0.1:0") as cluster, Client(cluster):
        parts = [clean(load(i)) for i in range(3)]
        print(total(parts).compute())
