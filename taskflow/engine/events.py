"""State events: the small messages a task run sends as its state changes.

One event is a :class:`StateEvent` (a small immutable typed record).  What travels
(through Dask's ``log_event`` between worker, client and scheduler) is its
:meth:`~StateEvent.to_msg` form, a msgpack-friendly dict: names, numbers,
strings, and the exception as pickled bytes.  Never data.  Only this module
builds or reads that dict: producers call :meth:`StateEvent.of`, consumers
:meth:`StateEvent.from_msg` (or :func:`peek` on a hot path, for the few fields
that route an event).  A failed attempt's event carries the exception's type
name (``exc_type``), and its traceback clipped to :data:`TRACEBACK_LIMIT`
characters (the start and the end, where the user's frame and the error are,
with a note of what was cut).

Examples
--------
>>> from taskflow.states import FINISHED_TYPES, State, StateType
>>> msg = StateEvent.of("run1", "load", "load-abc", State(StateType.SUCCESS, attempts=1)).to_msg()
>>> ev = StateEvent.from_msg(msg)
>>> ev.name, ev.state().type, ev.state().attempts
('load', <StateType.SUCCESS: 'SUCCESS'>, 1)
>>> peek(msg)
('run1', 'load', 1, 'SUCCESS', '')
"""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import cloudpickle
import msgpack

from taskflow.states import FINISHED_TYPES, State, StateType

__all__ = ["TRACEBACK_LIMIT", "StateEvent", "batch_of", "clip_traceback", "events_of", "is_state",
           "peek", "portable_exception", "state_msg"]

#: The ``kind`` of a state event's message.
KIND = "state"

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


class StateEvent(NamedTuple):
    """One task run's state change, as it travels between processes.

    Immutable and typed; a named tuple rather than a frozen dataclass because
    it is built once per state change on the worker and read again on the
    client and the scheduler, and a frozen dataclass's ``__init__`` costs
    several times more.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ev = StateEvent.of("r", "a", "a-1", State(StateType.FAILED, exception=ValueError("x")))
    >>> ev.exc_type, ev.finished, StateEvent.from_msg(ev.to_msg()) == ev
    ('ValueError', True, True)
    """

    run: str
    name: str
    type: str
    key: str = ""
    map_index: int | None = None
    message: str = ""
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    time: float | None = None
    worker: str = ""
    exc: bytes | None = None
    exc_repr: str | None = None
    exc_type: str | None = None
    tb: str | None = None
    location: str | None = None

    @classmethod
    def of(cls, run_id: str, name: str, key: Any, state: State, *, worker: str = "",
           map_index: int | None = None) -> StateEvent:
        """The event of ``state``: the exception pickled (when small), the traceback clipped."""
        exc = state.exception
        return cls(run_id, name, state.type.value, str(key), map_index, state.message,
                   state.attempts, state.started_at, state.ended_at, time.time(), worker,
                   _pickled(exc), repr(exc)[:2000] if isinstance(exc, BaseException) else exc,
                   _type_name(exc), clip_traceback(state.traceback), state.result_location)

    def to_msg(self) -> dict[str, Any]:
        """The wire form (what ``log_event`` carries): fields at their default are left out.

        Every message is measured (``sizeof``) and msgpacked by Dask on the worker
        and again on the scheduler, so a success event carries 11 fields, not 17.
        """
        msg = {
            "kind": KIND, "run": self.run, "name": self.name, "key": self.key,
            "type": self.type, "message": self.message, "attempt": self.attempt,
            "started": self.started, "ended": self.ended, "time": self.time,
            "worker": self.worker,
        }
        if self.map_index is not None:
            msg["map_index"] = self.map_index
        if self.exc_repr is not None:  # a failure: its exception, type and traceback
            msg.update(exc=self.exc, exc_repr=self.exc_repr, exc_type=self.exc_type, tb=self.tb)
        elif self.exc_type is not None or self.tb is not None:
            msg.update(exc_type=self.exc_type, tb=self.tb)
        if self.location is not None:
            msg["location"] = self.location
        return msg

    @classmethod
    def from_msg(cls, msg: dict[str, Any]) -> StateEvent:
        """The event of a wire message (missing fields take their defaults; nothing checked)."""
        get = msg.get
        return cls(get("run") or "", get("name") or "", get("type") or "", get("key") or "",
                   get("map_index"), get("message") or "", get("attempt") or 0,
                   get("started"), get("ended"), get("time"), get("worker") or "",
                   get("exc"), get("exc_repr"), get("exc_type"), get("tb"), get("location"))

    def without_exception(self) -> StateEvent:
        """This event without the pickled exception (its repr and type name stay)."""
        return self._replace(exc=None)

    @property
    def finished(self) -> bool:
        """Whether the task run ended with this event."""
        return self.type in _FINISHED

    def state(self) -> State:
        """The State this event describes (the exception unpickled when its class imports)."""
        exc: BaseException | str | None = self.exc_repr
        if self.exc is not None:
            try:
                exc = cloudpickle.loads(self.exc)
            except Exception:  # class not importable here: keep the repr
                pass
        return State(StateType(self.type), message=self.message, exception=exc,
                     traceback=self.tb, attempts=self.attempt, started_at=self.started,
                     ended_at=self.ended, result_location=self.location)


