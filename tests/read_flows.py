"""Flows the tests of what a person reads after a failure run (by file path, from the CLI)."""
from __future__ import annotations

import datetime

from taskflow import flow, task
from taskflow.context import current


@task
def describe(count: int, day: datetime.date, xs: list[int], label: str) -> str:
    return f"{count!r} {day!r} {xs!r} {label!r}"


@flow
def typed(count: int, day: datetime.date = datetime.date(2026, 1, 1),
          xs: list[int] = [1], label: str = "x"):  # noqa: B006 - a default, never mutated
    return describe(count, day, xs, label)


@task(retries=2, retry_delay=0.5)
def flaky(times: int) -> str:
    """Fails its first ``times`` attempts, with a different message each time."""
    attempt = current().attempt
    if attempt <= times:
        raise ConnectionError(f"service unavailable on attempt {attempt}")
    return f"ok on attempt {attempt}"


@flow
def retried(times: int = 2):
    return flaky(times)


@task
def broken_numbers(n: int) -> list[int]:
    raise ValueError(f"no numbers for {n}")


@task
def square(x: int) -> int:
    return x * x


@task
def summed(xs: list[int]) -> int:
    return sum(xs)


@flow
def map_never_expands(n: int = 3):
    return summed(square.map(broken_numbers(n)))


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def noisy(x: int) -> int:
    from taskflow import get_run_logger

    get_run_logger().info("child %d", x)
    return x


@flow
def many_children(n: int = 12):
    return summed(noisy.map(numbers(n)))
