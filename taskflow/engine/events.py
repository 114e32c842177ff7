"""State events: the small messages a task run sends as its state changes.

An event is a msgpack-friendly dict (Dask's ``log_event`` requires that): names,
numbers, strings, and the exception as pickled bytes.  Never data.  A failed
attempt's event carries the exception's type name (``exc_type``), and its
traceback clipped to :data:`TRACEBACK_LIMIT` characters (the start and the end,
where the user's frame and the error are, with a note of what was cut).

Examples
--------
>>> from taskflow.states import State, StateType
>>> ev = state_event("run1", "load", "load-abc", State(StateType.SUCCESS, attempts=1))
>>> name, state = decode_state(ev)
>>> name, state.type, state.attempts
('load', <StateType.SUCCESS: 'SUCCESS'>, 1)
"""
from __future__ import annotations

import time
from typing import Any

import cloudpickle

from taskflow.states import State, StateType

__all__ = ["TRACEBACK_LIMIT", "clip_traceback", "decode_state", "portable_exception",
           "state_event"]

#: Characters of a traceback an event carries at most.
TRACEBACK_LIMIT = 8000


def clip_traceback(text: str | None, limit: int = TRACEBACK_LIMIT) -> str | None:
    """``text`` when short; else its first and last lines around a note of the cut.

    Examples
    --------
    >>> clip_traceback("short")
    'short'
    >>> clipped = clip_traceback("a" * 5000 + "b" * 5000, limit=1000)
    >>> len(clipped) < 1100, clipped.endswith("b" * 10)
    (True, True)
    """
    if text is None or len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    cut = len(text) - head - tail
    return f"{text[:head]}\n... ({cut} characters of traceback cut) ...\n{text[-tail:]}"


def portable_exception(exc: BaseException) -> BaseException | str:
    """``exc`` itself when it pickles (it will cross processes), else its repr."""
    try:
        cloudpickle.dumps(exc)
    except Exception:
        return repr(exc)
    return exc


def state_event(
    run_id: str,
    name: str,
    key: Any,
    state: State,
    *,
    worker: str = "",
    map_index: int | None = None,
) -> dict[str, Any]:
    """Encode a task run's state change."""
    exc = state.exception
    return {
        "kind": "state",
        "run": run_id,
        "name": name,
        "key": str(key),
        "map_index": map_index,
        "type": state.type.value,
        "message": state.message,
        "attempt": state.attempts,
        "started": state.started_at,
        "ended": state.ended_at,
        "time": time.time(),
        "worker": worker,
        "exc": _pickled(exc),
        "exc_repr": repr(exc)[:2000] if isinstance(exc, BaseException) else exc,
        "exc_type": _type_name(exc),
        "tb": clip_traceback(state.traceback),
        "location": state.result_location,
    }


#: Bytes of a pickled exception an event carries at most (else only its repr travels).
EXCEPTION_LIMIT = 64_000


def _pickled(exc: BaseException | str | None) -> bytes | None:
    if not isinstance(exc, BaseException):
        return None
    try:
        data = cloudpickle.dumps(exc)
    except Exception:
        return None
    return data if len(data) <= EXCEPTION_LIMIT else None


def _type_name(exc: BaseException | str | None) -> str | None:
    if isinstance(exc, BaseException):
        return type(exc).__name__
    if isinstance(exc, str):  # the repr of one that could not travel: "Name(...)"
        return exc.partition("(")[0] or None
    return None


def decode_state(event: dict[str, Any]) -> tuple[str, State]:
    """The task-run name and State an event describes."""
    exc: BaseException | str | None = event.get("exc_repr")
    if event.get("exc") is not None:
        try:
            exc = cloudpickle.loads(event["exc"])
        except Exception:  # class not importable here: keep the repr
            pass
    return event["name"], State(
        StateType(event["type"]),
        message=event.get("message") or "",
        exception=exc,
        traceback=event.get("tb"),
        attempts=event.get("attempt") or 0,
        started_at=event.get("started"),
        ended_at=event.get("ended"),
        result_location=event.get("location"),
    )
