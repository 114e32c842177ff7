"""The recorder's writer on a SQLite history, through the standard library's ``sqlite3``.

Importing SQLAlchemy and opening a :class:`~taskflow.history.store.HistoryStore`
costs the process running a flow about 0.13 s of CPU, shared (one GIL) with the
Dask client and, with an embedded LocalCluster, the scheduler: on a first run
it is most of taskflow's extra time.  The recorder's writer only needs a few
statements, so for a SQLite file that already holds the whole history schema
(every run after the first on a machine) it writes through :class:`LiteStore`:
the same rows, upserts, pragmas and transactions as ``HistoryStore.write``, the
same marking of stale runs CRASHED on opening, the same cancel-request lookups.

Anything else goes through ``HistoryStore``, as before: PostgreSQL, a file that
does not exist yet or lacks a table, an index or a column (``HistoryStore``
creates them), another schema version (it refuses newer ones clearly), a URL
with options.  And should a write fail here, the batch is written again through
a ``HistoryStore`` opened then, which the writer keeps using.  Readers (the CLI,
the server) always use ``HistoryStore``.

What this module expects of the schema is checked against
:mod:`taskflow.history.schema` by ``tests/test_history_lite.py``.

Examples
--------
>>> import os, tempfile
>>> from taskflow.history.store import HistoryStore
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "h.db")
>>> open_lite(url) is None  # no file yet: HistoryStore creates it
True
>>> HistoryStore(url).close()
>>> store = open_lite(url)
>>> store.write(started=[dict(id="ab12", flow_name="etl", parameters="{}",
...     state="RUNNING", started_at=1.0, heartbeat=1.0)], tasks=[], logs=[],
...     finished=[], heartbeats=[], attempts=[])
>>> store.close()
"""
from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from taskflow.states import UNFINISHED_TYPES, StateType

if TYPE_CHECKING:
    from taskflow.history.store import HistoryStore

__all__ = ["LiteStore", "open_lite"]

logger = logging.getLogger("taskflow.history")

SCHEMA_VERSION = "1"  # schema.SCHEMA_VERSION (checked by the tests)

# What HistoryStore's opening would create when missing (schema.create): the tables,
# their indexes, and the columns added in place to older files (schema._ADDED).
TABLES = ("taskflow_flow_runs", "taskflow_task_runs", "taskflow_task_attempts", "taskflow_logs",
          "taskflow_served_flows", "taskflow_serve_processes", "taskflow_run_requests",
          "taskflow_cancel_requests", "taskflow_meta")
INDEXES = ("ix_taskflow_flow_runs_started", "ix_taskflow_flow_runs_flow",
           "ix_taskflow_flow_runs_state", "ix_taskflow_flow_runs_state_started",
           "ix_taskflow_task_runs_seq", "ix_taskflow_task_runs_map", "ix_taskflow_logs_run",
           "ix_taskflow_logs_time",
           "ix_taskflow_run_requests_pending", "ix_taskflow_run_requests_run")
ADDED = (("taskflow_flow_runs", "graph"), ("taskflow_served_flows", "signature"),
         ("taskflow_served_flows", "next_due"), ("taskflow_run_requests", "resume"))

# Column defaults (schema.py's default=) of the tables written here, for rows without them.
DEFAULTS: dict[str, dict[str, Any]] = {
    "taskflow_flow_runs": {"parameters": "{}", "message": ""},
    "taskflow_task_runs": {"seq": 0, "key": "", "attempts": 0, "message": "", "worker": ""},
    "taskflow_task_attempts": {"message": "", "worker": ""},
    "taskflow_logs": {"task": "", "logger": "", "worker": ""},
}

_UNFINISHED = tuple(sorted(t.value for t in UNFINISHED_TYPES))
_IN_UNFINISHED = f"state IN ({', '.join('?' * len(_UNFINISHED))})"
# Columns a later event of a task run overwrites (store._TASK_UPDATES), and the three
# that keep their earlier value when the new one is empty.
_TASK_SET = ", ".join([f"{c} = excluded.{c}" for c in
                       ("state", "attempts", "message", "ended_at", "traceback", "updated_at")]
                      + ["started_at = coalesce(excluded.started_at, taskflow_task_runs.started_at)",
                         "worker = coalesce(nullif(excluded.worker, ''), taskflow_task_runs.worker)",
                         "result_location = coalesce(excluded.result_location, "
                         "taskflow_task_runs.result_location)"])
