"""Who keeps a persisted collection's partitions alive, and until when.

A task that returns a Dask collection persists it on its worker
(:class:`~taskflow.executors.dask_worker._WorkerCollections`), then publishes
the partitions' futures on the scheduler as a dataset named after the task run
(:func:`hold_name`), and tells the flow's client with a ``hold`` event.  The
scheduler then holds the partitions itself: they survive the small collection
object being spilled to disk or its worker dying (Dask recomputes lost
partitions from their graph), which futures living only inside a worker's
memory would not.

This client side releases a hold (unpublishes it) when the last task run that
consumes it has ended, as Dask releases any other output once its dependents
are done; when the plan may still grow (a map waiting for a length), at the end
of the run.  A collection the flow returns is persisted by the flow's client
first, so the caller's copy keeps its partitions.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskflow.engine.events import peek
from taskflow.state_columns import NameSet
from taskflow.states import FINISHED_TYPES

if TYPE_CHECKING:  # the worker side imports hold_name: no planning code there
    from distributed import Client

    from taskflow.engine.plan import Plan

__all__ = ["Holds", "hold_name"]

OnEvent = Callable[[dict[str, Any]], None]


def hold_name(run_id: str, task_run_name: str) -> str:
    """The scheduler dataset holding a task run's persisted partitions.

    Examples
    --------
    >>> hold_name("abc", "load[3]")
    'taskflow-hold-abc-load[3]'
    """
    return f"taskflow-hold-{run_id}-{task_run_name}"


class Holds:
    """The holds of one flow run: noted from events, released as consumers end."""

    def __init__(self, client: Client, plan: Plan, final: NameSet | None = None) -> None:
        self._client, self._plan = client, plan
        self._lock = threading.Lock()
        self._waiting: dict[str, set[str]] = {}  # hold -> consumers not finished yet
        self._later: set[str] = set()  # holds whose consumers may still grow
        # task runs that ended (shared with the executor's end tracker: one set a run)
        self._final = final if final is not None else NameSet()
        self._queue: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def wrap(self, on_event: OnEvent) -> OnEvent:
        """``on_event`` seeing every event but the holds, which this object keeps."""

        def handle(msg: dict[str, Any]) -> None:
            if msg.get("kind") == "hold":
                self._add(msg["name"])
                return
            on_event(msg)
            seen = peek(msg)
            if seen is not None and seen[3] in FINISHED_TYPES:
                self._ended(seen[1])

        return handle

    def _consumers(self, name: str) -> set[str]:
        plan = self._plan
        while True:
            try:  # the plan may grow meanwhile (on the thread driving the run)
                down = plan.downstream()
                names = plan.names()
                break
            except RuntimeError:
                continue
        return {names[c] for k, n in names.items() if n == name for c in down.get(k, ())}

    def _add(self, name: str) -> None:
        consumers = self._consumers(name)
        with self._lock:
            self._waiting[name] = {c for c in consumers if c not in self._final}
        self._check(name)

    def _ended(self, name: str) -> None:
        with self._lock:
            self._final.add(name)
            if not self._waiting:
                return
            touched = [h for h, w in self._waiting.items() if name in w]
            for h in touched:
                self._waiting[h].discard(name)
        for h in touched:
            self._check(h)

    def _check(self, hold: str) -> None:
        with self._lock:
            if self._waiting.get(hold):
                return
        if not self._plan.done:  # a consumer may still be added: keep it to the end
            with self._lock:
                self._waiting.pop(hold, None)
                self._later.add(hold)
            return
        left = self._consumers(hold)
        with self._lock:
            left = {c for c in left if c not in self._final}
            if left:
                self._waiting[hold] = left
                return
            self._waiting.pop(hold, None)
        self._release([hold])

    def _release(self, holds: list[str]) -> None:
        names = [hold_name(self._plan.run.run_id, h) for h in holds]
        with self._lock:
            if self._thread is None:  # unpublishing blocks: never on the event loop
                thread = threading.Thread(target=self._releasing, daemon=True,
                                          name="taskflow-holds")
                thread.start()
                self._thread = thread
        self._queue.put(names)

    def _releasing(self) -> None:
        while True:
            names = self._queue.get()
            if names is None:
                return
            for name in names:
                try:
                    self._client.unpublish_dataset(name)
                except Exception:  # noqa: BLE001 - gone already, or the client closed
                    pass

    def close(self) -> None:
        """At the end of the run: release every hold left, and wait until done."""
        with self._lock:
            left = sorted(set(self._waiting) | self._later)
            self._waiting.clear()
            self._later.clear()
        if left:
            self._release(left)
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)
