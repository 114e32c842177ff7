"""State hooks: user callables run when a task run or a flow run reaches a state.

A hook is any callable (a function, or an object such as
:func:`taskflow.notify.webhook`'s) given to a task or a flow::

    @task(on_failure=[alert], on_retry=[log_retry])
    def load(path): ...

    @flow(on_failure=[alert], on_crashed=[alert], on_completion=[done])
    def etl(day): ...

Task hooks are called ``hook(task, task_run, state)`` with a
:class:`TaskRunInfo`; flow hooks ``hook(flow, flow_run, state)`` with a
:class:`FlowRunInfo`.  Which hooks a state calls:

* ``on_completion``: a task run or a flow run ends SUCCESS or CACHED;
* ``on_failure``: a task run ends FAILED, TIMED_OUT or TRIGGER_FAILED; a flow
  run ends FAILED;
* ``on_retry`` (tasks): an attempt failed and will be retried (RETRYING);
* ``on_crashed`` (flows): the run ends CRASHED (its scheduler or client went
  away, or its executor raised);
* ``on_cancellation`` (flows): the run ends CANCELLED.

Task hooks run on the worker that ran the task, after its final state is known
and before its state event leaves (a mapped task's hooks run once per child);
flow hooks run in the process that ran the flow, before the run's end is
recorded.  :func:`call_hooks` is the one place hooks are called: a hook that
raises is logged (WARNING, with its traceback, naming the hook and the run) and
a hook that runs past ``taskflow.hooks.timeout`` is left running in its thread
and logged; neither changes the state it was called for.  The records go to
the run's log (``taskflow.task_runs``), so they show in the run history.

Examples
--------
>>> from taskflow.states import State, StateType
>>> hooks_for_task(State(StateType.TIMED_OUT)), hooks_for_flow(State(StateType.CRASHED))
('on_failure', 'on_crashed')
>>> seen = []
>>> call_hooks([lambda *a: seen.append(a[2].type.value)], ("t", "run", State(StateType.FAILED)),
...            option="on_failure", what="task run 'load'")
>>> seen
['FAILED']
"""
from __future__ import annotations

import contextvars
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.utils

from taskflow import config
from taskflow.exceptions import FlowDefinitionError
from taskflow.logs import TASK_LOGGER
from taskflow.states import State, StateType

__all__ = [
    "FLOW_HOOKS",
    "TASK_HOOKS",
    "FlowRunInfo",
    "TaskRunInfo",
    "call_hooks",
    "hook_name",
    "hook_timeout",
    "hooks_for_flow",
    "hooks_for_task",
    "normalize_hooks",
]

Hook = Callable[[Any, Any, State], Any]

#: Hook options of a task, and of a flow.
TASK_HOOKS = ("on_failure", "on_completion", "on_retry")
FLOW_HOOKS = ("on_failure", "on_completion", "on_crashed", "on_cancellation")

logger = logging.getLogger(TASK_LOGGER)


@dataclass(frozen=True)
class TaskRunInfo:
    """The task run a task hook is called for.

    Attributes
    ----------
    flow_name, run_id : str
        The flow and the flow run (``run_id`` is the flow run's id).
    name : str
        The task-run name: ``load``, ``load-2`` when called twice, ``load[3]`` for
        mapped child 3.
    key : str
        Its Dask key, as text.
    map_index : int or None
    attempt : int
        The attempt the state belongs to (0 when it never ran: TRIGGER_FAILED, CACHED).
    worker : str
        The address of the worker that ran it (``"local"`` on LocalExecutor).
    """

    flow_name: str
    run_id: str
    name: str
    key: str = ""
    map_index: int | None = None
    attempt: int = 0
    worker: str = ""


@dataclass(frozen=True)
class FlowRunInfo:
    """The flow run a flow hook is called for; ``parameters`` has secrets masked."""

    flow_name: str
    run_id: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


_TASK = {
    StateType.SUCCESS: "on_completion",
    StateType.CACHED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.TIMED_OUT: "on_failure",
    StateType.TRIGGER_FAILED: "on_failure",
    StateType.RETRYING: "on_retry",
}
_FLOW = {
    StateType.SUCCESS: "on_completion",
    StateType.CACHED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.TIMED_OUT: "on_failure",
    StateType.TRIGGER_FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
}


def hooks_for_task(state: State) -> str | None:
    """The task hook option ``state`` calls, if any."""
    return _TASK.get(state.type)


