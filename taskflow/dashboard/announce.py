"""Client side: install the taskflow page on a cluster and announce each run.

:func:`install` registers the :class:`~taskflow.dashboard.plugin.TaskflowDashboard`
plugin on a client's scheduler, once per client (the plugin is idempotent, so
many clients sharing one scheduler are fine).  It needs taskflow importable on
the scheduler; when it is not, a warning says how to fix it and runs go on
without the page.  ``taskflow.dashboard.install: false`` turns it off.

:class:`PageObserver` (a :class:`~taskflow.engine.observers.RunObserver`,
installed with the process's default observers when its first run starts) gives
each run on a Dask client a :class:`RunAnnouncer`; the executor knows nothing
of the page.  :class:`RunAnnouncer` sends a run's ``kind="run"`` events
(:mod:`taskflow.dashboard.events`) without waiting: each goes to the
client's event loop, which sends it while the run goes on, so a run pays no
round trip for the page.  The page does not depend on their order (task runs
report themselves; a run whose client leaves without saying it ended is ended
by the plugin).  Sending never fails a run: the first error is logged at
debug level and the run's later events are dropped.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from taskflow import config
from taskflow.dashboard import events
from taskflow.engine.events import StateEvent, peek
from taskflow.engine.observers import RunObserver
from taskflow.executors.dask_plugins import local_scheduler
from taskflow.runs import page_link

if TYPE_CHECKING:
    from distributed import Client

    from taskflow.engine.plan import Plan
    from taskflow.executors.base import Executor, Outcome

__all__ = ["PageObserver", "RunAnnouncer", "install", "page_link"]

logger = logging.getLogger("taskflow.dashboard")

_installed: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_TIMEOUT = 5.0


def install(client: Client) -> bool:
    """Make sure ``client``'s scheduler serves the taskflow page; True when it does.

    Registers the plugin once per client; later calls answer from memory.

    Parameters
    ----------
    client : distributed.Client
        A client of the scheduler (taskflow must be importable there).

    Examples
    --------
    >>> from distributed import Client
    >>> install(Client("tcp://127.0.0.1:8786"))  # doctest: +SKIP
    True
    """
    with _lock:
        known = _installed.get(client)
        if known is not None:
            return known
        ok = _register(client)
        _installed[client] = ok
        return ok


def _register(client: Client) -> bool:
    from taskflow.dashboard.plugin import TaskflowDashboard

    try:
        scheduler = local_scheduler(client)
        if scheduler is None:
            client.register_plugin(TaskflowDashboard())
        else:  # the embedded cluster's scheduler is here: no round trip, no pickling
            client.sync(scheduler.register_scheduler_plugin, plugin=TaskflowDashboard(),
                        idempotent=True)
    except Exception as e:
        logger.warning(
            "the taskflow page could not be installed on the scheduler at %s (%s: %s). "
            "Install taskflow in the scheduler's environment, or start the scheduler with "
            "`dask scheduler --preload taskflow.dashboard`. Flows run without the page.",
            getattr(client.scheduler, "address", "?"), type(e).__name__, e,
        )
        return False
    try:
        link = page_link(client.dashboard_link)
    except Exception:
        link = None
    if link:
        logger.info("taskflow page on the Dask dashboard: %s", link)
    return True


class RunAnnouncer:
    """Sends one run's ``kind="run"`` events to the scheduler.

    Use :meth:`start` before submitting anything, :meth:`forward` for each of
    the plan's client-side events, and :meth:`finished` once the executor is
    done.  A disabled announcer (no page) does nothing.

    Parameters
    ----------
    client : distributed.Client
        The client the run is submitted through.
    plan : Plan
        The run's plan.
    enabled : bool
        Whether the scheduler has the page (see :meth:`start`).

    Examples
    --------
    >>> announcer = RunAnnouncer.start(client, plan)  # doctest: +SKIP
    >>> announcer.forward(event)  # each client-side event of the plan  # doctest: +SKIP
    >>> announcer.finished(outcome)  # doctest: +SKIP
    """

    def __init__(self, client: Client, plan: Plan, enabled: bool) -> None:
        self.client = client
        self.plan = plan
        self.enabled = enabled
        self._sizes: dict[str, int] = {}

    @classmethod
    def start(cls, client: Client, plan: Plan) -> RunAnnouncer:
        """Install the page if needed and announce ``plan``'s run."""
        enabled = bool(config.get("dashboard.install", True)) and install(client)
        self = cls(client, plan, enabled)
        if enabled:
            self._send(events.started_event(plan, str(client.id)))
        return self

    def forward(self, event: dict[str, Any]) -> None:
        """Send a client-side event (a mapped parent's state...) to the page."""
        if self.enabled:
            clean = StateEvent.from_msg(event).without_exception().to_msg()
            self._send(events.update_event(self.plan.run.run_id, [clean], self._new_sizes()))

    def finished(self, outcome: Outcome | None, error: BaseException | None = None) -> None:
        """The executor is done: say so, with the task runs it lost."""
        if not self.enabled or getattr(self.client, "status", "running") != "running":
            return
        names = self.plan.names()
        lost: dict[str, str] = {}
        for key, (reason, origin) in (outcome.lost.items() if outcome is not None else []):
            lost[names.get(origin if origin is not None else key, str(key))] = reason
        why = None if error is None else f"{type(error).__name__}: {error}"
        cancelled = outcome.cancelled if outcome is not None else None
        self._send(events.finished_event(self.plan.run.run_id, lost, why, cancelled))

    def _new_sizes(self) -> dict[str, int]:
        """Child counts of mapped tasks that changed since last time (from the lengths
        the plan knows: a wide map's children are planned as they are sent)."""
        changed = {name: n for name, n in self.plan.widths().items() if self._sizes.get(name) != n}
        self._sizes.update(changed)
        return changed

    def _send(self, msg: dict[str, Any]) -> None:
        """Hand ``msg`` to the client's event loop and return at once (no round trip)."""
        loop = self.client.loop
        try:
            if loop is None:
                raise RuntimeError("the client has no event loop (closed?)")
            loop.add_callback(self._post, msg)
        except Exception as e:  # the loop is gone: the client closed
            self._drop(e)

    async def _post(self, msg: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            await asyncio.wait_for(
                self.client.scheduler.log_event(topic=events.announcements_topic(self.plan.run.topic),
                                                msg=msg), _TIMEOUT)
        except Exception as e:
            self._drop(e)

    def _drop(self, error: BaseException) -> None:
        if self.enabled:
            logger.debug("taskflow page: could not send a run event (%r); dropping the rest", error)
        self.enabled = False


class PageObserver(RunObserver):
    """Announces every run whose executor has a Dask client to the scheduler's page.

    Events made on the client (the plan's own: mapped parents, tasks that could
    not run) are forwarded; the workers' events reach the page by themselves.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunAnnouncer] = {}
        self._lock = threading.Lock()

    def run_started(self, *, plan: Plan, executor: Executor, **kwargs: Any) -> None:
        from distributed import Client

        client = getattr(executor, "client", None)
        if not isinstance(client, Client):
            return
        page = RunAnnouncer.start(client, plan)
        if page.enabled:
            with self._lock:
                self._runs[plan.run.run_id] = page

    def event(self, *, event: dict[str, Any], **kwargs: Any) -> None:
        seen = peek(event)
        if seen is None or seen[4]:
            return  # a worker's event: the page has it already
        page = self._runs.get(seen[0] or "")
        if page is not None:
            page.forward(event)

    def run_finished(self, *, plan: Plan, outcome: Outcome | None = None, **kwargs: Any) -> None:
        self._end(plan, outcome, None)

    def run_aborted(self, *, plan: Plan, error: BaseException, **kwargs: Any) -> None:
        self._end(plan, None, error)

    def _end(self, plan: Plan, outcome: Outcome | None, error: BaseException | None) -> None:
        with self._lock:
            page = self._runs.pop(plan.run.run_id, None)
        if page is not None:
            page.finished(outcome, error)
