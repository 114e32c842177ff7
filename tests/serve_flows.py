"""Flows served by the serve tests (importable, so Dask workers load them by reference)."""
from __future__ import annotations

import time

from taskflow import flow, task
from taskflow.deploy.schedules import CronSchedule, IntervalSchedule
from tests.flows import bump


@task
def mark(path: str, note: str) -> int:
    return bump(path) if path else 0


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def broken_task() -> None:
    raise RuntimeError("this flow always fails")


@flow(schedule=IntervalSchedule("1s"))
def tick(path: str = "", note: str = "scheduled"):
    return mark(path, note)


@flow(schedule=CronSchedule("* * * * * *"))  # every second (a 6th field is seconds)
def broken():
    return broken_task()


@flow
def slow(seconds: float = 2.0, path: str = ""):
    return mark(path, "after nap", wait_for=[nap(seconds)])
