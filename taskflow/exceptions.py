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
    "SettingError",
    "Signal",
    "TaskflowError",
    "TaskTimeoutError",
    "UnpicklableTaskError",
    "LocalStoreWarning",
    "ResourcesUnavailableError",
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
    """The flow cannot be built: wrong arguments, a cycle, ``if`` on a handle...

    Raised while a task or flow is defined or traced, before anything runs.

    Examples
    --------
    >>> from taskflow import task
    >>> task(retries=-1)(print)
    Traceback (most recent call last):
    ...
    taskflow.exceptions.FlowDefinitionError: task 'print': retries must be a whole number >= 0, got -1
    """


class ParameterError(TaskflowError, TypeError):
    """Flow run parameters do not fit the flow (unknown or missing names).

    Raised by :meth:`taskflow.Flow.run` before anything runs; ``unknown`` or
    ``missing`` holds the names.

    Examples
    --------
    >>> from taskflow import flow, task
    >>> @task
    ... def inc(x):
    ...     return x + 1
    >>> @flow
    ... def f(n: int = 1):
    ...     return inc(n)
    >>> f.bind_parameters({"m": 2})
    Traceback (most recent call last):
    ...
    taskflow.exceptions.ParameterError: flow 'f' has no parameter 'm'; its parameters are: n=1
    """


class SchedulerUnreachableError(TaskflowError, OSError):
    """No Dask scheduler answered at the given address in time.

    ``address`` is the address tried; the wait is ``taskflow.executor.connect-timeout``.

    Examples
    --------
    >>> from taskflow.executors import DaskExecutor
    >>> etl.run(executor=DaskExecutor(address="tcp://10.0.0.5:8786"))  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.SchedulerUnreachableError: no Dask scheduler answered at 'tcp://10.0.0.5:8786' within 10 s ...
    """


class SettingError(TaskflowError, ValueError):
    """A ``taskflow`` setting in dask.config has a value of the wrong kind.

    Raised before a run starts (:func:`taskflow.settings.check`); ``key`` is the
    setting's full name and ``value`` what was found.

    Examples
    --------
    >>> import dask, taskflow
    >>> with dask.config.set({"taskflow.hooks.timeout": "a while"}):
    ...     etl.run()  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.SettingError: taskflow.hooks.timeout must be a duration such as '10s' or a number of seconds, not 'a while': set it with ...
    """


class UnpicklableTaskError(TaskflowError, TypeError):
    """A task's function cannot be sent to Dask workers.

    Raised by a :class:`~taskflow.executors.DaskExecutor` before anything is sent,
    naming the task (for example a function that holds a lock or an open file).

    Examples
    --------
    >>> import threading
    >>> from taskflow import flow, task
    >>> lock = threading.Lock()
    >>> @task
    ... def guarded():
    ...     with lock:
    ...         return 1
    >>> @flow
    ... def locked():
    ...     return guarded()
    >>> locked.run()  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.UnpicklableTaskError: task 'guarded' cannot be sent to Dask workers ...
    """


class WorkerMismatchError(TaskflowError, RuntimeError):
    """A Dask worker runs other versions of Python or key packages than the client.

    Checked before tasks are sent (``taskflow.executor.check-versions``): Python
    major.minor, dask, distributed, cloudpickle and taskflow.  The message names each
    worker and both versions.

    Examples
    --------
    >>> etl.run(executor=DaskExecutor(address="tcp://10.0.0.5:8786"))  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.WorkerMismatchError: 1 Dask worker(s) cannot run taskflow tasks from this process: worker tcp://...: Python 3.12 on the worker, 3.11 here. ...
    """


class ResourcesUnavailableError(TaskflowError, RuntimeError):
    """A task asks for worker resources (``resources={"GPU": 1}``) no worker offers.

    Raised before anything is sent to the cluster; on a cluster the executor
    scales, the task waits at most ``taskflow.executor.resource-timeout`` instead.

    Examples
    --------
    >>> from taskflow import flow, task
    >>> @task(resources={"GPU": 1})
    ... def train() -> None: ...
    >>> @flow
    ... def f():
    ...     train()
    >>> f.run()  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.ResourcesUnavailableError: task 'train' asks for resources {'GPU': 1}, which no worker ...
    """


class LocalStoreWarning(UserWarning):
    """A ``file://`` result store is used by Dask workers on other hosts than this one.

    Each worker would write its checkpoints to its own disk, where a resume on
    another machine cannot find them: use a shared path or an object store.

    Examples
    --------
    >>> import warnings
    >>> from taskflow import LocalStoreWarning
    >>> warnings.simplefilter("error", LocalStoreWarning)  # doctest: +SKIP
    """


class TaskTimeoutError(TaskflowError, TimeoutError):
    """A task attempt ran longer than its ``timeout``."""


class FlowRunError(TaskflowError):
    """A flow run did not succeed; ``.state`` is its final State.

    Raised by :meth:`taskflow.FlowRun.result` (and so by calling a flow), with
    ``run_id`` and ``flow``; the failed task's exception is its ``__cause__``.

    Examples
    --------
    >>> run = etl.run(n=-1)  # doctest: +SKIP
    >>> run.result()  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.exceptions.FlowRunError: flow run 3f2a... of flow 'etl' ended FAILED: task 'extract' failed: ...
    """

    state: State


class Signal(Exception):
    """Base of the signals a task raises to choose its final state."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class SKIP(Signal):
    """Raise inside a task to end it SKIPPED.

    Parameters
    ----------
    message : str
        Why: the skipped state's message.

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
    """Raise inside a task to end it FAILED at once, without retries.

    Parameters
    ----------
    message : str
        Why: the failed state's message.

    Examples
    --------
    >>> from taskflow import task, FAIL
    >>> @task(retries=3)
    ... def check_quota(left: int):
    ...     if left <= 0:
    ...         raise FAIL("quota exhausted")  # no retry would help
    ...     return left
    """
