"""The context of the task run executing right now (a context variable).

The task runner sets it around each attempt; :func:`taskflow.get_run_logger`
reads it.  Nothing else does: no global context threads through the code.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskRunContext", "current"]


@dataclass(frozen=True)
class TaskRunContext:
    """Who is running: the flow, the flow run, the task run and its attempt."""

    flow_name: str
    run_id: str
    task_run_name: str
    key: str
    attempt: int
    forward: Callable[[dict[str, Any]], None] | None = None
    """Where log records go when they must travel to the flow's process."""


_current: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "taskflow_task_run", default=None
)


def current() -> TaskRunContext | None:
    """The context of the running task run, or None outside one."""
    return _current.get()


def set_current(ctx: TaskRunContext | None) -> contextvars.Token[TaskRunContext | None]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[TaskRunContext | None]) -> None:
    _current.reset(token)