_FINISHED = frozenset(t.value for t in FINISHED_TYPES)


def state_msg(run_id: str, name: str, key: str, state: State, worker: str = "",
              map_index: int | None = None) -> dict[str, Any]:
    """``StateEvent.of(run_id, name, key, state, ...).to_msg()``, built directly.

    A task run sends two of these (its start and its end) on the worker: a state
    with no exception, traceback or stored result (most of them) skips the
    event object.

    Examples
    --------
    >>> s = State(StateType.SUCCESS, attempts=1, started_at=1.0, ended_at=2.0)
    >>> m = state_msg("r", "a", "a-1", s, "w")
    >>> del m["time"]; e = StateEvent.of("r", "a", "a-1", s, worker="w").to_msg(); del e["time"]
    >>> m == e and list(m) == list(e)
    True
    """
    if state.exception is not None or state.traceback is not None \
            or state.result_location is not None:
        return StateEvent.of(run_id, name, key, state, worker=worker,
                             map_index=map_index).to_msg()
    msg = {
        "kind": KIND, "run": run_id, "name": name, "key": key,
        # _value_: what .value reads, without Enum's descriptor (twice per task run)
        "type": state.type._value_, "message": state.message, "attempt": state.attempts,
        "started": state.started_at, "ended": state.ended_at, "time": time.time(),
        "worker": worker,
    }
    if map_index is not None:
        msg["map_index"] = map_index
    return msg


def is_state(msg: Any) -> bool:
    """Whether a wire message is a state event."""
    return isinstance(msg, dict) and msg.get("kind") == KIND


def peek(msg: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any] | None:
    """``(run, name, attempt, type, worker)`` of a state event's message, else None.

    What routes an event, read without building it (called once per event).
    """
    if msg.get("kind") != KIND:
        return None
    get = msg.get
    return get("run"), get("name"), get("attempt"), get("type"), get("worker")


def batch_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One message carrying ``events`` (a worker's batch), packed into bytes.

    Dask measures (``sizeof``) and msgpacks every message it sends, on the worker
    and again on the scheduler that forwards it: a list of event dicts costs
    about 20 us an event each time, the same events as one ``bytes`` almost
    nothing.  Read it back with :func:`events_of`.

    Examples
    --------
    >>> events_of(batch_of([{"kind": "state", "run": "r", "name": "a"}]))
    [{'kind': 'state', 'run': 'r', 'name': 'a'}]
    """
    return {"kind": "batch", "packed": msgpack.packb(events, use_bin_type=True)}


def events_of(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a batch message (packed by :func:`batch_of`, or a plain list)."""
    packed = batch.get("packed")
    if isinstance(packed, (bytes, bytearray, memoryview)):
        try:
            events = msgpack.unpackb(packed, raw=False)
        except Exception:  # not ours: nothing to take
            return []
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    events = batch.get("events")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
