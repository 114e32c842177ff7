"""Run history: every flow run, its task runs and their logs, in a SQL database.

Recorded by default for every run (``taskflow.history.enabled``), into a SQLite
file under the user's data directory, or wherever ``taskflow.history.url``
points (``postgresql://...`` for PostgreSQL).  Read it with :func:`open_history`
or the ``taskflow`` CLI (``taskflow runs``, ``taskflow show``, ``taskflow logs``).

* :mod:`~taskflow.history.recorder` -- the run observer that records, off the task path;
* :mod:`~taskflow.history.store` -- the database (SQLAlchemy Core), reads and writes;
* :mod:`~taskflow.history.schema` -- the tables;
* :mod:`~taskflow.history.records` -- what reads return (runs, task runs, failed
  attempts, log records).

Importing this package does not import SQLAlchemy; opening a store does.

Examples
--------
>>> from taskflow.history import open_history
>>> with open_history() as history:                      # doctest: +SKIP
...     last = history.runs(limit=1)[0]
...     [(t.name, t.state) for t in history.task_runs(last.id)]
[('extract', 'SUCCESS'), ('total', 'SUCCESS')]
>>> history.task_attempts(last.id)  # each attempt that raised   # doctest: +SKIP
[]
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.history.recorder import HistoryRecorder, default_recorder, install
    from taskflow.history.records import (
        AttemptRecord,
        FlowRunRecord,
        HistoryError,
        LogRecord,
        TaskRunRecord,
        UnknownRunError,
    )
    from taskflow.history.store import HistoryStore
    from taskflow.history.urls import default_url, resolve_url

# Where each public name lives, imported when first asked for: a flow run imports
# only the recorder (and what it writes with), not the records readers use.
_LAZY = {
    "HistoryRecorder": "recorder", "default_recorder": "recorder", "install": "recorder",
    "AttemptRecord": "records", "FlowRunRecord": "records", "HistoryError": "records",
    "LogRecord": "records", "TaskRunRecord": "records", "UnknownRunError": "records",
    "default_url": "urls", "resolve_url": "urls",
}

__all__ = [
    "AttemptRecord",
    "FlowRunRecord",
    "HistoryError",
    "HistoryRecorder",
    "LogRecord",
    "TaskRunRecord",
    "UnknownRunError",
    "default_recorder",
    "default_url",
    "install",
    "open_history",
    "resolve_url",
]


def open_history(url: str | None = None, *, stale_after: float | str | None = None) -> HistoryStore:
    """Open the run history (see :class:`~taskflow.history.store.HistoryStore`).

    Runs left RUNNING by a process that died (stale heartbeat) are marked CRASHED.

    Parameters
    ----------
    url : str, optional
        Default: ``taskflow.history.url``, else the SQLite file of :func:`default_url`.
    stale_after : float or str, optional
        Default: ``taskflow.history.stale-after``.

    Examples
    --------
    >>> with open_history("sqlite:///:memory:") as history:
    ...     history.runs()
    []
    """
    from taskflow.history.store import HistoryStore

    return HistoryStore(url, stale_after=stale_after)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
