"""Flows and hooks used by the hook, notification and concurrency tests.

Importable, so Dask worker processes load them by reference.  Hooks that must
be seen across processes append JSON lines to a file per label under
:data:`HOOK_DIR`; each line carries the flow run id, so tests read only their own.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from taskflow import flow, task, unmapped
from tests.flows import boom, inc

HOOK_DIR = os.path.join(tempfile.gettempdir(), f"taskflow-hook-tests-{os.getuid()}")


class Record:
    """A hook that appends what it was called with to ``HOOK_DIR/<label>.jsonl``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Record({self.label!r})"

    def __call__(self, obj: Any, run: Any, state: Any) -> None:
        os.makedirs(HOOK_DIR, exist_ok=True)
        line = json.dumps({
            "label": self.label, "obj": obj.name, "run_id": run.run_id,
            "name": getattr(run, "name", None), "attempt": getattr(run, "attempt", None),
            "worker": getattr(run, "worker", None), "state": state.type.value,
            "message": state.message, "pid": os.getpid(), "time": time.time(),
            "parameters": dict(getattr(run, "parameters", {}) or {}),
        })
        with open(os.path.join(HOOK_DIR, f"{self.label}.jsonl"), "a") as f:
            f.write(line + "\n")


def records(run_id: str, label: str | None = None) -> list[dict[str, Any]]:
    """What the Record hooks saw for flow run ``run_id`` (of one label, or all)."""
    out = []
    labels = [label] if label else [n[:-6] for n in os.listdir(HOOK_DIR)] if os.path.isdir(
        HOOK_DIR) else []
    for lab in labels:
        path = os.path.join(HOOK_DIR, f"{lab}.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                out.extend(r for r in map(json.loads, f) if r["run_id"] == run_id)
    return sorted(out, key=lambda r: r["time"])


def raising_hook(obj: Any, run: Any, state: Any) -> None:
    raise RuntimeError("this hook always fails")


def sleeping_hook(obj: Any, run: Any, state: Any) -> None:
    time.sleep(5)


@task(retries=1, on_retry=[Record("retry")], on_failure=[Record("task_failure")])
def flaky(x: int) -> int:
    raise ValueError(f"flaky {x}")


@task(on_completion=[Record("task_completion")], on_failure=[Record("task_failure")])
def child(x: int) -> int:
    return x * 2


@task(on_failure=[Record("task_failure")])
def after(x: int) -> int:
    return x


@flow(on_failure=[Record("flow_failure")], on_completion=[Record("flow_completion")])
def hooked(api_token: str = "s3cret"):
    doubled = child.map([1, 2, 3])
    return after(flaky(1)), doubled


@flow(on_failure=[Record("flow_failure")], on_completion=[Record("flow_completion")])
def hooked_ok(xs: list[int] = [0, 1]):  # noqa: B006 - a parameter default, never mutated
    return child.map(xs)


@task(on_failure=[raising_hook, sleeping_hook], on_completion=[raising_hook, sleeping_hook])
def watched(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x


@flow(on_failure=[raising_hook, sleeping_hook], on_completion=[raising_hook])
def misbehaving(x: int = 1):
    return watched(x), inc(x)


@task
def plain_watched(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x


@flow
def well_behaved(x: int = 1):
    return plain_watched(x), inc(x)


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@flow(on_crashed=[Record("crashed")], on_cancellation=[Record("cancelled")],
      on_failure=[Record("flow_failure")])
def napping(seconds: float = 30.0):
    return inc(1, wait_for=[nap(seconds)])


# -- notifications: flows made with a given hook --------------------------------------------
def failing_task_flow(hook: Any):
    bad = boom.with_options(on_failure=[hook])

    @flow(name="failing_task")
    def failing_task():
        return bad(1)

    return failing_task


def failing_children_flow(hook: Any):
    bad = boom.with_options(on_failure=[hook])

    @flow(name="failing_children")
    def failing_children():
        return bad.map([1, 2, 3])

    return failing_children


def succeeding_flow(hook: Any):
    good = inc.with_options(on_failure=[hook])

    @flow(name="succeeding", on_failure=[hook])
    def succeeding():
        return good.map([1, 2, 3])

    return succeeding


# -- concurrency ---------------------------------------------------------------------------
@task(tags=["db"])
def db_call(i: int, seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@task(priority=-10)  # scheduled after the tagged ones: they must not hold every thread
def free_call(i: int, seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@flow
def limited(items: list[int], free: list[int], seconds: float = 0.3):
    return {"db": db_call.map(items, seconds=unmapped(seconds)),
            "free": free_call.map(free, seconds=unmapped(seconds))}


@task(tags=["db", "api"])
def both_call(i: int, seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@task(tags=["api", "db"])
def both_reversed(i: int, seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@flow
def two_tags(items: list[int], seconds: float = 0.2):
    return {"a": both_call.map(items, seconds=unmapped(seconds)),
            "b": both_reversed.map(items, seconds=unmapped(seconds))}
