"""Conditional tasks: ``case`` blocks and ``merge``.

``with case(handle, value):`` makes every task created in the block wait for a
tiny check task that compares the handle's output with ``value`` *on a worker*.
When they differ the check ends SKIPPED, and so (under the default trigger) do
the tasks in the block and whatever depends only on them.  ``merge(a, b, ...)``
gives the output of the first branch that was not skipped.

No decision goes through the client: the check and merge run as Dask tasks.

Examples
--------
>>> from taskflow import flow, task, case, merge
>>> @task
... def is_big(xs):
...     return len(xs) > 2
>>> @task
... def report(kind):
...     return kind
>>> @flow
... def branchy(xs: list = (1, 2, 3)):
...     big = is_big(xs)
...     with case(big, True):
...         a = report("big")
...     with case(big, False):
...         b = report("small")
...     return merge(a, b)
"""
from __future__ import annotations

from typing import Any

from taskflow import triggers
from taskflow.exceptions import FAIL, SKIP, FlowDefinitionError
from taskflow.graph import FlowBuilder, Handle, current_builder
from taskflow.task import Task

__all__ = ["case", "merge"]


def _check(value: Any, expected: Any, label: str) -> bool:
    if value == expected:
        return True
    raise SKIP(f"condition {label} was not met (the value was {value!r})")


def _merge(*branches: Any) -> Any:
    from taskflow.engine.markers import StateMarker  # runs on a worker, after the engine loaded

    for value in branches:
        if type(value) is not StateMarker:
            return value
    failed = [b.state for b in branches if b.state.is_failed()]
    if failed:
        raise FAIL(f"no branch of merge succeeded ({failed[0].type.value}: {failed[0].message})")
    raise SKIP("every branch of merge was skipped")


_check_task: Task[..., bool] = Task(_check, name="case")
_check_task.engine_internal = True
_merge_task: Task[..., Any] = Task(_merge, name="merge", trigger=triggers.all_finished)
_merge_task.engine_internal = True
_merge_task.receives_state_markers = True


def _builder(what: str) -> FlowBuilder:
    builder = current_builder()
    if builder is None:
        raise FlowDefinitionError(f"{what} is used inside a flow definition (@flow or `with Flow`)")
    return builder


class case:  # noqa: N801 - used like a statement
    """Run the tasks created inside the block only when ``handle``'s output equals ``value``.

    Parameters
    ----------
    handle : Handle
        The output of a task (or a parameter) to test.
    value : object
        What it must equal (``==``) for the block's tasks to run.
    """

    def __init__(self, handle: Any, value: Any) -> None:
        if not isinstance(handle, Handle):
            raise FlowDefinitionError(
                f"case() takes the handle of a task or parameter, got {handle!r}; for a "
                "value known when the flow is defined, use a plain Python `if`"
            )
        self.handle, self.value = handle, value
        self._builder: FlowBuilder | None = None

    def __enter__(self) -> case:
        builder = _builder("case()")
        label = f"{self.handle.name} == {self.value!r}"
        check = builder.add_task_call(_check_task, (self.handle, self.value, label), {})
        builder.conditions.append(check._ref.id)  # type: ignore[union-attr]
        self._builder = builder
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._builder is not None
        self._builder.conditions.pop()


def merge(*handles: Any) -> Any:
    """The output of the first of ``handles`` whose task was not skipped.

    Ends SKIPPED when every branch was skipped, FAILED when none succeeded and
    one failed.
    """
    if not handles:
        raise FlowDefinitionError("merge() needs at least one handle")
    return _builder("merge()").add_task_call(_merge_task, handles, {})
