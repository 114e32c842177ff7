"""Run observers: hooks that see every flow run start, every event, and the end.

History, the dashboard page and progress bars watch runs through this one seam.
Hooks are no-op methods taking keyword arguments (and ``**kwargs``, so they
survive new arguments); override what you need and register an instance with
:func:`add_observer`.  ``event`` is called from whatever thread delivers events
(on Dask, the client's event loop): keep it quick and hand heavy work elsewhere.
An observer that raises is logged and never fails a run.

Examples
--------
>>> from taskflow.engine.observers import RunObserver, add_observer, remove_observer
>>> class Count(RunObserver):
...     n = 0
...     def event(self, *, event, **kwargs):
...         self.n += 1
>>> obs = add_observer(Count())
>>> remove_observer(obs)
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.engine.plan import Plan
    from taskflow.executors.base import Executor, Outcome
    from taskflow.runs import FlowRun, RunnableFlow

__all__ = ["RunObserver", "add_observer", "observers", "remove_observer"]

logger = logging.getLogger("taskflow.observers")


class RunObserver:
    """Base class: every hook does nothing."""

    def run_preparing(self, *, flow: RunnableFlow, plan: Plan, **kwargs: Any) -> None:
        """A flow run was planned; its executor is about to connect, which may take
        seconds (starting a cluster).  Start slow set-up here, in the background."""

    def run_started(
        self, *, flow: RunnableFlow, plan: Plan, executor: Executor, dashboard_link: str | None,
        **kwargs: Any,
    ) -> None:
        """A flow run is about to be handed to its executor.

        ``started_at`` (in ``kwargs``) is the time the run counts as started: its
        duration, wherever it is shown, runs from there to its State's ``ended_at``.
        """

    def event(self, *, event: dict[str, Any], **kwargs: Any) -> None:
        """A state event or log record of a running flow run arrived."""

    def run_finished(
        self, *, run: FlowRun, plan: Plan, outcome: Outcome | None = None, **kwargs: Any
    ) -> None:
        """A flow run ended; ``run.state`` and ``run.task_states`` are final.

        ``outcome`` is what the executor returned (the keys it lost, a cancel)."""

    def run_aborted(self, *, plan: Plan, error: BaseException, **kwargs: Any) -> None:
        """The executor raised ``error`` (an interrupt, a task that cannot be sent...):
        the run ends without a FlowRun and ``run_finished`` is not called."""


_lock = threading.Lock()
_observers: list[RunObserver] = []


def add_observer(observer: RunObserver) -> RunObserver:
    """Register ``observer`` for every later flow run in this process."""
    with _lock:
        if observer not in _observers:
            _observers.append(observer)
    return observer


def remove_observer(observer: RunObserver) -> None:
    with _lock:
        if observer in _observers:
            _observers.remove(observer)


def observers() -> list[RunObserver]:
    with _lock:
        return list(_observers)


def notify(watchers: list[RunObserver], hook: str, **kwargs: Any) -> None:
    """Call ``hook`` on each observer; log, never raise."""
    for obs in watchers:
        try:
            getattr(obs, hook)(**kwargs)
        except Exception:
            logger.exception("run observer %r failed in %s", obs, hook)
