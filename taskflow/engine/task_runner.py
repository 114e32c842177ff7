"""Run one task run on a worker: trigger, attempts, retries, timeout, events.

This is the worker side.  It receives the outputs of its upstreams (raw values
as Dask holds them, or :class:`StateMarker` objects left by upstreams that did
not succeed), decides with :mod:`taskflow.engine.transitions` whether and how
to run, calls the function, and reports each state change through ``emit``.

What it returns becomes the value of the task's Dask key:

* on success, the function's **raw output**, so Dask's memory accounting,
  spilling and transfers see the real object;
* otherwise a small :class:`StateMarker`, which downstream runs read to apply
  their triggers;
* a Dask collection is first persisted through ``collections`` (computed
  once, kept on the cluster; see :mod:`taskflow.engine.collections`), unless
  the task says ``persist=False``;
* when a stored result stands in for the run (CACHED: a resumed run's result,
  an existing target, a cache hit), a small
  :class:`~taskflow.results.Persisted` reference.  A downstream run loads it on
  its own worker, only when it is about to run (see
  :mod:`taskflow.engine.persisting`).

Results are written only when the task run's spec carries a ``persist`` part
(checkpoint, target or cache key asked for): by this runner, on this worker,
after the function returned, as part of the attempt (a failed write is retried
like a failed attempt; a value the serializer cannot write ends FAILED at once).

State hooks (``on_failure=``, ``on_completion=``, ``on_retry=``) are called by
``report``, here on the worker, after a state is known and before its event is
emitted (see :mod:`taskflow.hooks`).  A task whose tags have concurrency limits
holds a slot of each around its attempts, retries included (see
:mod:`taskflow.concurrency`); the trigger, and stored results standing in for
the run, are decided before, without a slot.

It knows nothing of the client, and nothing of Dask: the executor passes in how
to emit events (``emit``), how to wait between attempts without holding a
worker thread (``wait``), and how to hold slots of limited tags (``slots``).
"""
from __future__ import annotations

import contextvars
import ctypes
import logging
import threading
import time
import traceback as tb
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from taskflow import concurrency, hooks, triggers
from taskflow.context import TaskRunContext, reset_current, set_current
from taskflow.engine import persisting, transitions
from taskflow.engine.collections import Collections, is_collection
from taskflow.engine.events import portable_exception, state_msg
from taskflow.engine.markers import StateMarker
from taskflow.engine.steps import Group, Slot, TaskRunSpec
from taskflow.exceptions import TaskTimeoutError
from taskflow.logs import TASK_LOGGER
from taskflow.results.policy import PersistSpec
from taskflow.results.store import Persisted
from taskflow.states import State, StateType

__all__ = ["in_order", "run_task"]

Emit = Callable[[dict[str, Any]], None]
Slots = Callable[[list[tuple[str, int]], Callable[[State], None]], AbstractContextManager[None]]

_SUCCESS = State(StateType.SUCCESS)
_CACHED = State(StateType.CACHED)
logger = logging.getLogger("taskflow.results")
run_logger = logging.getLogger(TASK_LOGGER)

# triggers that let a task run when every upstream succeeded: with those, and no
# upstream value standing for anything else (a marker, a stored result), there is
# nothing to decide (most task runs)
_ADMIT_SUCCESS = frozenset((triggers.all_successful, triggers.all_finished,
                            triggers.always_run, triggers.any_successful))
_NOT_PLAIN = (StateMarker, Persisted)


def _all_plain(names: tuple[str | Group, ...], values: list[Any]) -> bool:
    """True when no upstream value is a marker or a stored reference (all succeeded)."""
    for name, v in zip(names, values):
        t = type(v)
        if t is StateMarker or t is Persisted:
            return False
        if type(name) is Group and any(type(x) in _NOT_PLAIN for x in v):
            return False
    return True


# (Slot(0), ..., Slot(n - 1)): the arguments of a task run called with its upstream
# values in order, and nothing else (most); one per n, so a runner knows them at a glance
_IN_ORDER: dict[int, tuple[Slot, ...]] = {}


def in_order(n: int) -> tuple[Slot, ...]:
    """The shared template of a call with ``n`` upstream values as its arguments, in order.

    Examples
    --------
    >>> in_order(2), in_order(2) is in_order(2)
    ((Slot(index=0), Slot(index=1)), True)
    """
    found = _IN_ORDER.get(n)
    if found is None:
        found = _IN_ORDER.setdefault(n, tuple(Slot(i) for i in range(n)))
    return found


