"""The executor interface: run a plan, report events, return what was asked.

An executor takes a :class:`~taskflow.engine.plan.Plan`, runs every step where
it runs things (in this process, on a Dask cluster...), passes every event the
task runs emit to ``on_event`` as it arrives, and returns an :class:`Outcome`
holding only the values of the plan's return keys.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.engine.plan import Key, Plan

__all__ = ["Executor", "Outcome"]

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
    """

    values: dict[Key, Any] = field(default_factory=dict)
    lost: dict[Key, tuple[str, Key | None]] = field(default_factory=dict)


class Executor(ABC):
    """Runs plans.  Subclasses implement :meth:`execute`."""

    @abstractmethod
    def execute(self, plan: Plan, on_event: OnEvent) -> Outcome:
        """Run every step of ``plan``; block until all are finished.

        Return only once every state event of the run was passed to ``on_event``
        (waiting, bounded by ``taskflow.events.settle-timeout``, for events still
        in flight): the flow runner reads the final states right after.
        """

    @property
    def dashboard_link(self) -> str | None:
        """Where a person can watch runs, if anywhere."""
        return None

    @property
    def address(self) -> str | None:
        """Where runs go (a scheduler address), if anywhere."""
        return None

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