_FILE_URL = re.compile(r"sqlite(\+pysqlite)?:///(?P<path>[^?#%]+)")


def open_lite(url: str, stale_after: float | None = None) -> LiteStore | None:
    """A :class:`LiteStore` on ``url``, or None when ``HistoryStore`` must open it.

    ``url`` must name an existing SQLite file (``sqlite:///path``, no options)
    whose schema is complete and of this version.  Stale runs are then marked
    CRASHED, as ``HistoryStore`` does on opening (``stale_after``: seconds,
    default ``taskflow.history.stale-after``).
    """
    m = _FILE_URL.fullmatch(url)
    if m is None or m["path"] == ":memory:" or not os.path.isfile(m["path"]):
        return None
    try:
        conn = sqlite3.connect(m["path"], timeout=30, isolation_level=None,
                               check_same_thread=False)
    except Exception:
        return None
    try:
        if not _complete(conn):
            conn.close()
            return None
        store = LiteStore(url, conn)
        if stale_after is None:
            import dask.utils

            from taskflow import config

            stale_after = dask.utils.parse_timedelta(config.get("history.stale-after"))
        store.mark_crashed(stale_after)
        return store
    except Exception as e:  # whatever it is, HistoryStore opens it (or says why it cannot)
        logger.debug("run history: %s opens through SQLAlchemy (%r)", url, e)
        conn.close()
        return None


