"""The rows the history's writer makes of state events (task runs, failed attempts).

Examples
--------
>>> from taskflow.engine.events import StateEvent
>>> ev = StateEvent("r", "load", "SUCCESS", "load-1", None, "", 1, 1.0, 2.0, 2.0, "w")
>>> row = task_row("r", "load", 0, ev)
>>> row["state"], row["attempts"], row["worker"], attempt_row("r", "load", ev)
('SUCCESS', 1, 'w', None)
"""
from __future__ import annotations

import time
from typing import Any

from taskflow.engine.events import StateEvent
from taskflow.states import State, StateType

__all__ = ["attempt_row", "final_event", "task_row"]


def task_row(run_id: str, name: str, seq: int, ev: StateEvent) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "name": name,
        "seq": seq,
        "key": ev.key,
        "map_index": ev.map_index,
        "state": ev.type,
        "attempts": ev.attempt,
        "message": ev.message,
        "started_at": ev.started,
        "ended_at": ev.ended,
        "worker": ev.worker,
        "traceback": ev.tb,
        "result_location": ev.location,
        "updated_at": ev.time or time.time(),
    }


_ATTEMPT_ENDS = frozenset({StateType.RETRYING.value, StateType.FAILED.value,
                           StateType.TIMED_OUT.value})


def attempt_row(run_id: str, name: str, ev: StateEvent) -> dict[str, Any] | None:
    """The attempt an event ends, when it is one that raised (retried, or the last)."""
    if ev.type not in _ATTEMPT_ENDS or not ev.attempt:
        return None
    if ev.tb is None and ev.exc_type is None:
        return None  # FAILED without running its function (e.g. a result that cannot load)
    return {
        "run_id": run_id, "name": name, "attempt": ev.attempt, "state": ev.type,
        "exception_type": ev.exc_type, "message": ev.message,
        "traceback": ev.tb, "worker": ev.worker,
        "failed_at": ev.ended or ev.time or time.time(),
    }


def final_event(run_id: str, name: str, state: State, key: str = "",
                 map_index: int | None = None) -> StateEvent:
    """The event of a state only the flow runner knows (no exception: it ran nowhere)."""
    return StateEvent(run_id, name, state.type.value, key, map_index, state.message,
                      state.attempts, state.started_at, state.ended_at, time.time(),
                      tb=state.traceback, location=getattr(state, "result_location", None))
