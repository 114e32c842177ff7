"""Tasks and flows used by the tests.

They live in an importable module so Dask worker processes can load them by
reference.  Counters that must work across processes write to files.
"""
from __future__ import annotations

import os
import time

from taskflow import FAIL, SKIP, Flow, Parameter, flow, get_run_logger, task, triggers


def bump(path: str) -> int:
    """Append a line to ``path``; return how many lines it has now (process-safe enough)."""
    with open(path, "a") as f:
        f.write("x\n")
    with open(path) as f:
        return sum(1 for _ in f)


def count(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


@task(retries=2, retry_delay=0.5)
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def total(xs: list[int]) -> int:
    get_run_logger().info("summing %d numbers", len(xs))
    return sum(xs)


@flow
def etl(n: int = 10):
    return total(extract(n))


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def boom(x: int = 0) -> int:
    raise ValueError(f"boom {x}")


@task
def skipper(x: int = 0) -> int:
    raise SKIP("nothing to do today")


@task(retries=3)
def fail_now(x: int = 0) -> int:
    raise FAIL("give up at once")


@task(retries=2)
def flaky(path: str, fail_times: int) -> int:
    n = bump(path)
    if n <= fail_times:
        raise RuntimeError(f"attempt {n} fails")
    return n


@task(trigger=triggers.always_run)
def report(*upstream):
    return [type(u).__name__ for u in upstream]


@task(trigger=triggers.any_failed)
def on_failure(*upstream):
    return "handled"


@task
def record(path: str, label: str) -> str:
    with open(path, "a") as f:
        f.write(label + "\n")
    return label


@task(timeout=0.5)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@flow
def chain(x: int = 0):
    return inc(inc(inc(x)))


@flow
def one_task(x: int = 0):
    return inc(x)


@flow
def diamond(x: int = 1):
    a = inc(x)
    return add(inc(a), inc(a))


@flow
def fails_in_middle(x: int = 1):
    a = inc(x)
    b = boom(a)
    return inc(b)


@flow
def with_cleanup(x: int = 1):
    b = boom(x)
    return report(b, inc(x))


@flow
def nested_args(x: int = 1):
    return total([inc(x), inc(x)])


@flow
def returns_structure(x: int = 1):
    return {"a": inc(x), "b": [inc(x), 5], "p": x}


with Flow("builder") as builder_flow:
    n = Parameter("n", default=3)
    builder_flow.set_return(total(extract(n)))