def _complete(conn: sqlite3.Connection) -> bool:
    """Whether opening through ``HistoryStore`` would change nothing in this file."""
    conn.execute("PRAGMA busy_timeout=30000")
    names = {n for (n,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    if not names.issuperset(TABLES) or not names.issuperset(INDEXES):
        return False
    for table, column in ADDED:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            return False
    row = conn.execute("SELECT value FROM taskflow_meta WHERE key = 'schema_version'").fetchone()
    if row is None or str(row[0]) != SCHEMA_VERSION:
        return False
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return True


class LiteStore:
    """What the recorder's writer does to a SQLite history, without SQLAlchemy.

    Made by :func:`open_lite`.  :meth:`write` is ``HistoryStore.write`` (given the
    parts of its ``WriteBatch``); a write that fails here is made again through
    a ``HistoryStore``, which is used from then on.
    """

    def __init__(self, url: str, conn: sqlite3.Connection) -> None:
        self.url = self.display_url = url
        self._conn = conn
        self._full: HistoryStore | None = None

    def __repr__(self) -> str:
        return f"<LiteStore {self.display_url}>"

    def close(self) -> None:
        self._conn.close()
        if self._full is not None:
            self._full.close()

    def _write(self) -> _Transaction:
        return _Transaction(self._conn)

    def _fallback(self, e: BaseException) -> HistoryStore:
        if self._full is None:
            from taskflow.history.store import HistoryStore

            logger.debug("run history: writing %s through SQLAlchemy from now on (%r)",
                         self.url, e)
            self._full = HistoryStore(self.url)
        return self._full

    # -- what the writer does ---------------------------------------------------------
    def write(self, **parts: Any) -> None:
        """Apply the parts of a ``WriteBatch`` (``started``, ``tasks``, ``attempts``,
        ``logs``, ``finished``, ``heartbeats``) in one transaction, as
        ``HistoryStore.write(WriteBatch(**parts))`` does; a write that fails here is
        made there (rolled back here: written once)."""
        if self._full is None:
            try:
                self._write_rows(**parts)
                return
            except (sqlite3.Error, TypeError, ValueError, OverflowError) as e:
                self._fallback(e)
        from taskflow.history.store import WriteBatch

        self._full.write(WriteBatch(**parts))  # type: ignore[union-attr]

    def _write_rows(self, *, started: list[dict[str, Any]], tasks: list[dict[str, Any]],
                    logs: list[dict[str, Any]], finished: list[dict[str, Any]],
                    heartbeats: list[str], attempts: list[dict[str, Any]]) -> None:
        if not (started or tasks or attempts or logs or finished or heartbeats):
            return
        now = time.time()
        with self._write() as conn:
            if started:
                _insert(conn, "taskflow_flow_runs", started, "ON CONFLICT (id) DO NOTHING")
            if tasks:
                _insert(conn, "taskflow_task_runs", tasks,
                        f"ON CONFLICT (run_id, name) DO UPDATE SET {_TASK_SET}")
            if attempts:
                _insert(conn, "taskflow_task_attempts", attempts,
                        "ON CONFLICT (run_id, name, attempt) DO NOTHING")
            if logs:
                _insert(conn, "taskflow_logs", logs)
            for row in finished:
                conn.execute("UPDATE taskflow_flow_runs SET state = ?, message = ?, ended_at = ?, "
                             "heartbeat = ? WHERE id = ?",
                             (row["state"], row["message"], row["ended_at"], now, row["id"]))
                if row.get("unfinished_tasks"):
                    conn.execute(f"UPDATE taskflow_task_runs SET state = ?, message = ?, "
                                 f"ended_at = ?, updated_at = ? WHERE run_id = ? AND {_IN_UNFINISHED}",
                                 (row["unfinished_tasks"], row["message"], row["ended_at"], now,
                                  row["id"], *_UNFINISHED))
            if heartbeats:
                conn.executemany("UPDATE taskflow_flow_runs SET heartbeat = ? WHERE id = ? AND "
                                 "state = ?", [(now, r, StateType.RUNNING.value) for r in heartbeats])

    def mark_crashed(self, stale_after: float) -> list[str]:
        """Mark CRASHED the RUNNING runs whose heartbeat is older than ``stale_after`` s
        (``HistoryStore.mark_crashed``, with the same messages)."""
        now = time.time()
        marked = []
        with self._write() as conn:
            stale = conn.execute(
                f"SELECT id, heartbeat, host, pid FROM taskflow_flow_runs WHERE {_IN_UNFINISHED} "
                "AND (heartbeat IS NULL OR heartbeat <= ?)", (*_UNFINISHED, now - stale_after),
            ).fetchall()
            for run_id, beat, host, pid in stale:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(beat)) if beat else "never"
                message = (f"the process that ran this flow (pid {pid} on {host}) stopped: "
                           f"no heartbeat since {when}")
                done = conn.execute(
                    f"UPDATE taskflow_flow_runs SET state = ?, message = ?, ended_at = ? "
                    f"WHERE id = ? AND {_IN_UNFINISHED}",
                    (StateType.CRASHED.value, message, beat if beat else now, run_id, *_UNFINISHED),
                ).rowcount
                if not done:
                    continue  # it finished meanwhile
                conn.execute(
                    f"UPDATE taskflow_task_runs SET state = ?, message = ?, updated_at = ? "
                    f"WHERE run_id = ? AND {_IN_UNFINISHED}",
                    (StateType.CRASHED.value, "its flow run crashed", now, run_id, *_UNFINISHED))
                marked.append(run_id)
        if marked:
            logger.warning("run history: marked %d flow run(s) CRASHED (%s)", len(marked),
                           ", ".join(r[:8] for r in marked))
        return marked

    def cancels_for(self, run_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Cancel requests not taken yet for ``run_ids`` (``serving.cancels_for``)."""
        run_ids = list(run_ids)
        if self._full is not None:
            from taskflow.history import serving

            return serving.cancels_for(self._full, run_ids)
        out: list[tuple[str, str]] = []
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            out.extend(self._conn.execute(
                f"SELECT run_id, reason FROM taskflow_cancel_requests WHERE run_id IN "
                f"({', '.join('?' * len(chunk))}) AND taken_at IS NULL", chunk).fetchall())
        return out

    def take_cancel(self, run_id: str) -> None:
        """The cancel request of ``run_id`` was carried out (``serving.take_cancel``)."""
        if self._full is not None:
            from taskflow.history import serving

            serving.take_cancel(self._full, run_id)
            return
        with self._write() as conn:
            conn.execute("UPDATE taskflow_cancel_requests SET taken_at = ? WHERE run_id = ?",
                         (time.time(), run_id))


def _insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], tail: str = "") -> None:
    defaults = DEFAULTS.get(table, {})
    columns = list(rows[0]) + [c for c in defaults if c not in rows[0]]
    names = ", ".join(f'"{c}"' for c in columns)
    sql = (f"INSERT INTO {table} ({names}) VALUES "
           f"({', '.join('?' * len(columns))}) {tail}")
    conn.executemany(sql, [tuple(row.get(c, defaults.get(c)) for c in columns) for row in rows])


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error), as the store's writes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                self.conn.execute("COMMIT")
        finally:
            if self.conn.in_transaction:  # an error, or a COMMIT that failed: nothing stays held
                self.conn.execute("ROLLBACK")
