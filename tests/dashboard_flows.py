"""Flows used by the dashboard tests (importable, so worker processes can load them)."""
from __future__ import annotations

import os
import time

from taskflow import flow, get_run_logger, task


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    get_run_logger().info("adding %d squares", len(xs))
    return sum(xs)


@task
def wait_for_file(path: str, xs: list[int], timeout: float = 30.0) -> int:
    """Wait (bounded) until the test creates ``path``; then sum ``xs``."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)
    return sum(xs)


@task
def explode(xs: list[int]) -> int:
    raise ValueError(f"cannot add {len(xs)} numbers today")


@flow
def squares(n: int = 4, db_password: str = "hunter2"):
    return total(square.map(numbers(n)))


@flow
def broken(n: int = 3):
    return explode(numbers(n))


@flow
def gated(path: str, n: int = 3, api_token: str = "s3cr3t-value"):
    return wait_for_file(path, square.map(numbers(n)))