def hooks_for_flow(state: State) -> str | None:
    """The flow hook option ``state`` calls, if any."""
    return _FLOW.get(state.type)


def normalize_hooks(value: Any, *, option: str, owner: str) -> tuple[Hook, ...]:
    """``value`` (None, one callable, or a list of them) as a tuple of callables.

    ``owner`` names the task or flow in the error (``"task 'load'"``).

    Examples
    --------
    >>> normalize_hooks(None, option="on_failure", owner="task 'load'")
    ()
    >>> normalize_hooks([print], option="on_failure", owner="task 'load'")
    (<built-in function print>,)
    """
    if value is None:
        return ()
    items = (value,) if callable(value) else value
    try:
        items = tuple(items)
    except TypeError:
        items = (value,)
    bad = [h for h in items if not callable(h)]
    if bad:
        raise FlowDefinitionError(
            f"{owner}: {option} takes a callable or a list of callables "
            f"(hook(obj, run, state)), got {bad[0]!r}", option=option,
        )
    return items


def hook_name(hook: Any) -> str:
    """A readable name for ``hook``: ``module.qualname``, else its repr."""
    qual = getattr(hook, "__qualname__", None)
    if qual and not isinstance(hook, type):
        mod = getattr(hook, "__module__", None)
        return f"{mod}.{qual}" if mod else str(qual)
    return repr(hook)


def hook_timeout() -> float:
    """``taskflow.hooks.timeout`` in seconds."""
    return float(dask.utils.parse_timedelta(config.get("hooks.timeout", "30s")))


def call_hooks(
    hooks: Iterable[Hook],
    args: tuple[Any, Any, State],
    *,
    option: str,
    what: str,
    timeout: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Call each hook with ``args``; log and swallow what goes wrong; never raise.

    Each hook runs in another thread (with this thread's context variables),
    waited for at most ``timeout`` seconds (default ``taskflow.hooks.timeout``);
    one still running then is left to finish on its own.  ``what`` names the
    run in log messages (``"task run 'load[3]' of flow run 1a2b3c4d"``);
    ``extra`` goes with every log record.
    """
    hooks = list(hooks)
    if not hooks:
        return
    limit = hook_timeout() if timeout is None else timeout
    state = args[2]
    for hook in hooks:
        name = hook_name(hook)
        outcome: dict[str, BaseException] = {}
        ctx = contextvars.copy_context()

        def target(hook: Hook = hook, outcome: dict[str, BaseException] = outcome,
                   ctx: contextvars.Context = ctx) -> None:
            try:
                ctx.run(hook, *args)
            except BaseException as e:  # noqa: BLE001 - reported by the caller's thread
                outcome["error"] = e

        if not _threads.run(target, limit):
            logger.warning("%s hook %s of %s did not finish within %g s "
                           "(taskflow.hooks.timeout); it is left running, and the state stays %s",
                           option, name, what, limit, state.type.value, extra=dict(extra or {}))
        elif "error" in outcome:
            err = outcome["error"]
            logger.warning("%s hook %s of %s raised %s: %s; the state stays %s",
                           option, name, what, type(err).__name__, err, state.type.value,
                           exc_info=(type(err), err, err.__traceback__), extra=dict(extra or {}))


class _HookThreads:
    """Daemon threads that run hooks, kept while idle (for a minute) and reused.

    Starting a thread per call costs a few hundred microseconds, and more on a
    busy worker; a hook that hangs keeps its thread, and the next call starts
    another.  Daemon threads: a hung hook never keeps a process from exiting.
    """

    IDLE_EXIT = 60.0

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job that no caller counted on yet

    def run(self, fn: Callable[[], None], timeout: float) -> bool:
        """Run ``fn`` in one of the threads; False when it did not finish within ``timeout``."""
        done = threading.Event()
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put((fn, done))
        if spawn:
            threading.Thread(target=self._loop, name="taskflow-hooks", daemon=True).start()
        return done.wait(timeout)

    def _loop(self) -> None:
        while True:
            try:
                fn, done = self._jobs.get(timeout=self.IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # nobody counts on this thread: it may go
                        self._idle -= 1
                        return
                continue
            try:
                fn()
            finally:
                done.set()
                with self._lock:
                    self._idle += 1

    def _after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]  # the parent's threads are not in the child


_threads = _HookThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads._after_fork)
