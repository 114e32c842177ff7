"""Flows the CLI tests run by file path (`tests/cli_flows.py:squares`)."""
from __future__ import annotations

from taskflow import flow, get_run_logger, task


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def summed(xs: list[int], label: str) -> dict:
    get_run_logger().info("summing %d squares for %s", len(xs), label)
    return {"label": label, "total": sum(xs)}


@task
def explode(x: int) -> int:
    get_run_logger().warning("about to fail on %d", x)
    raise ValueError(f"cannot take {x}")


@flow
def squares(n: int = 3, label: str = "run"):
    return summed(square.map(numbers(n)), label)


@flow
def broken(x: int = 1):
    return square(explode(x))
