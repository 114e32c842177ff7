"""Tasks and flows for the tests of the plan and the worker-side runner (no cluster)."""
from __future__ import annotations

from taskflow import FAIL, SKIP, flow, task
from taskflow.engine.plan import PlannedTask

__all__ = ["chain", "failing", "mapped", "mapped_kept", "mapped_over_constants", "refusing_then_inc", "retrying",
           "planned_tasks", "skipping_then_inc"]


@task
def inc(x: int) -> int:
    return x + 1


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(retries=2, retry_delay=[3, 7])
def flaky(calls: list[int]) -> int:
    calls.append(1)
    if len(calls) < 3:
        raise ValueError("not yet")
    return len(calls)


@task
def refuse() -> int:
    raise FAIL("no")


@task
def nothing_today() -> int:
    raise SKIP("nothing to do today")


@task(retries=1, retry_delay=0.5)
def always_fails() -> int:
    raise ValueError("still broken")


@task(checkpoint=True)
def kept(x: int) -> int:
    return 10 * x


@flow
def skipping_then_inc():
    return inc(nothing_today())


@flow
def failing():
    return always_fails()


@flow
def mapped_kept(n: int = 3):
    return kept.map(numbers(n))


@flow
def chain(x: int = 1):
    return inc(inc(x))


@flow
def mapped(n: int = 3):
    return inc.map(numbers(n))


@flow
def mapped_over_constants():
    return inc.map([5, 6, 7])


@flow
def retrying(calls: list):
    return flaky(calls)


@flow
def refusing_then_inc():
    return inc(refuse())


def planned_tasks(batch) -> list[PlannedTask]:
    return [s for s in batch.steps if isinstance(s, PlannedTask)]
