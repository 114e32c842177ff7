"""Flows for tests/test_sent_specs.py: what the task runs of a window share (dask_spec).

Each task says which flow run it ran for, as its worker saw it (the run facts it
was given), and where.
"""
from __future__ import annotations

import os
import time
from typing import Any

from distributed import get_worker

from taskflow import flow, task, unmapped
from taskflow.context import current

GATE_TIMEOUT = 60.0


def seen(i: Any) -> tuple[Any, str, str, str]:
    """``(i, flow name, run id, worker address)`` as the running task run knows them."""
    ctx = current()
    assert ctx is not None
    return i, ctx.flow_name, ctx.run_id, get_worker().address


@task
def start(i: int) -> tuple[Any, str, str, str]:
    return seen(i)


@task
def gate(path: str, *_: Any) -> int:
    """Say it runs (``path + '.running'``), then wait until ``path`` exists."""
    open(path + ".running", "w").close()
    deadline = time.monotonic() + GATE_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return 0


@task
def after(i: int, _gate: int) -> tuple[Any, str, str, str]:
    return seen(i)


@task(resources={"LATE": 1})
def on_late(i: int, _first: Any) -> tuple[Any, str, str, str]:
    return seen(i)


@flow
def joins_late():
    """Four tasks that only a worker offering the resource ``LATE`` can run."""
    return [on_late(i, start(i)) for i in range(4)]


@flow
def gated(path: str):
    """Six tasks that wait for ``path`` behind a gate (which waits after a first task)."""
    g = gate(path, start(-1))
    return [after(i, g) for i in range(6)]


@flow
def gated_too(path: str):
    """Another flow of the same shape (another name, other tasks' facts)."""
    g = gate(path, start(-1))
    return [after(i * 10, g) for i in range(6)]


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def own(i: int, tag: str) -> tuple[int, str, str, Any]:
    """``(i, tag, task run name, Dask key)`` as the running child knows them."""
    from distributed.worker import thread_state

    ctx = current()
    assert ctx is not None
    return i, tag, ctx.task_run_name, thread_state.key


@task
def count(xs: list[Any]) -> int:
    return len(xs)


@flow
def alike_children(n: int, tag: str):
    """A map over a run-time list: children alike but for their index."""
    return own.map(numbers(n), tag=unmapped(tag))


@flow
def alike_counted(n: int, tag: str):
    """The same map, and one task over all its children."""
    return count(own.map(numbers(n), tag=unmapped(tag)))


@task
def names_of(results: list) -> list[str]:
    return [r[2] for r in results]


@flow
def alike_children_listed(n: int):
    """The map, and one task over its children's values (in their order)."""
    return names_of(own.map(numbers(n), tag=unmapped("t")))


def unrunnable(dask_scheduler: Any = None) -> int:
    """Through ``run_on_scheduler``: how many tasks wait for a worker that can run them."""
    return len(dask_scheduler.unrunnable)


def fetches(dask_scheduler: Any = None) -> int:
    """Through ``run_on_scheduler``: how many times workers asked for run facts."""
    return sum(1 for _, msg in dask_scheduler.get_events("all")
               if isinstance(msg, dict) and msg.get("action") == "run-function"
               and b"facts_on_scheduler" in bytes(msg.get("function") or b""))


def forget_facts(dask_worker: Any = None) -> int:
    """Through ``Client.run``: this worker forgets every run's facts (as a restart would)."""
    from taskflow.executors import dask_spec

    n = len(dask_spec._KEPT)
    dask_spec._KEPT.clear()
    dask_spec._ALIVE.clear()
    return n
