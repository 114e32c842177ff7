"""Flows written the way Prefect 1 users write them (importable: workers unpickle them)."""
from __future__ import annotations

import os

from taskflow import SKIP, flatten, flow, task
from taskflow.results import CacheContext
from tests.flows import bump


def _double(x):
    return 2 * x


double = task(_double, name="twice")  # a function made a task with options, Prefect 1 style


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def config() -> dict:
    return {"path": "/data/in", "sizes": [3, 5]}


@task
def inner(x):
    return x


@flow
def arithmetic(n: int = 4):
    xs = numbers(n)
    cfg = config()
    return {
        "shifted": inner(n + 10),
        "reversed": 10 - n,
        "scaled": xs[-1] * 2 ** n,
        "ratio": (n / 8, 9 // n, 9 % n),
        "first": xs[0],
        "window": xs[1:3],
        "path": cfg["path"],
        "size": cfg["sizes"][1],
        "compared": (n > 3, n >= 5, 3 < n, n <= 4),
        "logic": ((n > 3) & (n < 5), (n > 9) | False),
        "doubled": double(n),
    }


@task
def pairs(n: int) -> list[list[int]]:
    return [[i, 10 * i] for i in range(n)]


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow
def flattened(n: int = 3):
    return total(flatten(pairs(n))), total(flatten([[1, 2], [3]]))


@task
def skip_all(x: int) -> int:
    raise SKIP(f"nothing to do for {x}")


@task
def after(x: int) -> int:
    return x


@flow
def all_skipped(n: int = 3):
    return after.map(skip_all.map(numbers(n)))


def _inputs_only(context: CacheContext, inputs: dict) -> str:
    return f"{inputs['x']}"


@task(cache_key_fn=_inputs_only, cache_scope="shared_square")
def square_a(x: int, counts: str) -> int:
    bump(os.path.join(counts, "square"))
    return x * x


@task(cache_key_fn=_inputs_only, cache_scope="shared_square")
def square_b(x: int, counts: str) -> int:
    bump(os.path.join(counts, "square"))
    return x * x


@flow
def first_user(x: int = 3, counts: str = ""):
    return square_a(x, counts)


@flow
def second_user(x: int = 3, counts: str = ""):
    return square_b(x, counts)
