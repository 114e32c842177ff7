"""Concurrency limits by tag: at most N task runs carrying a tag run at once.

A limit is set in config, ``taskflow.concurrency.limits: {db: 3}`` (or
``DASK_TASKFLOW__CONCURRENCY__LIMITS='{"db": 3}'``), or in code before a run::

    taskflow.concurrency.limit("db", 3)

    @task(tags=["db"])
    def load(day): ...

The limits in force when a flow run starts travel with the run (in its
:class:`~taskflow.engine.steps.RunInfo`), so workers need no configuration.
How they are enforced:

* **On Dask**, with Dask's own ``distributed.Semaphore(max_leases=n,
  name="taskflow-tag-<tag>")``, held by the worker around the task run's
  attempts (retries included), so the limit holds across every flow run sharing
  the scheduler.  A task that must wait first reports a PENDING state whose
  message names the tag, then leaves the worker's thread pool while it waits
  (as a waiting retry does), so it holds no thread.  A task with several
  limited tags takes their slots in sorted order of the tags, so two tasks
  cannot deadlock each other.  A worker that dies holding a slot gives it back
  when its lease expires (``distributed.scheduler.locks.lease-timeout``,
  default 30 s).  A scheduler keeps the first limit it saw for a tag until it
  restarts: a run asking another limit for the same tag fails its tagged tasks
  with an error saying so.
* **On LocalExecutor**, a run executes one task at a time, so a limit of 1 or
  more always holds within a run; runs in several threads of one process (a
  serve process) share one ``threading.BoundedSemaphore`` per tag and limit.

Examples
--------
>>> limit("db", 3)
>>> limits()["db"]
3
>>> limits_of({"db", "fast"}, (("api", 1), ("db", 3)))
[('db', 3)]
>>> limit("db", 0)
Traceback (most recent call last):
...
taskflow.concurrency.ConcurrencyLimitError: concurrency limit of tag 'db' must be a whole number >= 1, got 0; to stop tagged tasks from running, do not run them
>>> clear("db")
"""
from __future__ import annotations

import contextlib
import numbers
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dask.config

from taskflow import config
from taskflow.exceptions import TaskflowError

if TYPE_CHECKING:
    from taskflow.states import State

__all__ = ["ConcurrencyLimitError", "SlotError", "clear", "limit", "limits", "limits_of",
           "local_slots", "semaphore_name"]


class ConcurrencyLimitError(TaskflowError, ValueError):
    """A concurrency limit that cannot be used (0, negative, not a number, bad tag)."""


class SlotError(TaskflowError):
    """A slot of a limited tag could not be taken for a reason other than waiting."""


def _check(tag: Any, n: Any) -> int:
    if not isinstance(tag, str) or not tag:
        raise ConcurrencyLimitError(f"a concurrency limit needs a tag name (a non-empty "
                                    f"string), got {tag!r}", tag=tag)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) < 1:
        raise ConcurrencyLimitError(
            f"concurrency limit of tag {tag!r} must be a whole number >= 1, got {n!r}; "
            "to stop tagged tasks from running, do not run them", tag=tag, limit=n,
        )
    return int(n)


def limit(tag: str, n: int) -> None:
    """At most ``n`` task runs tagged ``tag`` run at once, in flow runs started later.

    Sets ``taskflow.concurrency.limits`` in this process's dask.config.

    Examples
    --------
    >>> limit("api", 2)
    >>> limits()["api"]
    2
    >>> clear("api")
    """
    n = _check(tag, n)
    dask.config.set({"taskflow.concurrency.limits": {**_configured(), tag: n}})


def clear(tag: str | None = None) -> None:
    """Remove the limit of ``tag`` (every limit when None) from this process's config."""
    current = {} if tag is None else {k: v for k, v in _configured().items() if k != tag}
    dask.config.set({"taskflow.concurrency.limits": current})


def _configured() -> dict[str, Any]:
    value = config.get("concurrency.limits") or {}
    if not isinstance(value, Mapping):
        raise ConcurrencyLimitError(
            f"taskflow.concurrency.limits must map tags to numbers, e.g. {{db: 3}}, got {value!r}")
    return dict(value)


def limits() -> dict[str, int]:
    """The limits in force, checked: ``{tag: n}``."""
    return {tag: _check(tag, n) for tag, n in _configured().items()}


def limits_of(tags: Iterable[str], run_limits: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The ``(tag, limit)`` pairs that apply to a task with ``tags``, sorted by tag."""
    tags = set(tags)
    return sorted((t, n) for t, n in run_limits if t in tags)


def semaphore_name(tag: str) -> str:
    """The name of the Dask semaphore of ``tag`` (shared by every run on a scheduler)."""
    return f"taskflow-tag-{tag}"


def waiting_message(tag: str, n: int) -> str:
    return f"waiting for a slot of tag {tag!r} (concurrency limit {n})"


# -- in this process (LocalExecutor) ------------------------------------------------------
_local: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_local_lock = threading.Lock()


@contextlib.contextmanager
def local_slots(limits: list[tuple[str, int]], report: Callable[[State], None]) -> Iterator[None]:
    """Hold one slot of each limit with semaphores shared by this process's threads."""
    from taskflow.states import State, StateType

    held: list[threading.BoundedSemaphore] = []
    try:
        for tag, n in limits:
            with _local_lock:
                sem = _local.setdefault((tag, n), threading.BoundedSemaphore(n))
            if not sem.acquire(blocking=False):
                report(State(StateType.PENDING, message=waiting_message(tag, n)))
                sem.acquire()
            held.append(sem)
        yield
    finally:
        for sem in reversed(held):
            sem.release()
