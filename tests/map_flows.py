"""Tasks and flows for the mapping, conditional and subflow tests (importable by workers)."""
from __future__ import annotations

from taskflow import case, flatten, flow, merge, task, unmapped


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def nested(n: int) -> list[list[int]]:
    return [list(range(i)) for i in range(n)]


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@task
def fragile(x: int) -> int:
    if x == 2:
        raise ValueError("two is bad")
    return x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def collect(xs):
    return list(xs)


@task
def not_a_list() -> int:
    return 5


@task
def is_big(xs: list[int]) -> bool:
    return sum(xs) > 10


@task
def label(kind: str, xs: list[int]) -> str:
    return f"{kind}:{len(xs)}"


@flow
def map_runtime(n: int = 4):
    return total(double.map(numbers(n)))


@flow
def map_chain(n: int = 4):
    return collect(add.map(double.map(numbers(n)), 100))


@flow
def map_constant():
    return collect(scale.map([1, 2, 3], factor=unmapped(10)))


@flow
def map_zip(n: int = 3):
    return collect(add.map(numbers(n), [10, 20, 30]))


@flow
def map_param(xs: list = (1, 2, 3)):
    return collect(double.map(xs))


@flow
def map_flatten(n: int = 4):
    return collect(double.map(flatten(nested(n))))


@flow
def map_flatten_children():
    return collect(double.map(flatten(numbers.map([1, 2, 3]))))


@flow
def map_with_failure(n: int = 4):
    return collect(double.map(fragile.map(numbers(n))))


@flow
def map_mismatch(n: int = 3, m: int = 4):
    return collect(add.map(numbers(n), numbers(m)))


@flow
def map_not_a_list():
    return collect(double.map(not_a_list()))


@flow
def map_returned(n: int = 3):
    return double.map(numbers(n))


@flow
def branching(n: int = 3):
    xs = numbers(n)
    big = is_big(xs)
    with case(big, True):
        a = label("big", xs)
    with case(big, False):
        b = label("small", xs)
    return merge(a, b)


@flow
def inner(n: int = 2):
    return total(double.map(numbers(n)))


@flow
def outer(n: int = 3, m: int = 4):
    return add(inner(n), inner(m))


@task
def array_sum(n: int) -> float:
    import dask.array as da

    from taskflow import get_dask_client

    client = get_dask_client()
    x = da.ones(n, chunks=max(1, n // 8))
    return float(client.compute(x.sum()).result())


@task
def lazy_array(n: int):
    import dask.array as da

    return da.arange(n, chunks=max(1, n // 4))


@task
def compute_it(collection) -> float:
    from taskflow import get_dask_client

    return float(get_dask_client().compute(collection.sum()).result())


@flow
def dask_inside(n: int = 1000):
    return array_sum(n)


@flow
def dask_passed(n: int = 100):
    return compute_it(lazy_array(n))


@task
def make_arrays(count: int, mb: int) -> list:
    import numpy as np

    return [np.full(mb * 2**20 // 8, float(i)) for i in range(count)]


@task
def make_array(i: int, mb: int):
    import numpy as np

    return np.full(mb * 2**20 // 8, float(i))


@task
def mean_of(a) -> float:
    return float(a.mean())


@flow
def arrays_mapped(count: int = 20, mb: int = 25):
    return total(mean_of.map(make_arrays(count, mb)))


@flow
def arrays_chain(count: int = 40, mb: int = 50):
    return total(mean_of.map(make_array.map(numbers(count), mb=unmapped(mb))))


@task
def kinds(values: list) -> list[str]:
    return [type(v).__name__ for v in values]


@task
def total(values: list[int]) -> int:
    return sum(values)


@flow
def over_a_long_list(n: int):
    """A map over a long run-time list, the list also passed whole, in a group, and returned."""
    nums = numbers(n)
    doubled = double.map(nums)
    return nums, total(doubled), total(nums), kinds([nums, *[nums] * 2])
