"""Flows for the wide-flow tests: windowed submission, history of many task runs."""
from __future__ import annotations

import time

from taskflow import flow, task, unmapped


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def double(x: int) -> int:
    return 2 * x


@task
def fails_at(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"{x} is bad")
    return x


@task
def nap(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow
def doubled_total(n: int = 200) -> int:
    return total(double.map(numbers(n)))


@flow
def doubled_twice(n: int = 200) -> list[int]:
    return double.map(double.map(numbers(n)))


@flow
def one_bad(n: int = 200, bad: int = 137) -> list[int]:
    return fails_at.map(numbers(n), bad=unmapped(bad))


STATIC_WIDTH = 120


@flow
def static_fan_out() -> int:
    return total([double(i) for i in range(STATIC_WIDTH)])


@flow
def slow_map(n: int = 200, seconds: float = 0.05) -> list[int]:
    return nap.map(numbers(n), seconds=unmapped(seconds))


@flow
def wide(n: int = 20_000) -> int:
    return total(double.map(numbers(n)))


WIDE_STATIC_WIDTH = 600  # above taskflow.description.GROUP_ABOVE: its graph is stored grouped


@flow
def wide_static_fan_out() -> int:
    return total([double(i) for i in range(WIDE_STATIC_WIDTH)])
