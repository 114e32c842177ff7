"""What the history hands back: plain records of runs, task runs, attempts and logs.

Reading the history never gives SQLAlchemy rows: the store turns them into
these records (a run's and a task run's are the one model of
:mod:`taskflow.records`, re-exported here), so callers (the CLI,
:func:`taskflow.Flow.visualize`, notebooks) depend on nothing but the standard library.  Times are wall-clock seconds since
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

from dataclasses import dataclass

from taskflow.exceptions import TaskflowError
from taskflow.records import FlowRunRecord, TaskRunRecord

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
