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


@task
def own_span(x: int) -> dict:
    """The span annotation this child's worker got with the task (what Dask's worker reads)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    return dict(get_worker().state.tasks[thread_state.key].annotations.get("span") or {})


def _children_annotations(dask_scheduler, prefix: str) -> dict:
    spans = dask_scheduler.extensions["spans"].spans
    kids = [ts for ts in dask_scheduler.tasks.values()
            if ts.group.name.startswith(prefix) and ts.state == "memory"]
    return {"children": len(kids),
            "distinct": len({id(ts.annotations) for ts in kids}),
            "values": sorted({repr(ts.annotations) for ts in kids}),
            "group spans": sorted({repr(spans[ts.group.span_id].name) for ts in kids})}


@task
def scheduler_view(xs: list[dict]) -> dict:
    """While it runs, every child is in the scheduler's memory: how are they annotated?"""
    from taskflow import get_dask_client

    seen = get_dask_client().run_on_scheduler(_children_annotations, prefix="own_span")
    return {"spans": [sorted(x.items()) for x in xs], **seen}


@flow
def spans_of_children(n: int = 200) -> dict:
    return scheduler_view(own_span.map(numbers(n)))


@flow
def bad_total(n: int = 50, bad: int = 13) -> int:
    return total(fails_at.map(numbers(n), bad=unmapped(bad)))


@task
def parts_seen(xs: list[int]) -> tuple[list[int], tuple[int, int]]:
    """``xs``, and what the scheduler holds while this task runs (:func:`biggest_group`)."""
    from taskflow import get_dask_client

    return xs, get_dask_client().run_on_scheduler(biggest_group, prefix="double_part")


@flow
def doubled_seen(n: int = 50):
    return parts_seen(double.map(numbers(n)))


def biggest_group(dask_scheduler, prefix: str) -> tuple[int, int]:
    """Through ``run_on_scheduler``: how many tasks named ``prefix`` the scheduler has,
    and the most dependencies any task it has takes."""
    tasks = dask_scheduler.tasks.values()
    return (sum(1 for ts in tasks if ts.prefix.name == prefix),
            max((len(ts.dependencies) for ts in tasks), default=0))
