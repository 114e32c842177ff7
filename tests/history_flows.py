"""Flows used by the history and graph tests (importable, so workers load them by reference)."""
from __future__ import annotations

import datetime
import os
import threading
import time

from taskflow import flow, get_run_logger, task, unmapped
from tests.flows import add, boom, extract, flaky, inc, total

#: Set by a test to let `held` finish (in-process runs only).
release = threading.Event()


@task
def noisy(x: int) -> int:
    get_run_logger().info("child sees %d", x)
    return x


@task
def held(x: int) -> int:
    """Waits (bounded) until the test sets `release`."""
    if not release.wait(30):
        raise TimeoutError("never released")
    return x


@task
def wait_for_file(path: str, started: str) -> str:
    """Writes `started`, then waits (bounded) for `path` to appear."""
    with open(started, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return path


@flow
def mapped(n: int = 3):
    return total(noisy.map(extract(n)))


@flow
def many(n: int = 100):
    return inc.map(extract(n))


@flow
def partly_failing(x: int = 1):
    a = inc(x)
    b = boom(a)
    return inc(b)


@flow
def with_secret(n: int = 1, api_token: str = "", options: dict | None = None):
    return inc(n)


@flow
def dated(day: datetime.date = datetime.date(2026, 1, 1), tags: frozenset = frozenset()):
    return noisy(1)


@flow
def waits(path: str = "", started: str = ""):
    return wait_for_file(path, started)


@flow
def holding(x: int = 1):
    return held(x)


@flow
def shapes(n: int = 3, offset: int = 1):
    xs = extract(n)
    ys = inc.map(xs)
    zs = add.map(ys, unmapped(offset))
    checked = boom(0, wait_for=[zs])
    return total(zs), checked


@flow
def inner(x: int = 1):
    return inc(inc(x))


@flow
def outer(x: int = 1):
    return inner(inc(x))


@flow
def fixed_map():
    return inc.map([1, 2, 3, 4])


@flow
def retried(path: str, fail_times: int = 1):
    return flaky(path, fail_times)
