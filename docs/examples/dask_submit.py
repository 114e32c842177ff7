"""Plain Dask, with futures: the same computation, one client.submit per task."""
from distributed import Client, LocalCluster


def load(i: int) -> list[int]:
    return list(range(i * 10, i * 10 + 10))


def clean(xs: list[int]) -> list[int]:
    return [x for x in xs if x % 3]


def total(parts: list[list[int]]) -> int:
    return sum(sum(p) for p in parts)


if __name__ == "__main__":
    with LocalCluster(n_workers=2, dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        loaded = client.map(load, range(3))
        cleaned = client.map(clean, loaded)
        print(client.submit(total, cleaned).result())
