"""States: what a task run or a flow run is, or ended as.

A state is data: one closed enum of types (:class:`StateType`) and one frozen
:class:`State` record.  There is no class hierarchy; sub-kinds are not needed
because every type that matters to the engine is its own enum member.  Which
state follows which is decided by the pure functions of
:mod:`taskflow.engine.transitions`.

**The sets.**  :data:`SUCCESSFUL_TYPES`, :data:`FAILED_TYPES`,
:data:`FINISHED_TYPES` and :data:`UNFINISHED_TYPES` are the one definition of
"finished" and "failed" that the engine, the progress bar, the history and the
dashboard use (a :class:`StateType` equals its string value, so they also test
the ``type`` of a state event).  CANCELLED counts as failed: a cancelled run did
not do its work, and triggers and a flow's state treat it like any other
failure.  SKIPPED is finished and neither successful nor failed.

**No Paused.**  Nothing in taskflow pauses a run (there is no approval step or
manual resume of a live run; ``resume=`` starts a new run), so there is no
PAUSED type: a type that nothing produces would be one more case for every
reader to handle.

The result of a successful run rides along only in memory (``State.result``): it
is dropped when a state is pickled, so states stay small when they travel as
events or sit in history.

Examples
--------
>>> from taskflow.states import State, StateType
>>> s = State(StateType.SKIPPED, message="nothing to do")
>>> s.is_finished(), s.is_successful(), s.is_failed()
(True, False, False)
>>> State(StateType.SUCCESS)
Success()
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAILED_TYPES",
    "FINISHED_TYPES",
    "RUNNING_TYPES",
    "SUCCESSFUL_TYPES",
    "UNFINISHED_TYPES",
    "State",
    "StateType",
]


class StateType(str, enum.Enum):
    """The closed set of state types.

    See :class:`State` for what each one counts as (finished, successful, failed).

    Examples
    --------
    >>> StateType("TRIGGER_FAILED").label
    'TriggerFailed'
    >>> [t.value for t in StateType][:3]
    ['PENDING', 'RUNNING', 'RETRYING']
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    CACHED = "CACHED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    TRIGGER_FAILED = "TRIGGER_FAILED"
    TIMED_OUT = "TIMED_OUT"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """The type as a class-like name, e.g. ``TriggerFailed``."""
        return "".join(part.capitalize() for part in self.value.split("_"))


SUCCESSFUL_TYPES = frozenset({StateType.SUCCESS, StateType.CACHED})
FAILED_TYPES = frozenset(
    {
        StateType.FAILED,
        StateType.TRIGGER_FAILED,
        StateType.TIMED_OUT,
        StateType.CRASHED,
        StateType.CANCELLED,
    }
)
FINISHED_TYPES = SUCCESSFUL_TYPES | FAILED_TYPES | {StateType.SKIPPED}
UNFINISHED_TYPES = frozenset(StateType) - FINISHED_TYPES  # PENDING, RUNNING, RETRYING
RUNNING_TYPES = frozenset({StateType.RUNNING, StateType.RETRYING})


@dataclass(frozen=True, slots=True)  # slots: a run of a million task runs holds a million
class State:
    """The state of one task run or flow run.

    Parameters
    ----------
    type : StateType
        What kind of state this is.
    message : str
        A sentence a person can act on ("attempt 3 of 3 failed: ...").
    exception : BaseException or str, optional
        On failure, the exception object when it could be pickled, else its repr.
    traceback : str, optional
        On failure, the formatted traceback text.
    attempts : int
        How many times the function was started (0 when it never ran).
    started_at, ended_at : float, optional
        Wall-clock times (``time.time()``) of the first start and the end.
    result : object
        In memory only: the value of a successful run.  Not pickled.
    result_location : str, optional
        Where the run's result was persisted (or, for CACHED, read from): a URL
        in the flow's result store.  None when nothing was written.

    Examples
    --------
    >>> State(StateType.FAILED, message="boom").is_failed()
    True
    """

    type: StateType
    message: str = ""
    exception: BaseException | str | None = field(default=None, compare=False)
    traceback: str | None = field(default=None, repr=False, compare=False)
    attempts: int = 0
    started_at: float | None = field(default=None, repr=False)
    ended_at: float | None = field(default=None, repr=False)
    result: Any = field(default=None, repr=False, compare=False)
    result_location: str | None = field(default=None, repr=False, compare=False)

    def is_finished(self) -> bool:
        """True for every final type: successful, failed or skipped."""
        return self.type in FINISHED_TYPES

    def is_successful(self) -> bool:
        """True for SUCCESS and CACHED."""
        return self.type in SUCCESSFUL_TYPES

    def is_failed(self) -> bool:
        """True for FAILED, TRIGGER_FAILED, TIMED_OUT, CRASHED and CANCELLED."""
        return self.type in FAILED_TYPES

    def is_skipped(self) -> bool:
        """True for SKIPPED (finished, but neither successful nor failed)."""
        return self.type is StateType.SKIPPED

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def replace(self, **changes: Any) -> State:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        parts = []
        if self.message:
            parts.append(f"message={self.message!r}")
        if self.attempts > 1:
            parts.append(f"attempts={self.attempts}")
        return f"{self.type.label}({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # data never travels inside a state: the result is left out.  (__reduce__, not
        # __getstate__: on Python 3.10 a frozen dataclass with slots replaces the latter.)
        return (_rebuilt, (tuple(None if f.name == "result" else getattr(self, f.name)
                                 for f in dataclasses.fields(self)),))


def _rebuilt(values: tuple[Any, ...]) -> State:
    """A State from its fields' values in order (how a State is unpickled)."""
    state = object.__new__(State)
    for f, value in zip(dataclasses.fields(State), values):
        object.__setattr__(state, f.name, value)
    return state
