"""Flows of many shapes, for the tests of graph descriptions (plain and grouped)."""
from __future__ import annotations

from typing import Any

from taskflow import Flow, case, flatten, flow, task, unmapped
from taskflow.exceptions import FlowDefinitionError

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


@task
def take(*xs: int) -> int:
    return 0


@task
def give(*xs: int) -> int:
    return 0


@task(name="take-2")  # a name that reads like the second call of ``take``
def take_two(*xs: int) -> int:
    return 0


def random_flow(seed: int) -> Flow:
    """A flow of up to 60 calls: rounds of a few tasks, edges to the first, the last,
    the same place a round back, or anywhere; some ordering edges, one pointing forward."""
    import random

    rng = random.Random(seed)
    kinds = [take, give, take_two]

    def body() -> list[Any]:
        calls: list[Any] = []
        period = rng.randint(1, 4)
        for i in range(rng.randint(1, 60)):
            t = kinds[i % period % 3] if rng.random() < 0.85 else rng.choice(kinds)
            ups: list[Any] = []
            if calls and rng.random() < 0.7:
                mode = rng.random()
                if mode < 0.3:
                    ups = [calls[0]]
                elif mode < 0.6:
                    ups = [calls[-1]]
                elif mode < 0.8 and len(calls) >= period:
                    ups = [calls[-period]]
                else:
                    ups = rng.sample(calls, min(len(calls), rng.randint(1, 3)))
            waits = [rng.choice(calls)] if calls and rng.random() < 0.1 else None
            calls.append(t(*ups, wait_for=waits) if waits else t(*ups))
        if len(calls) > 3 and rng.random() < 0.3:
            try:
                calls[1].set_upstream(calls[-1])
            except FlowDefinitionError:  # it would make a cycle
                pass
        return calls

    return Flow(f"random_{seed}", body)
