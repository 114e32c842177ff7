"""Triggers: when may a task run, given the final states of its upstreams.

A trigger is any callable that takes the list of upstream :class:`~taskflow.states.State`
objects (data and ``wait_for`` upstreams alike) and returns ``True`` when the task
may run.  When it returns ``False`` the task does not run and ends
``TRIGGER_FAILED`` if any upstream failed, else ``SKIPPED``
(see :func:`taskflow.engine.transitions.decide_trigger`).

Under a trigger that admits failed upstreams, a failed upstream's value reaches
the task as the upstream's exception; a skipped upstream's value is ``None``.

Examples
--------
>>> from taskflow import task, triggers
>>> @task(trigger=triggers.always_run)
... def cleanup(*_):
...     ...
"""
from __future__ import annotations

from collections.abc import Sequence

from taskflow.states import State

__all__ = [
    "all_failed",
    "all_finished",
    "all_successful",
    "always_run",
    "any_failed",
    "any_successful",
]


def all_successful(upstream: Sequence[State]) -> bool:
    """Run when every upstream succeeded (the default).

    Parameters
    ----------
    upstream : sequence of State
        The final states of the task's upstreams.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ok, bad, skipped = (State(StateType.SUCCESS), State(StateType.FAILED),
    ...                     State(StateType.SKIPPED))
    >>> all_successful([ok, State(StateType.CACHED)]), all_successful([ok, skipped])
    (True, False)
    """
    return all(s.is_successful() for s in upstream)


def all_failed(upstream: Sequence[State]) -> bool:
    """Run when every upstream failed.

    Parameters
    ----------
    upstream : sequence of State
        The final states of the task's upstreams.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ok, bad, skipped = (State(StateType.SUCCESS), State(StateType.FAILED),
    ...                     State(StateType.SKIPPED))
    >>> all_failed([bad, State(StateType.TIMED_OUT)]), all_failed([bad, ok])
    (True, False)
    """
    return all(s.is_failed() for s in upstream)


def any_successful(upstream: Sequence[State]) -> bool:
    """Run when at least one upstream succeeded (or there are none).

    Parameters
    ----------
    upstream : sequence of State
        The final states of the task's upstreams.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ok, bad, skipped = (State(StateType.SUCCESS), State(StateType.FAILED),
    ...                     State(StateType.SKIPPED))
    >>> any_successful([bad, ok]), any_successful([bad, skipped]), any_successful([])
    (True, False, True)
    """
    return not upstream or any(s.is_successful() for s in upstream)


def any_failed(upstream: Sequence[State]) -> bool:
    """Run when at least one upstream failed.

    Parameters
    ----------
    upstream : sequence of State
        The final states of the task's upstreams.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ok, bad, skipped = (State(StateType.SUCCESS), State(StateType.FAILED),
    ...                     State(StateType.SKIPPED))
    >>> any_failed([ok, bad]), any_failed([ok, skipped])
    (True, False)
    """
    return any(s.is_failed() for s in upstream)


def all_finished(upstream: Sequence[State]) -> bool:
    """Run whatever the upstreams ended as.

    Parameters
    ----------
    upstream : sequence of State
        The final states of the task's upstreams.

    Examples
    --------
    >>> from taskflow.states import State, StateType
    >>> ok, bad, skipped = (State(StateType.SUCCESS), State(StateType.FAILED),
    ...                     State(StateType.SKIPPED))
    >>> all_finished([ok, bad, skipped])
    True
    """
    return True


always_run = all_finished
