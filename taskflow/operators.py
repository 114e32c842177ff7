"""Operators on handles: ``x + 10``, ``rows[0]``, ``n > 3`` inside a flow become small tasks.

Inside a flow, a handle (a task's output or a parameter) has no value yet, so
Python cannot compute ``x + 10`` at once.  As in Prefect 1, each such
expression adds a small task to the graph, named after the operator (``add``,
``getitem``, ``gt``...; the dashboard and the history show those names), which
computes it on a worker when its inputs are there::

    @flow
    def etl(n: int = 10):
        rows = extract(n)
        first = rows[0]                # a task named getitem
        return load(first + n * 2)     # tasks named mul and add

Arithmetic (``+ - * / // % **``, each also with the handle on the right),
comparisons (``< <= > >=``), ``&`` and ``|`` (tasks ``and`` and ``or``: Python's
``and``/``or`` keywords cannot be overloaded) and indexing (``h[0]``,
``h["path"]``, ``h[1:3]``) are supported.  ``==`` and ``!=`` keep their Python meaning (two handles are equal
when they are the same handle, and handles stay usable as dict keys); compare
values inside a task, or branch with ``taskflow.case(handle, value)``, which
compares on a worker.  ``if handle:`` stays an error pointing to ``case``.

Examples
--------
>>> from taskflow import flow, task
>>> @task
... def numbers(n):
...     return list(range(n))
>>> @flow
... def picked(n: int = 5):
...     xs = numbers(n)
...     return xs[0] + xs[-1] * 2
>>> [node.name for node in picked.graph.nodes]
['numbers', 'getitem', 'getitem-2', 'mul', 'add']
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from taskflow.graph import register_operator_tasks
from taskflow.task import Task

__all__ = ["BINARY", "TASKS", "flatten_task"]


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


#: Operator name (the task's name) to the function it applies.
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "and": operator.and_,
    "or": operator.or_,
    "getitem": _getitem,
}

def _operator_task(name: str, fn: Callable[[Any, Any], Any]) -> Task[..., Any]:
    def apply(left: Any, right: Any) -> Any:
        return fn(left, right)

    apply.__name__ = name
    t: Task[..., Any] = Task(apply, name=name)
    t.__module__, t.__qualname__ = __name__, f"{name}_task"
    return t


#: Operator name to the task it adds; each is importable as ``taskflow.operators.<name>_task``,
#: so workers unpickle it by reference.
TASKS: dict[str, Task[..., Any]] = {name: _operator_task(name, fn) for name, fn in BINARY.items()}
globals().update({t.__qualname__: t for t in TASKS.values()})


def _flatten(lists: Any) -> list[Any]:
    return [x for inner in lists for x in inner]


#: What ``task(flatten(h))`` adds: one list made of the lists in ``h``.
flatten_task: Task[..., list[Any]] = Task(_flatten, name="flatten")
flatten_task.__qualname__ = "flatten_task"

register_operator_tasks({**TASKS, "flatten": flatten_task})
