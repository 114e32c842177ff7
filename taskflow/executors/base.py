"""The executor interface: run a plan, report events, return what was asked.

An executor takes a :class:`~taskflow.engine.plan.Plan`, runs every step where
it runs things (in this process, on a Dask cluster...), passes every event the
task runs emit to ``on_event`` as it arrives, and returns an :class:`Outcome`
holding only the values of the plan's return keys.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.engine.plan import Key, Plan

__all__ = ["Cancellations", "Executor", "Outcome"]

OnEvent = Callable[[dict[str, Any]], None]


@dataclass
class Outcome:
    """What an executor hands back when a plan has run.

    Attributes
    ----------
    values : dict
        Values of the plan's return keys: raw outputs, or state markers.
    lost : dict
        Keys the executor could not compute at all (worker lost for good,
        scheduler gone...), each with a reason and, where known, the key at the
        origin of the loss.
    cancelled : str or None
        Why the run was stopped early (a user's cancel), if it was.
    crashed : str or None
        Why the run's infrastructure went away under it (the scheduler was lost,
        the client disconnected), if it did: every task run that had not
        reported its end is CRASHED with this reason, and so is the flow run
        (:func:`taskflow.engine.transitions.flow_state`).

    Examples
    --------
    >>> Outcome(values={"total-abc": 45})
    Outcome(values={'total-abc': 45}, lost={}, cancelled=None, crashed=None)
    """

    values: dict[Key, Any] = field(default_factory=dict)
    lost: dict[Key, tuple[str, Key | None]] = field(default_factory=dict)
    cancelled: str | None = None
    crashed: str | None = None


class Cancellations:
    """The runs an executor is running, and the ones asked to stop (thread-safe).

    A run registers while it runs; :meth:`cancel` records the reason and calls
    the stoppers the run registered (e.g. cancelling its Dask futures).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stoppers: dict[str, list[Callable[[], None]]] = {}
        self._reasons: dict[str, str] = {}

    def started(self, run_id: str) -> None:
        with self._lock:
            self._stoppers.setdefault(run_id, [])

    def finished(self, run_id: str) -> None:
        with self._lock:
            self._stoppers.pop(run_id, None)
            self._reasons.pop(run_id, None)

    def on_cancel(self, run_id: str, stop: Callable[[], None]) -> None:
        """Call ``stop`` when the run is cancelled (now, if it already was)."""
        with self._lock:
            already = run_id in self._reasons
            if not already:
                self._stoppers.setdefault(run_id, []).append(stop)
        if already:
            stop()

    def cancel(self, run_id: str, reason: str) -> bool:
        with self._lock:
            if run_id not in self._stoppers or run_id in self._reasons:
                return False
            self._reasons[run_id] = reason
            stoppers = list(self._stoppers[run_id])
        for stop in stoppers:
            stop()
        return True

    def reason(self, run_id: str) -> str | None:
        return self._reasons.get(run_id)


class Executor(ABC):
    """Runs plans.  Subclasses implement :meth:`execute`.

    An executor is a context manager: leaving the block calls :meth:`close`.

    Examples
    --------
    >>> from taskflow.executors import LocalExecutor
    >>> with LocalExecutor() as ex:
    ...     ex.dashboard_link is None
    True
    """

    @abstractmethod
    def execute(self, plan: Plan, on_event: OnEvent) -> Outcome:
        """Run every step of ``plan``; block until all are finished.

        Return only once every state event of the run was passed to ``on_event``
        (waiting, bounded by ``taskflow.events.settle-timeout``, for events still
        in flight): the flow runner reads the final states right after.
        """

    def prepare(self) -> None:
        """A run starts: its flow is about to be traced and planned.

        An executor may start, in the background, work the run will need (a Dask
        executor's workers import taskflow's worker side).  Nothing by default.
        """

    @property
    def dashboard_link(self) -> str | None:
        """Where a person can watch runs, if anywhere."""
        return None

    @property
    def address(self) -> str | None:
        """Where runs go (a scheduler address), if anywhere."""
        return None

    @property
    def cancellations(self) -> Cancellations:
        """The runs of this executor that may be cancelled."""
        found = self.__dict__.get("_cancellations")
        if found is None:
            found = self.__dict__.setdefault("_cancellations", Cancellations())
        return found

    def cancel(self, run_id: str, reason: str = "cancelled") -> bool:
        """Stop a run of this executor early; its unfinished task runs end CANCELLED.

        Tasks already running on a worker finish there, but nothing after them
        starts.  Returns False when the run is not running here (any more).
        """
        return self.cancellations.cancel(run_id, reason)

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
