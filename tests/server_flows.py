"""Flows the server tests serve through real `taskflow serve` agents (importable by workers)."""
from __future__ import annotations

import os
import time

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
