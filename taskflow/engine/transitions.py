"""Which state comes next: pure functions, no I/O, no Dask.

The task runner (:mod:`taskflow.engine.task_runner`) does the I/O: it runs the
function, sleeps, emits events.  Each decision it needs is one small function
here, taking plain values and returning a :class:`~taskflow.states.State` (and,
for retries, a delay), so every rule is tested without a cluster:

* :func:`decide_trigger` -- may the task run, given its upstreams' states?
* :func:`after_success` / :func:`after_exception` -- how an attempt ended,
  including whether to retry and after how long (a task's
  :class:`~taskflow.retries.RetryPolicy`, defined below the engine because it
  is a task option).
* :func:`crashed` -- the worker died under the task and Dask gave up.
* :func:`flow_state` -- a flow run's state from its reference tasks' states, or
  CRASHED when the infrastructure running it went away.
* :func:`mapped_parent` -- a mapped task's own end, from its children's (defined in
  :mod:`taskflow.records`, with the runs' other derived facts).
* :data:`ALLOWED` / :func:`check_transition` -- which changes of state are
  possible at all; the task runner refuses any other one.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from taskflow.exceptions import FAIL, SKIP, InvalidTransition, TaskTimeoutError
from taskflow.records import mapped_parent
from taskflow.retries import RetryPolicy, retry_delay
from taskflow.states import State, StateType

__all__ = [
    "RetryPolicy",
    "after_exception",
    "after_success",
    "crashed",
    "decide_trigger",
    "describe_exception",
    "flow_state",
    "mapped_parent",
    "retry_delay",
    "ALLOWED",
    "check_transition",
]

_T = StateType
_INFERRED = (_T.CRASHED, _T.CANCELLED, _T.TRIGGER_FAILED)  # what the client concludes for a lost run
#: Every (from, to) pair a task run may take; PENDING is where each run begins.
#: A finished state never changes.  PENDING -> PENDING: a run waiting for a slot of
#: a limited tag says so, once per tag (taskflow.concurrency).
ALLOWED: frozenset[tuple[StateType, StateType]] = frozenset(
    [(_T.PENDING, t) for t in (_T.PENDING, _T.RUNNING, _T.SKIPPED, _T.CACHED, _T.FAILED,
                               *_INFERRED)]
    + [(_T.RUNNING, t) for t in (_T.SUCCESS, _T.CACHED, _T.SKIPPED, _T.FAILED, _T.TIMED_OUT,
                                 _T.RETRYING, *_INFERRED)]
    + [(_T.RETRYING, t) for t in (_T.RUNNING, *_INFERRED)]
)


def check_transition(old: StateType, new: StateType, *, task: str = "") -> None:
    """Refuse an impossible change of state with :class:`~taskflow.exceptions.InvalidTransition`.

    Examples
    --------
    >>> check_transition(StateType.RUNNING, StateType.SUCCESS)
    >>> check_transition(StateType.SUCCESS, StateType.RUNNING, task="load")
    Traceback (most recent call last):
    ...
    taskflow.exceptions.InvalidTransition: task run 'load' cannot go from SUCCESS to RUNNING
    """
    if (old, new) not in ALLOWED:
        raise InvalidTransition(
            f"task run {task!r} cannot go from {old.value} to {new.value}",
            task=task, old=old.value, new=new.value,
        )


def _names(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(repr(n) for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def decide_trigger(
    trigger: Callable[[Sequence[State]], bool],
    upstream: Mapping[str, State],
    *,
    now: float | None = None,
) -> State | None:
    """``None`` when the task may run, else the final state it ends in.

    A trigger that is not met ends the task TRIGGER_FAILED when an upstream
    failed, and SKIPPED otherwise.

    Examples
    --------
    >>> from taskflow import triggers
    >>> ok, bad = State(StateType.SUCCESS), State(StateType.FAILED)
    >>> decide_trigger(triggers.all_successful, {"a": ok}) is None
    True
    >>> decide_trigger(triggers.all_successful, {"a": ok, "b": bad})
    TriggerFailed(message="upstream task 'b' failed")
    >>> decide_trigger(triggers.all_successful, {"a": State(StateType.SKIPPED)})
    Skipped(message="upstream task 'a' was skipped")
    """
    states = list(upstream.values())
    if trigger(states):
        return None
    now = time.time() if now is None else now
    failed = [n for n, s in upstream.items() if s.is_failed()]
    if failed:
        plural = "s" if len(failed) > 1 else ""
        return State(
            StateType.TRIGGER_FAILED,
            message=f"upstream task{plural} {_names(failed)} failed",
            ended_at=now,
        )
    skipped = [n for n, s in upstream.items() if s.is_skipped()]
    if skipped:
        many = len(skipped) > 1
        return State(
            StateType.SKIPPED,
            message=f"upstream task{'s' if many else ''} {_names(skipped)} "
            f"{'were' if many else 'was'} skipped",
            ended_at=now,
        )
    name = getattr(trigger, "__name__", repr(trigger))
    return State(StateType.SKIPPED, message=f"trigger {name} was not met", ended_at=now)


def after_success(attempt: int, started_at: float, *, now: float | None = None) -> State:
    """The final state of an attempt that returned."""
    return State(
        StateType.SUCCESS,
        attempts=attempt,
        started_at=started_at,
        ended_at=time.time() if now is None else now,
    )


def after_exception(
    exc: BaseException,
    *,
    attempt: int,
    policy: RetryPolicy,
    started_at: float,
    traceback: str | None = None,
    now: float | None = None,
) -> tuple[State, float | None]:
    """The state after an attempt raised ``exc``, and the delay before a retry.

    Returns ``(state, delay)``: ``delay`` is ``None`` when the state is final,
    else the seconds to wait before attempt ``attempt + 1``.

    Examples
    --------
    >>> p = RetryPolicy(retries=1, delay=0.5)
    >>> after_exception(ValueError("x"), attempt=1, policy=p, started_at=0.0, now=1.0)
    (Retrying(message='attempt 1 of 2 failed: ValueError: x; retrying in 0.5 s'), 0.5)
    >>> after_exception(ValueError("x"), attempt=2, policy=p, started_at=0.0, now=1.0)[0]
    Failed(message='attempt 2 of 2 failed: ValueError: x', attempts=2)
    >>> after_exception(SKIP("later"), attempt=1, policy=p, started_at=0.0, now=1.0)[0]
    Skipped(message='later')
    """
    now = time.time() if now is None else now
    if isinstance(exc, SKIP):
        return State(StateType.SKIPPED, message=exc.message or "skipped", attempts=attempt,
                     started_at=started_at, ended_at=now), None
    if isinstance(exc, FAIL):
        return (
            State(
                StateType.FAILED,
                message=exc.message or "failed",
                exception=exc,
                traceback=traceback,
                attempts=attempt,
                started_at=started_at,
                ended_at=now,
            ),
            None,
        )
    timed_out = isinstance(exc, TaskTimeoutError)
    what = str(exc) if timed_out else describe_exception(exc)
    retryable = policy.retry_on is None or isinstance(exc, policy.retry_on)
    prefix = f"attempt {attempt} of {policy.max_attempts}"
    if retryable and attempt < policy.max_attempts:
        delay = retry_delay(policy.delay, attempt)
        return (
            State(
                StateType.RETRYING,
                message=f"{prefix} failed: {what}; retrying in {delay:g} s",
                exception=exc,
                traceback=traceback,
                attempts=attempt,
                started_at=started_at,
            ),
            delay,
        )
    if not retryable and attempt < policy.max_attempts:
        what += f" (not retried: not one of retry_on={_type_names(policy.retry_on)})"
    return (
        State(
            StateType.TIMED_OUT if timed_out else StateType.FAILED,
            message=f"{prefix} failed: {what}",
            exception=exc,
            traceback=traceback,
            attempts=attempt,
            started_at=started_at,
            ended_at=now,
        ),
        None,
    )


def describe_exception(exc: BaseException | str) -> str:
    """``Type: message`` on one line, as a person reads it (the message clipped).

    Examples
    --------
    >>> describe_exception(KeyError("path"))
    "KeyError: 'path'"
    >>> describe_exception(RuntimeError())
    'RuntimeError'
    """
    if isinstance(exc, str):  # the repr of an exception that could not travel
        return exc
    text = " ".join(str(exc).split())
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_MESSAGE_LIMIT = 1000


def _type_names(types: tuple[type[BaseException], ...] | None) -> str:
    return "(" + ", ".join(t.__name__ for t in types or ()) + ")"


def crashed(reason: str, *, now: float | None = None) -> State:
    """The state of a task whose worker died under it and was not re-run."""
    return State(StateType.CRASHED, message=reason, ended_at=time.time() if now is None else now)


def cancelled(reason: str, *, now: float | None = None) -> State:
    """The state of a task run, or a flow run, stopped before it could finish.

    Examples
    --------
    >>> cancelled("the serve process stopped", now=1.0)
    Cancelled(message='the serve process stopped')
    """
    return State(StateType.CANCELLED, message=reason, ended_at=time.time() if now is None else now)


def flow_state(
    reference: Mapping[str, State],
    *,
    started_at: float | None = None,
    now: float | None = None,
    result: Any = None,
    crashed: str | None = None,
) -> State:
    """A flow run's state from its reference tasks' final states.

    SUCCESS when every reference task is successful or skipped, else FAILED with
    a message naming the tasks that failed.  With ``crashed`` (why the run's
    infrastructure went away: its scheduler was lost, its client disconnected),
    CRASHED with that reason, whatever the tasks had reached: the run did not
    get to finish, so its outcome is not the tasks' fault.  This is the one place
    a flow run's CRASHED is decided (``on_crashed`` hooks rely on it).

    Examples
    --------
    >>> flow_state({"a": State(StateType.SUCCESS), "b": State(StateType.SKIPPED)}).type
    <StateType.SUCCESS: 'SUCCESS'>
    >>> flow_state({"a": State(StateType.FAILED, message="boom")})
    Failed(message="task 'a' failed: boom")
    >>> flow_state({"a": State(StateType.SUCCESS)}, crashed="lost the scheduler")
    Crashed(message='lost the scheduler')
    """
    now = time.time() if now is None else now
    if crashed is not None:
        return State(StateType.CRASHED, message=crashed, started_at=started_at, ended_at=now)
    failed = {n: s for n, s in reference.items() if not (s.is_successful() or s.is_skipped())}
    if not failed:
        n = len(reference)
        return State(
            StateType.SUCCESS,
            message=f"{n} reference task{'s' if n != 1 else ''} finished",
            started_at=started_at,
            ended_at=now,
            result=result,
        )
    if len(failed) == 1:
        ((name, st),) = failed.items()
        message = f"task {name!r} {_verb(st)}: {st.message}" if st.message else f"task {name!r} failed"
    else:
        message = f"{len(failed)} tasks did not succeed: {_names(failed)}"
    first = next(iter(failed.values()))
    return State(
        StateType.FAILED,
        message=message,
        exception=first.exception,
        traceback=first.traceback,
        started_at=started_at,
        ended_at=now,
    )




def _verb(state: State) -> str:
    return {
        StateType.TRIGGER_FAILED: "did not run",
        StateType.CRASHED: "crashed",
        StateType.TIMED_OUT: "timed out",
        StateType.CANCELLED: "was cancelled",
    }.get(state.type, "failed")
