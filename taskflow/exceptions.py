"""Errors raised by taskflow, and the signals a task may raise.

Every engine error derives from :class:`TaskflowError`.  Errors carry their
context as attributes (the task, the parameter, the address...) and survive
pickling, because they cross process boundaries between workers and clients.

Signals (:class:`SKIP`, :class:`FAIL`) are not errors: a task raises one to end
its run in a chosen state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.states import State

__all__ = [
    "FAIL",
    "SKIP",
    "FlowDefinitionError",
    "FlowRunError",
    "InvalidTransition",
    "ParameterError",
    "SchedulerUnreachableError",
    "Signal",
    "TaskflowError",
    "TaskTimeoutError",
    "UnpicklableTaskError",
    "WorkerMismatchError",
]


class TaskflowError(Exception):
    """Base class of every error taskflow raises.

    Keyword arguments become attributes and are kept through pickling.

    Examples
    --------
    >>> import pickle
    >>> e = TaskflowError("bad thing", task="load")
    >>> pickle.loads(pickle.dumps(e)).task
    'load'
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for name, value in context.items():
            setattr(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


class InvalidTransition(TaskflowError):
    """A task run was to change state in a way no run can (a bug in taskflow).

    Carries ``task``, ``old`` and ``new`` (state type values); pickles.

    Examples
    --------
    >>> import pickle
    >>> e = InvalidTransition("no", task="load", old="SUCCESS", new="RUNNING")
    >>> (pickle.loads(pickle.dumps(e)).old, e.new)
    ('SUCCESS', 'RUNNING')
    """


def _rebuild(cls: type[TaskflowError], message: str, context: dict[str, Any]) -> TaskflowError:
    err = cls.__new__(cls)
    TaskflowError.__init__(err, message, **context)
    return err


class FlowDefinitionError(TaskflowError, TypeError):
    """The flow cannot be built: wrong arguments, a cycle, ``if`` on a handle..."""


class ParameterError(TaskflowError, TypeError):
    """Flow run parameters do not fit the flow (unknown or missing names)."""


class SchedulerUnreachableError(TaskflowError, OSError):
    """No Dask scheduler answered at the given address in time."""


class UnpicklableTaskError(TaskflowError, TypeError):
    """A task's function cannot be sent to Dask workers."""


class WorkerMismatchError(TaskflowError, RuntimeError):
    """A Dask worker runs other versions of Python or key packages than the client."""


class TaskTimeoutError(TaskflowError, TimeoutError):
    """A task attempt ran longer than its ``timeout``."""


class FlowRunError(TaskflowError):
    """A flow run did not succeed; ``.state`` is its final State."""

    state: State


class Signal(Exception):
    """Base of the signals a task raises to choose its final state."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class SKIP(Signal):
    """Raise inside a task to end it SKIPPED.

    Examples
    --------
    >>> from taskflow import task, SKIP
    >>> @task
    ... def maybe(x):
    ...     if x is None:
    ...         raise SKIP("no input today")
    ...     return x
    """


class FAIL(Signal):
    """Raise inside a task to end it FAILED at once, without retries."""
