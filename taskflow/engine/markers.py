"""What a task run leaves in its Dask key when it did not succeed.

A successful run's key holds its raw output.  Any other outcome (failed,
skipped, trigger failed, timed out) leaves a :class:`StateMarker`: small, and
recognised by downstream runs (for triggers) and by the client (for results).
"""
from __future__ import annotations

from typing import Any

from dask.sizeof import sizeof

from taskflow.exceptions import TaskflowError
from taskflow.results.store import Persisted
from taskflow.states import State

__all__ = ["NotSized", "StateMarker", "item_of", "length_of", "state_probe"]


class StateMarker:
    """What a task run that did not succeed leaves as its Dask key's value."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return (StateMarker, (self.state,))

    def __repr__(self) -> str:
        return f"StateMarker({self.state!r})"

    def downstream_value(self) -> Any:
        """What a downstream task admitted by its trigger receives instead of data."""
        if self.state.is_failed():
            exc = self.state.exception
            if isinstance(exc, BaseException):
                return exc
            return TaskflowError(self.state.message or str(exc), state=self.state.type.value)
        return None


_OK = "ok"


def state_probe(value: Any) -> Any:
    """Stand-in for ``value`` that keeps only its state (for ordering edges)."""
    return value if type(value) is StateMarker else _OK


class NotSized:
    """Left by a length step whose value has no length (mapping over it fails)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __reduce__(self) -> tuple[Any, ...]:
        return (NotSized, (self.what,))


def length_of(value: Any, nested: bool = False) -> Any:
    """``(length, nbytes)`` of ``value``; with ``nested``, ``([len(x) for x in value], nbytes)``.

    Runs on the worker that holds ``value``; only this small fact goes to the client.
    A stored reference (a CACHED upstream) is loaded there first.
    """
    if type(value) is StateMarker:
        return value
    if type(value) is Persisted:
        value = value.load()
    try:
        if nested:
            length: Any = [len(x) for x in value]
        elif isinstance(value, (str, bytes, dict)):
            raise TypeError
        else:
            length = len(value)
    except TypeError:
        kind = "a list of lists" if nested else "a sequence"
        return NotSized(f"a {type(value).__name__} is not {kind}")
    return (length, int(sizeof(value)))


def item_of(value: Any, index: int | tuple[int, int]) -> Any:
    """Element ``index`` of ``value`` (``(outer, inner)`` for a flattened source)."""
    if type(value) is Persisted:
        value = value.load()
    if isinstance(index, tuple):
        return value[index[0]][index[1]]
    return value[index]
