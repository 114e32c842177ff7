"""Tasks and flows of the fault tests (importable, so worker processes load them).

Tasks count their runs in files under the ``counts`` folder they are given, and
signal progress through files, so a test in another process can wait for them.
"""
from __future__ import annotations

import os

from taskflow import flow, task
from tests.dask_flows import wait_for_file
from tests.flows import bump


@task(checkpoint=True)
def prepared(n: int, counts: str) -> list[int]:
    bump(os.path.join(counts, "prepared"))
    return list(range(n))


@task
def held(xs: list[int], counts: str) -> int:
    """Says it started, then waits (bounded) for a file that a test may never write."""
    bump(os.path.join(counts, "held"))
    with open(os.path.join(counts, "held-started"), "w"):
        pass
    wait_for_file(os.path.join(counts, "release"), timeout=120)
    return sum(xs)


@task
def reported(total: int) -> str:
    return f"total {total}"


@flow
def lost_midway(n: int = 4, counts: str = ""):
    return reported(held(prepared(n, counts), counts))


@task(resources={"GPU": 1})
def on_gpu(x: int) -> int:
    return x + 1


@flow
def needs_gpu(x: int = 1):
    return on_gpu(x)


# -- checkpoints that fail their check ----------------------------------------------
@task(target="{flow_name}/{n}/kept.pkl")
def kept(n: int, counts: str) -> list[int]:
    bump(os.path.join(counts, "kept"))
    return list(range(n))


@task
def summed(xs: list[int], counts: str) -> int:
    bump(os.path.join(counts, "summed"))
    return sum(xs)


@flow
def trusted_target(n: int = 4, counts: str = ""):
    return summed(kept(n, counts), counts)


class Evil:
    """Unpickling it writes a file: proof that code in a result file ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
