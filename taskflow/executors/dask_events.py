"""A flow run's state events on the client: routed to their run, and the last ones waited for.

Runners on the workers send their events on one topic (``taskflow.events.topic``);
a client subscribes to it once, and :class:`Router` hands each event to the run
it names (:func:`router_for`: one per client and topic, shared by every executor
on that client).  :class:`EndTracker` passes a run's events on and, at the run's
end, waits (bounded) for those still in flight.
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import dask
from distributed import Client

from taskflow import config
from taskflow.engine.events import events_of, peek
from taskflow.engine.plan import Plan
from taskflow.executors.base import OnEvent
from taskflow.executors.dask_worker import flush_events
from taskflow.state_columns import NameSet
from taskflow.states import FINISHED_TYPES

__all__ = ["EndTracker", "Router", "router_for"]


class EndTracker:
    """Passes events on, and waits (bounded) for the events still in flight at the end.

    Workers batch their events (``taskflow.events.batch-interval``), so the last
    tasks' ends may reach the client after their keys finished.  At the end of
    a run, when some task run has not reported its end yet, every worker is
    asked to flush and to send a ``flushed`` marker after its last event (one
    round trip): the wait ends as soon as every end, or every worker's marker,
    arrived.  Every task run that ended did so before the keys that depend on
    it started, so by then its end was emitted; those that never ran (a
    cancelled run, keys Dask lost) never report, and are not waited for.
    """

    def __init__(self, on_event: OnEvent) -> None:
        self._on_event = on_event
        self._final = NameSet()  # task runs whose end arrived (a byte a mapped child)
        self._flushed: set[str] = set()
        self._cond = threading.Condition()
        self._waiting = False  # set (under the lock) once the end is waited for

    def on_event(self, msg: dict[str, Any]) -> None:
        kind = msg.get("kind")
        if kind == "flushed":  # ours, not the run's: not passed on
            with self._cond:
                self._flushed.add(msg.get("worker", ""))
                self._cond.notify_all()
            return
        self._on_event(msg)
        seen = peek(msg)
        if seen is not None and seen[3] in FINISHED_TYPES:
            self._final.add(seen[1])
            if self._waiting:  # before the end nobody waits: no lock per event
                with self._cond:
                    self._cond.notify_all()

    def not_ended(self, plan: Plan) -> list[str]:
        """The plan's task runs whose end has not arrived (no name made for those that did)."""
        return plan.tasks.not_in(self._final)

    def _all_ended(self, names: list[str]) -> bool:
        names[:] = [n for n in names if n not in self._final]
        return not names

    def wait_flushed(self, client: Client, topic: str, run_id: str, plan: Plan,
                     timeout: float | None) -> None:
        """Wait until every worker sent its events up to now (or every end arrived)."""
        if timeout is None:
            timeout = dask.utils.parse_timedelta(config.get("events.settle-timeout"))
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting = True  # an end added after this is notified
        names = self.not_ended(plan)  # looked at again under the lock below
        if not names:
            return
        try:
            answers = client.sync(client._run, flush_events, topic, run_id,
                                  on_error="return", callback_timeout=timeout)
            workers = {w for w, ok in answers.items() if ok is True}
        except Exception:  # the scheduler went away, a worker hangs: wait out the bound
            workers = None
        with self._cond:
            self._cond.wait_for(
                lambda: self._all_ended(names) or (workers is not None and workers <= self._flushed),
                timeout=max(0.0, deadline - time.monotonic()),
            )


class Router:
    """One subscription per client; events go to the run they name."""

    def __init__(self, client: Client, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._listeners: dict[str, OnEvent] = {}
        client.subscribe_topic(topic, self._handle)

    def _handle(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        if msg.get("kind") == "batch":
            for one in events_of(msg):
                if one.get("kind") != "batch":
                    self._handle((event[0], one))
            return
        if msg.get("kind") == "run":  # an older client's announcement (they go on "<topic>-runs" now)
            return
        listener = self._listeners.get(msg.get("run", ""))
        if listener is not None:
            listener(msg)

    def add(self, run_id: str, listener: OnEvent) -> None:
        with self._lock:
            self._listeners[run_id] = listener

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._listeners.pop(run_id, None)


def router_for(client: Client, topic: str) -> Router:
    """The router of ``client`` for ``topic``, subscribed on first use.

    One per client and topic, shared by every executor on that client: Dask keeps
    one handler per topic per client, so a second subscription would silently
    take the events of runs started by another executor.
    """
    with _routers_lock:
        routers = _routers.setdefault(client, {})
        router = routers.get(topic)
        if router is None:
            router = routers[topic] = Router(client, topic)
    return router


_routers: weakref.WeakKeyDictionary[Client, dict[str, Router]] = weakref.WeakKeyDictionary()
_routers_lock = threading.Lock()
