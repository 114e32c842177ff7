"""What the history hands back: plain, frozen records of runs, task runs and logs.

Reading the history never gives SQLAlchemy rows: the store turns them into
these records, so callers (the CLI, :func:`taskflow.Flow.visualize`, notebooks)
depend on nothing but the standard library.  Times are wall-clock seconds since
the epoch (``time.time()``), ``None`` when unknown.

Examples
--------
>>> r = TaskRunRecord(run_id="ab12", name="load[0]", key="('load-1f', 0)",
...                   map_index=0, state="SUCCESS", attempts=1,
...                   started_at=10.0, ended_at=12.5)
>>> r.duration
2.5
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from taskflow.exceptions import TaskflowError

__all__ = ["AttemptRecord", "FlowRunRecord", "HistoryError", "LogRecord", "TaskRunRecord", "UnknownRunError"]


class HistoryError(TaskflowError):
    """The run history cannot be opened, read or written.

    Examples
    --------
    >>> from taskflow.history import open_history
    >>> open_history("nosuchdb://x")  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.history.records.HistoryError: ...
    """


class UnknownRunError(HistoryError, LookupError):
    """No flow run (or more than one) in the history matches a run id or prefix.

    Examples
    --------
    >>> from taskflow.history import open_history
    >>> with open_history() as history:  # doctest: +SKIP
    ...     history.get_run("0000")
    Traceback (most recent call last):
    ...
    taskflow.history.records.UnknownRunError: ...
    """


def _duration(started: float | None, ended: float | None) -> float | None:
    if started is None or ended is None:
        return None
    return ended - started


@dataclass(frozen=True)
class FlowRunRecord:
    """One flow run as the history keeps it.

    Attributes
    ----------
    id : str
        The run id (32 hex digits; any unique prefix finds it).
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
    >>> r.params, r.duration
    ({'n': 10}, 2.5)
    """

    id: str
    flow_name: str
    parameters: str = "{}"
    state: str = "PENDING"
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
    def graph_dict(self) -> dict[str, Any]:
        """The graph, decoded (empty lists when unknown)."""
        value = json.loads(self.graph) if self.graph else {}
        value = value if isinstance(value, dict) else {}
        return {"nodes": list(value.get("nodes") or []), "edges": list(value.get("edges") or []),
                "reference": list(value.get("reference") or [])}

    @property
    def params(self) -> dict[str, Any]:
        """The parameters, decoded."""
        value = json.loads(self.parameters or "{}")
        return value if isinstance(value, dict) else {}

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        return _duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class TaskRunRecord:
    """One task run (a task call, or one child of a mapped call) of a flow run.

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

    Examples
    --------
    >>> t = TaskRunRecord("3f2a" * 8, "load[3]", map_index=3, state="FAILED", attempts=2)
    >>> t.name, t.state, t.attempts
    ('load[3]', 'FAILED', 2)
    """

    run_id: str
    name: str
    key: str = ""
    map_index: int | None = None
    state: str = "PENDING"
    attempts: int = 0
    message: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    worker: str = ""
    traceback: str | None = None
    result_location: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end, when both are known."""
        return _duration(self.started_at, self.ended_at)


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a task run that raised (retried, or the last one).

    Attributes
    ----------
    run_id : str
    name : str
        The task-run name, as in :class:`TaskRunRecord`.
    attempt : int
        1 for the first attempt.
    state : str
        ``RETRYING`` when another attempt followed; else the task run's final
        state (``FAILED``, ``TIMED_OUT``).
    exception_type : str or None
        The exception's class name (``ConnectionError``).
    message : str
        ``attempt 1 of 3 failed: ConnectionError: refused; retrying in 0.5 s``.
    traceback : str or None
        The formatted traceback (clipped when very long).
    worker : str
    failed_at : float or None
        When the attempt ended.

    Examples
    --------
    >>> a = AttemptRecord(run_id="ab12", name="load[0]", attempt=1, state="RETRYING",
    ...                   exception_type="ConnectionError")
    >>> (a.attempt, a.state, a.exception_type)
    (1, 'RETRYING', 'ConnectionError')
    """

    run_id: str
    name: str
    attempt: int
    state: str
    exception_type: str | None = None
    message: str = ""
    traceback: str | None = None
    worker: str = ""
    failed_at: float | None = None


@dataclass(frozen=True)
class LogRecord:
    """A log record made by a task run (``get_run_logger()``) or by the flow run.

    Attributes
    ----------
    run_id : str
    task : str
        The task-run name; empty for records of the flow run itself.
    level : int
        A :mod:`logging` level number.
    logger : str
        The logger's name.
    message : str
        The formatted message (with the exception's traceback, if any).
    created : float
        When the record was made.
    worker : str
        Where it was made, when known.

    Examples
    --------
    >>> import logging
    >>> rec = LogRecord("3f2a" * 8, "total", logging.INFO, "taskflow.task_runs",
    ...                 "summing 100 numbers", created=0.0)
    >>> logging.getLevelName(rec.level), rec.message
    ('INFO', 'summing 100 numbers')
    """

    run_id: str
    task: str
    level: int
    logger: str
    message: str
    created: float
    worker: str = ""
