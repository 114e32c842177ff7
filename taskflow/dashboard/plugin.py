"""The scheduler plugin behind the taskflow page.

:class:`TaskflowDashboard` lives on the scheduler.  Dask's event broker calls
its :meth:`~TaskflowDashboard.log_event` for every event of every topic; it
keeps those of the taskflow topic (``taskflow.events.topic``, plus any topic a
client's run announces itself on) in a bounded :class:`~taskflow.dashboard.model.RunBook`.
When it starts, it adds the page's handlers to the scheduler's HTTP
application, so the page is served where the dashboard is (same host, same
port, same prefix).  When a client disconnects, its runs that never said they
ended are ended (their unfinished task runs show as CRASHED).

Events are handled on the scheduler's event loop: handling one is a few dict
updates, and nothing is unpickled.
"""
from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

import dask.utils
from distributed.diagnostics.plugin import SchedulerPlugin

from taskflow import config
from taskflow.dashboard.handlers import PLUGIN_NAME, routes
from taskflow.dashboard.model import RunBook

if TYPE_CHECKING:
    from distributed import Scheduler

__all__ = ["PLUGIN_NAME", "TaskflowDashboard"]

logger = logging.getLogger("taskflow.dashboard")

# Schedulers whose HTTP application already has the page's routes (a plugin
# removed and registered again must not add them twice).
_served: weakref.WeakSet[Any] = weakref.WeakSet()


class TaskflowDashboard(SchedulerPlugin):
    """Collects flow runs from taskflow events and serves the taskflow page.

    Registering it twice is a no-op (``idempotent``), so every client may
    register it; the first one, or a ``--preload taskflow.dashboard``, wins.

    Parameters
    ----------
    max_runs : int, optional
        Runs kept (default ``taskflow.dashboard.max-runs``).
    max_logs : int, optional
        Log records kept per run (default ``taskflow.dashboard.max-log-records``).
    max_task_runs : int, optional
        Task-run records kept over all runs (default ``taskflow.dashboard.max-task-runs``).
    topics : list of str, optional
        Event topics to watch (default ``[taskflow.events.topic]``).
    refresh : str or float, optional
        How often an open page refreshes (default ``taskflow.dashboard.refresh``).

    Examples
    --------
    >>> from distributed import Client
    >>> Client("tcp://127.0.0.1:8786").register_plugin(TaskflowDashboard(max_runs=20))  # doctest: +SKIP
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(
        self,
        max_runs: int | None = None,
        max_logs: int | None = None,
        max_task_runs: int | None = None,
        topics: list[str] | None = None,
        refresh: str | float | None = None,
    ) -> None:
        self.book = RunBook(
            max_runs=max_runs if max_runs is not None else int(config.get("dashboard.max-runs", 100)),
            max_logs=max_logs if max_logs is not None else int(config.get("dashboard.max-log-records", 200)),
            max_task_runs=(max_task_runs if max_task_runs is not None
                           else int(config.get("dashboard.max-task-runs", 100_000))),
        )
        self.topics = set(topics or [config.get("events.topic", "taskflow")])
        seconds = dask.utils.parse_timedelta(refresh if refresh is not None
                                             else config.get("dashboard.refresh", "2s"))
        self.refresh_ms = max(250, int(1000 * (seconds or 2)))

    async def start(self, scheduler: Scheduler) -> None:
        """Add the page's routes to the scheduler's HTTP application."""
        app = getattr(scheduler, "http_application", None)
        if app is None or scheduler in _served:
            return
        prefix = _http_prefix(app)
        app.add_handlers(r".*$", routes(scheduler, prefix))
        _served.add(scheduler)
        logger.debug("taskflow page served at %staskflow", prefix)

    def log_event(self, topic: str, msg: Any) -> None:
        if topic not in self.topics:
            if not (isinstance(msg, dict) and msg.get("kind") == "run" and "phase" in msg):
                return
            self.topics.add(topic)  # a run announced itself on another topic
            if isinstance(msg.get("topic"), str):
                self.topics.add(msg["topic"])  # where its task runs' states will come
        if isinstance(msg, dict):
            self.book.add(msg)

    def remove_client(self, scheduler: Scheduler, client: str) -> None:
        self.book.client_gone(client, time.time())


def _http_prefix(app: Any) -> str:
    """The prefix the dashboard is served under (``dask scheduler --dashboard-prefix``).

    Found from where Dask's own ``/health`` route sits; ``/`` when unknown.
    """
    for router in (getattr(app, "wildcard_router", None), getattr(app, "default_router", None)):
        for rule in _rules(router):
            pattern = getattr(getattr(rule, "matcher", None), "regex", None)
            text = getattr(pattern, "pattern", "")
            if text.endswith("health$"):
                prefix = text[: -len("health$")].replace("\\", "")
                return prefix if prefix.startswith("/") else "/" + prefix
    return "/"


def _rules(router: Any, depth: int = 0) -> list[Any]:
    out: list[Any] = []
    if router is None or depth > 3:
        return out
    for rule in getattr(router, "rules", []):
        out.append(rule)
        out.extend(_rules(rule.target, depth + 1) if hasattr(rule.target, "rules") else [])
    return out
