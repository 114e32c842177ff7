"""The record of a flow run and of a task run: one model, read by every layer.

:class:`FlowRunRecord` and :class:`TaskRunRecord` are what the history hands
back (rows of the store turned into records), what the ``/taskflow`` page on the
Dask dashboard keeps live (a :class:`TaskRunRecord` per task run, updated from
state events) and what :class:`taskflow.FlowRun` exposes (:attr:`FlowRun.record
<taskflow.runs.FlowRun.record>`).  The facts derived from them are computed here
only: a run's duration (:func:`duration`), whether it finished or failed, and a
mapped task's own state from its children's (:func:`mapped_parent` once they
have all ended, :func:`mapped_state` at any moment).

Plain data on the standard library and :mod:`taskflow.states`: no engine, no
Dask, no SQLAlchemy.  States are :class:`~taskflow.states.StateType` values
(strings, which is how they are stored); times are wall-clock seconds since the
epoch (``time.time()``), ``None`` when unknown.

Examples
--------
>>> r = TaskRunRecord(run_id="ab12", name="load[0]", key="('load-1f', 0)",
...                   map_index=0, state="SUCCESS", attempts=1,
...                   started_at=10.0, ended_at=12.5)
>>> r.duration, r.finished, r.failed, r.node
(2.5, True, False, 'load')
>>> mapped_state(None, "", ["SUCCESS", "FAILED"], size=2)
(<StateType.FAILED: 'FAILED'>, '1 of 2 mapped children did not succeed')
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskflow.states import FAILED_TYPES, FINISHED_TYPES, RUNNING_TYPES, SUCCESSFUL_TYPES, StateType

__all__ = ["FlowRunRecord", "TaskRunRecord", "duration", "mapped_parent", "mapped_parent_counts",
           "mapped_state"]

_SUCCESS_OR_SKIPPED = SUCCESSFUL_TYPES | {StateType.SKIPPED}


def duration(started: float | None, ended: float | None) -> float | None:
    """Seconds from ``started`` to ``ended``, when both are known.

    Examples
    --------
    >>> duration(10.0, 12.5), duration(None, 12.5)
    (2.5, None)
    """
    if started is None or ended is None:
        return None
    return ended - started


def mapped_parent(children: Sequence[StateType | str]) -> tuple[StateType, str]:
    """A mapped task's own end, from its children's (final) state types.

    The one rule for the flow runner, the dashboard and the server: FAILED when a
    child did not succeed; CANCELLED when the only ones that did not were cancelled
    (the run was stopped, none failed); SKIPPED when every child was skipped
    (nothing ran: as in Prefect 1, and a mapped task downstream, whose children are
    skipped by theirs, ends SKIPPED too); else SUCCESS, with a message counting them.

    Examples
    --------
    >>> mapped_parent([StateType.SUCCESS, StateType.SKIPPED])
    (<StateType.SUCCESS: 'SUCCESS'>, '2 mapped children, 1 skipped')
    >>> mapped_parent(["SUCCESS", "FAILED", "CRASHED"])
    (<StateType.FAILED: 'FAILED'>, '2 of 3 mapped children did not succeed')
    >>> mapped_parent(["SUCCESS", "CANCELLED", "CANCELLED"])
    (<StateType.CANCELLED: 'CANCELLED'>, '2 of 3 mapped children were cancelled')
    >>> mapped_parent(["SKIPPED", "SKIPPED"])
    (<StateType.SKIPPED: 'SKIPPED'>, 'all 2 mapped children were skipped')
    """
    counts: dict[StateType, int] = {}
    for c in children:
        kind = StateType(c)
        counts[kind] = counts.get(kind, 0) + 1
    return mapped_parent_counts(len(children), counts)


def mapped_parent_counts(n: int, counts: Mapping[StateType, int]) -> tuple[StateType, str]:
    """:func:`mapped_parent` from how many of ``n`` children ended as each type.

    Examples
    --------
    >>> mapped_parent_counts(3, {StateType.SUCCESS: 2, StateType.FAILED: 1})
    (<StateType.FAILED: 'FAILED'>, '1 of 3 mapped children did not succeed')
    """
    bad = n - sum(counts.get(t, 0) for t in _SUCCESS_OR_SKIPPED)
    cancelled = counts.get(StateType.CANCELLED, 0)
    if bad and bad == cancelled:
        return StateType.CANCELLED, f"{cancelled} of {n} mapped children were cancelled"
    if bad:
        return StateType.FAILED, f"{bad} of {n} mapped children did not succeed"
    skipped = counts.get(StateType.SKIPPED, 0)
    if n and skipped == n:
        return StateType.SKIPPED, f"all {n} mapped children were skipped"
    also = f", {skipped} skipped" if skipped else ""
    return StateType.SUCCESS, f"{n} mapped children{also}"


def mapped_state(
    own: StateType | str | None, message: str, children: Sequence[StateType | str],
    size: int | None = None,
) -> tuple[StateType, str]:
    """A mapped task's state at any moment: how it expanded, then how its children went.

    ``own`` is the mapped task's own state (``RUNNING, "mapped over 3 elements"``
    once it expanded; a final one when it could not expand), None when nothing
    was heard of it; ``children`` the states of the children known so far, of
    ``size`` children in all (None: not known, the children known are all).
    Until every child has ended the task is RUNNING (PENDING while nothing of it
    started); then :func:`mapped_parent` decides.

    Examples
    --------
    >>> mapped_state("RUNNING", "mapped over 3 elements", ["SUCCESS"], size=3)
    (<StateType.RUNNING: 'RUNNING'>, 'mapped over 3 elements')
    >>> mapped_state("TRIGGER_FAILED", "upstream failed", [])
    (<StateType.TRIGGER_FAILED: 'TRIGGER_FAILED'>, 'upstream failed')
    >>> mapped_state("RUNNING", "mapped over 2 elements", ["SKIPPED", "SKIPPED"], size=2)
    (<StateType.SKIPPED: 'SKIPPED'>, 'all 2 mapped children were skipped')
    """
    if own is not None and own in FINISHED_TYPES:
        return StateType(own), message  # it could not expand
    if own is None and not children:
        return StateType.PENDING, ""
    if (size is None and not children) or (size is not None and len(children) < size) or any(
            c not in FINISHED_TYPES for c in children):
        running = own is not None or any(c in RUNNING_TYPES for c in children)
        return (StateType.RUNNING if running else StateType.PENDING), message if own is not None else ""
    return mapped_parent(children)


@dataclass(slots=True)
class TaskRunRecord:
    """One task run (a task call, or one child of a mapped call) of a flow run.

    The history's rows are these; the dashboard's live model keeps one per task run
    and updates it as state events come (so it is not frozen).

    Attributes
    ----------
    run_id : str
    name : str
        ``load``, ``load-2`` (second call), ``load[3]`` (mapped child), ``sub/load``
        (inside a subflow).
    key : str
        The Dask key, as text.
    map_index : int or None
        The child's index for mapped children.
    state : str
        A :class:`~taskflow.states.StateType` value.
    attempts : int
        How many times the function was started.
    message : str
    started_at, ended_at : float or None
    worker : str
        The Dask worker's address (``"local"`` on LocalExecutor).
    traceback : str or None
        On failure, the formatted traceback.
    result_location : str or None
        Where the result was persisted, when it was (checkpoints).
    error : str
        On failure, the exception's repr, when known (the live model has it).
    updated_at : float or None
        When the record last changed.

    Examples
    --------
    >>> t = TaskRunRecord("3f2a" * 8, "load[3]", map_index=3, state="FAILED", attempts=2)
    >>> t.name, t.state, t.attempts, t.failed
    ('load[3]', 'FAILED', 2, True)
    """

    run_id: str
    name: str
    key: str = ""
    map_index: int | None = None
    state: str = StateType.PENDING.value
    attempts: int = 0
    message: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    worker: str = ""
    traceback: str | None = None
    result_location: str | None = None
    error: str = ""
    updated_at: float | None = None

    @property
    def node(self) -> str:
        """The graph node the task run belongs to (a mapped child's task: ``load``)."""
        return self.name.rpartition("[")[0] if self.map_index is not None else self.name

    @property
    def finished(self) -> bool:
        """True once the run ended (successful, failed or skipped)."""
        return self.state in FINISHED_TYPES

    @property
    def failed(self) -> bool:
        """True when the run ended failed (CANCELLED too: see :mod:`taskflow.states`)."""
        return self.state in FAILED_TYPES

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end, when both are known."""
        return duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class FlowRunRecord:
    """One flow run: what the history keeps of it, and :attr:`taskflow.FlowRun.record`.

    Attributes
    ----------
    id : str
        The run id (32 hex digits; any unique prefix finds it in the history).
    flow_name : str
    parameters : str
        The parameter values as a JSON object; values JSON cannot hold are stored
        as their ``repr``.  :attr:`params` decodes it.
    state : str
        A :class:`~taskflow.states.StateType` value (``"RUNNING"`` while it runs).
    message : str
    started_at, ended_at, heartbeat : float or None
        Wall-clock seconds; ``heartbeat`` is refreshed while the run goes on.
    executor : str or None
        The executor's repr (``"LocalExecutor()"``, ``"DaskExecutor('LocalCluster')"``).
    address : str or None
        The Dask scheduler's address, when the run went to one.
    dashboard_link : str or None
    host : str or None
        The machine of the process that ran the flow.
    pid : int or None
        That process's id.
    graph : str or None
        The flow's graph as JSON (``nodes``: name, task, mapped; ``edges``:
        ``[upstream, downstream, "data" | "order"]``; ``reference``); :attr:`graph_dict`
        decodes it.  None in runs recorded before it was kept.

    Examples
    --------
    >>> r = FlowRunRecord("3f2a" * 8, "etl", parameters='{"n": 10}', state="SUCCESS",
    ...                   started_at=10.0, ended_at=12.5)
    >>> r.params, r.duration, r.finished
    ({'n': 10}, 2.5, True)
    """

    id: str
    flow_name: str
    parameters: str = "{}"
    state: str = StateType.PENDING.value
    message: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat: float | None = None
    executor: str | None = None
    address: str | None = None
    dashboard_link: str | None = None
    host: str | None = None
    pid: int | None = None
    graph: str | None = None

    @property
    def run_id(self) -> str:
        """Alias of :attr:`id`."""
        return self.id

    @property
    def graph_dict(self) -> dict[str, Any]:
        """The graph, decoded (empty lists when unknown)."""
        from taskflow.description import expand  # a wide flow's graph is stored grouped

        value = json.loads(self.graph) if self.graph else {}
        return expand(value if isinstance(value, dict) else {})

    @property
    def params(self) -> dict[str, Any]:
        """The parameters, decoded."""
        value = json.loads(self.parameters or "{}")
        return value if isinstance(value, dict) else {}

    @property
    def finished(self) -> bool:
        """True once the run ended (a run the history finds stale ends CRASHED)."""
        return self.state in FINISHED_TYPES

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        return duration(self.started_at, self.ended_at)
