"""Flows the server tests serve through real `taskflow serve` agents (importable by workers)."""
from __future__ import annotations

import datetime
import os
import time
from typing import Literal

from taskflow import flow, task
from tests.flows import bump


@task
def spell(name: str, times: int) -> list[str]:
    return [name] * times


@task
def shout(word: str) -> str:
    return word.upper() + "!"


@task
def join(words: list[str]) -> str:
    return " ".join(words)


@flow
def greet(name: str = "world", times: int = 2):
    """A quick flow with a mapped task."""
    return join(shout.map(spell(name, times)))


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def after(path: str) -> int:
    return bump(path) if path else 0


@flow
def sleepy(seconds: float = 60.0, path: str = ""):
    """A long run, for Cancel."""
    return after(path, wait_for=[nap(seconds)])


@task(checkpoint=True)
def prepare(counts: str) -> int:
    bump(os.path.join(counts, "prepare"))
    return 21


@task(retries=2, retry_delay=0)
def fragile(x: int, counts: str) -> int:
    bump(os.path.join(counts, "fragile"))
    if not os.path.exists(os.path.join(counts, "ok")):
        raise RuntimeError(f"no ok file in {counts}")
    return 2 * x


@flow
def brittle(counts: str = ""):
    """Fails (three attempts) until an ``ok`` file exists in ``counts``; its first task is
    checkpointed (the agent's taskflow.results.store), so Resume runs only the failed part."""
    return fragile(prepare(counts), counts)


@task
def describe(day: datetime.date, count: int, tags: list[str], mode: str, limit: int | None) -> str:
    return f"{day.isoformat()} {count * 2} {tags} {mode} {limit}"


@flow
def typed(day: datetime.date = datetime.date(2026, 1, 1), count: int = 1, tags: list[str] = ["a"],  # noqa: B006 - never mutated
          mode: Literal["fast", "slow"] = "fast", limit: int | None = None):
    """Typed parameters: the server checks Quick Run values against their recorded schemas."""
    return describe(day, count, tags, mode, limit)
