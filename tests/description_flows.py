"""Flows of many shapes, for the tests of graph descriptions (plain and grouped)."""
from __future__ import annotations

from taskflow import case, flow, flatten, task, unmapped

WIDTH = 30


@task
def stamp(i: int) -> int:
    return i


@task
def double(x: int) -> int:
    return 2 * x


@task
def pair(a: int, b: int) -> int:
    return a + b


@task
def first(xs: list[int]) -> int:
    return min(xs)


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@flow
def fan_out_and_in():
    return first([stamp(i) for i in range(WIDTH)])


@flow
def fan_out_alone():
    return [stamp(i) for i in range(WIDTH)]


@flow
def pipelines():
    return first([double(stamp(i)) for i in range(WIDTH)])


@flow
def zipped_pairs():
    xs = [stamp(i) for i in range(WIDTH)]
    ys = [double(x) for x in xs]
    return first([pair(x, y) for x, y in zip(xs, ys)])


@flow
def one_source_many_readers():
    source = stamp(0)
    return first([pair(source, i) for i in range(WIDTH)])


@flow
def shifted_pairs():
    xs = [stamp(i) for i in range(WIDTH)]
    return [pair(a, b) for a, b in zip(xs, xs[1:])]


@flow
def chain():
    x = stamp(0)
    for _ in range(WIDTH):
        x = double(x)
    return x


@flow
def ordered_waits():
    gate = stamp(-1)
    xs = [stamp(i, wait_for=[gate]) for i in range(WIDTH)]
    last = first(xs)
    xs[3].set_upstream(xs[5])  # an ordering edge pointing forward: the graph is re-sorted
    return last


@flow
def maps_and_subflows(n: int = 3):
    doubled = double.map(numbers(n))
    parts = [fan_out_and_in() for _ in range(3)]
    return first([*parts, first(doubled), first(double.map(flatten([[1, 2], [3]])))])


@flow
def with_a_case(flag: bool = True):
    mid = stamp(1)
    with case(mid, 1):
        inside = [double(mid) for _ in range(5)]
    return first([*inside, pair.map([1, 2], unmapped(mid))])


SHAPES = [fan_out_and_in, fan_out_alone, pipelines, zipped_pairs, one_source_many_readers,
          shifted_pairs, chain, ordered_waits, maps_and_subflows, with_a_case]
