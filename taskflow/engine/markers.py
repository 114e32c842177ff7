"""What a task run leaves in its Dask key when it did not succeed.

A successful run's key holds its raw output.  Any other outcome (failed,
skipped, trigger failed, timed out) leaves a :class:`StateMarker`: small, and
recognised by downstream runs (for triggers) and by the client (for results).
"""
from __future__ import annotations

from typing import Any

from taskflow.exceptions import TaskflowError
from taskflow.states import State

__all__ = ["StateMarker", "state_probe"]


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