def _arguments(spec: TaskRunSpec, values: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``spec.build_arguments(values)``; at once when the template is :func:`in_order`."""
    if spec.args is _IN_ORDER.get(len(values)) and spec.templated and not spec.kwargs:
        return tuple(values), {}
    return spec.build_arguments(values)


def run_task(
    spec: TaskRunSpec,
    upstream: list[Any],
    *,
    emit: Emit,
    wait: Callable[[float], None] = time.sleep,
    worker: str = "",
    forward_logs: Emit | None = None,
    slots: Slots | None = None,
    collections: Collections | None = None,
) -> Any:
    """Run ``spec`` given its upstream values; return its output or a marker.

    Parameters
    ----------
    spec : TaskRunSpec
        The task run, from the plan.
    upstream : list
        One value per name in ``spec.upstream``: outputs, markers, or probe results.
    emit : callable
        Receives each state event (a dict).
    wait : callable
        Sleeps between attempts; on Dask it leaves the worker's thread pool.
    worker : str
        The worker's address, recorded in events.
    forward_logs : callable, optional
        Receives log records made by the task when they must travel elsewhere.
    slots : callable, optional
        ``slots(limits, report)`` gives a context manager holding one slot of each
        ``(tag, limit)`` (sorted by tag) while the attempts run; ``report`` tells
        what it waits for.  Without it, concurrency limits are not enforced.
    collections : Collections, optional
        Persists and computes Dask collections the task returns (None: a returned
        collection is handed over lazily, and written with Dask's default scheduler).
    """
    task, run = spec.task, spec.run
    hooked = bool(task.on_failure or task.on_completion or task.on_retry)
    run_id, name, key, map_index = run.run_id, spec.name, str(spec.key), spec.map_index

    previous = [StateType.PENDING]

    def report(state: State) -> None:
        transitions.check_transition(previous[0], state.type, task=name)
        previous[0] = state.type
        if hooked:
            _call_hooks(spec, state, worker, forward_logs)
        emit(state_msg(run_id, name, key, state, worker, map_index))

    values = upstream
    stored = False  # some upstream value is a stored reference (a CACHED upstream)
    if upstream and not (task.trigger in _ADMIT_SUCCESS and _all_plain(spec.upstream, upstream)):
        states: dict[str, State] = {}
        raw = task.receives_state_markers
        values = [_take(name, v, states, raw) for name, v in zip(spec.upstream, upstream)]
        decided = transitions.decide_trigger(task.trigger, states)
        if decided is not None:
            report(decided)
            return StateMarker(decided)
        stored = any(s is _CACHED for s in states.values())

    persist = spec.persist
    if persist is not None:
        token = set_current(  # warnings about a stored file reach the flow's logs
            TaskRunContext(run.flow_name, run.run_id, spec.name, str(spec.key), 0, forward_logs)
        )
        try:
            hit = _find_stored(spec, persist)
        finally:
            reset_current(token)
        if hit is not None:
            report(hit.state)
            return hit.ref

    limits = concurrency.limits_of(task.tags, run.limits) if run.limits else []
    if not limits or slots is None:
        state, value = _attempts(spec, values, stored, report, wait, forward_logs, collections)
    else:
        try:
            with slots(limits, report):
                state, value = _attempts(spec, values, stored, report, wait, forward_logs,
                                         collections)
        except concurrency.SlotError as e:  # the limit itself is wrong: nothing ran
            state = State(StateType.FAILED, message=str(e), ended_at=time.time())
            value = StateMarker(state)
    report(state)
    return value


def _attempts(
    spec: TaskRunSpec,
    values: list[Any],
    stored: bool,
    report: Callable[[State], None],
    wait: Callable[[float], None],
    forward_logs: Emit | None,
    collections: Collections | None,
) -> tuple[State, Any]:
    """Run the attempts; return the final State (not yet reported) and the key's value."""
    task, run = spec.task, spec.run
    persist = spec.persist
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if not stored:
        args, kwargs = _arguments(spec, values)
    cache_at: str | None = None
    lookup = persist is not None and persist.cache_key_fn is not None
    started = time.time()
    key = str(spec.key)
    attempt = 0
    while True:
        attempt += 1
        report(State(StateType.RUNNING, attempts=attempt, started_at=started))
        token = set_current(
            TaskRunContext(run.flow_name, run.run_id, spec.name, key, attempt, forward_logs)
        )
        location = None
        try:
            if stored:  # loaded here, on this worker, because this task runs and needs them
                values = persisting.load_upstream(spec.upstream, values)
                args, kwargs = _arguments(spec, values)
                stored = False
            if lookup:
                assert persist is not None
                cache_at, hit = persisting.cache_lookup(spec, persist, args, kwargs)
                lookup = False
                if hit is not None:
                    return hit.state, hit.ref
            if task.timeout is None:
                result = task.fn(*args, **kwargs)
            else:
                result = _call_with_timeout(spec, args, kwargs, task.timeout)
            if collections is not None and task.persist and is_collection(result):
                result = collections.persist(result)  # computed here, as part of the attempt
            if persist is not None:
                location = persisting.save(spec, persist, result, cache_at, collections)
        except Exception as exc:
            state, delay = transitions.after_exception(
                exc,
                attempt=attempt,
                policy=task.retry_policy,
                started_at=started,
                traceback=_format_traceback(exc),
            )
            state = state.replace(exception=portable_exception(exc))
            if delay is None:
                return state, StateMarker(state)
            report(state)
            # said while this attempt's context is set: the record is the task run's
            run_logger.warning("%s", state.message)
            wait(delay)
            continue
        finally:
            reset_current(token)
        done = transitions.after_success(attempt, started)
        return (done if location is None else done.replace(result_location=location)), result


def _call_hooks(spec: TaskRunSpec, state: State, worker: str, forward_logs: Emit | None) -> None:
    """The task's hooks for ``state``, with the run's context (their logs go with the run)."""
    option = hooks.hooks_for_task(state)
    if option is None:
        return
    found = getattr(spec.task, option, ())
    if not found:
        return
    run = spec.run
    info = hooks.TaskRunInfo(run.flow_name, run.run_id, spec.name, str(spec.key),
                             spec.map_index, state.attempts, worker)
    token = set_current(TaskRunContext(run.flow_name, run.run_id, spec.name, str(spec.key),
                                       state.attempts, forward_logs))
    try:
        hooks.call_hooks(found, (spec.task, info, state), option=option,
                         what=f"task run {spec.name!r} of flow run {run.run_id[:8]}",
                         timeout=run.hook_timeout)
    finally:
        reset_current(token)


def _find_stored(spec: TaskRunSpec, persist: PersistSpec) -> persisting.StoredResult | None:
    """A stored result standing in for the run; None (run it) when the store cannot tell."""
    try:
        return persisting.find_stored(spec, persist)
    except Exception as e:  # noqa: BLE001 - running is the safe answer
        logger.warning("task %r: could not look up its stored result (%s: %s); running it",
                       spec.name, type(e).__name__, e)
        return None


def _take(name: str | Group, value: Any, states: dict[str, State], raw: bool) -> Any:
    """Record the state(s) behind one upstream value; return what the task receives."""
    if type(name) is Group:
        if type(value) is StateMarker:  # the mapped upstream could not expand
            states[name.name] = value.state
            return value if raw else value.downstream_value()
        return [_take(n, v, states, raw) for n, v in zip(name.names(), value)]
    if type(value) is StateMarker:
        states[name] = value.state  # type: ignore[index]
        return value if raw else value.downstream_value()
    states[name] = _CACHED if type(value) is Persisted else _SUCCESS  # type: ignore[index]
    return value


def _format_traceback(exc: BaseException) -> str:
    frames = exc.__traceback__
    # drop this module's own frame so the text starts in the user's code
    if frames is not None and frames.tb_frame.f_code.co_filename == __file__:
        frames = frames.tb_next
    return "".join(tb.format_exception(type(exc), exc, frames))


def _call_with_timeout(
    spec: TaskRunSpec, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
) -> Any:
    """Call the task's function in a helper thread and stop waiting at ``timeout``.

    Python cannot kill a thread: on timeout the attempt is abandoned and an
    exception is raised inside it at its next Python instruction (best effort;
    code blocked in C keeps going until it returns).
    """
    outcome: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = ctx.run(spec.task.fn, *args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed back to the runner
            outcome["error"] = e

    thread = threading.Thread(target=target, name=f"taskflow-{spec.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _interrupt(thread)
        raise TaskTimeoutError(
            f"task {spec.name!r} ran longer than its timeout of {timeout:g} s",
            task=spec.name, timeout=timeout,
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Abandoned(BaseException):
    """Raised inside an attempt that timed out, to stop it where possible."""


def _interrupt(thread: threading.Thread) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned)
        )
