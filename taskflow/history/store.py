"""The history store: flow runs, task runs and log records in a SQL database.

A :class:`HistoryStore` is one database, reached through SQLAlchemy Core: a
SQLite file by default (``taskflow.history.url`` unset), or PostgreSQL when the
URL starts with ``postgresql://`` (driven by psycopg 3).  Opening a store

1. creates the tables that are missing (a fresh database needs no migration);
2. marks **CRASHED** every run still RUNNING whose heartbeat is older than
   ``taskflow.history.stale-after``: the process that ran it died without saying
   so (its task runs that had not finished become CRASHED too), so nothing stays
   RUNNING forever.

Writes come in batches (:class:`WriteBatch`), one transaction each, from the
recorder's writer thread (:mod:`taskflow.history.recorder`); task runs are
upserted on ``(run_id, name)``, so a task run's later events overwrite its
earlier ones.  Reads return the plain records of :mod:`taskflow.history.records`.

SQLite files are opened in WAL mode with a generous busy timeout, so the CLI can
read while a flow writes, and several processes can record into one file.

Examples
--------
>>> import os, tempfile, time
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "h.db")
>>> store = HistoryStore(url)
>>> store.write(WriteBatch(started=[dict(id="ab12cd", flow_name="etl", parameters="{}",
...     state="RUNNING", started_at=time.time(), heartbeat=time.time())]))
>>> store.get_run("ab").state
'RUNNING'
>>> store.close()
"""
from __future__ import annotations

import functools
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, TypeVar

import dask.utils
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from taskflow import config
from taskflow.history import schema
from taskflow.history.records import (
    AttemptRecord,
    FlowRunRecord,
    HistoryError,
    LogRecord,
    TaskRunRecord,
    UnknownRunError,
)
from taskflow.history.urls import resolve_url
from taskflow.states import UNFINISHED_TYPES, StateType

__all__ = ["TASK_ROW_KEYS", "HistoryStore", "TaskBrief", "WriteBatch", "in_index_order"]

logger = logging.getLogger("taskflow.history")

_UNFINISHED = tuple(sorted(t.value for t in UNFINISHED_TYPES))
# Columns a later event of a task run overwrites (the rest keep their first value).
_TASK_UPDATES = ("state", "attempts", "message", "ended_at", "traceback",
                 "updated_at")
R = TypeVar("R")


@dataclass
class WriteBatch:
    """Changes written in one transaction, in this order.

    Attributes
    ----------
    started : list of dict
        New flow-run rows (every column of ``taskflow_flow_runs`` but the optional ones).
    tasks : list of dict
        Task-run rows to upsert; each has every key of :data:`TASK_ROW_KEYS`.
    logs : list of dict
        Log rows to insert.
    attempts : list of dict
        Rows of ``taskflow_task_attempts`` (an attempt already recorded is kept).
    finished : list of dict
        Flow-run updates: ``id``, ``state``, ``message``, ``ended_at``, and optionally
        ``unfinished_tasks``: the state given to its task runs that had not finished.
    heartbeats : list of str
        Run ids whose heartbeat becomes now.
    """

    started: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.started or self.tasks or self.logs or self.finished or self.heartbeats
                    or self.attempts)


class TaskBrief(NamedTuple):
    """What :meth:`HistoryStore.task_briefs` gives of a task run."""

    name: str
    state: str
    attempts: int
    map_index: int | None
    message: str


TASK_ROW_KEYS = ("run_id", "name", "seq", "key", "map_index", "state", "attempts", "message",
                 "started_at", "ended_at", "worker", "traceback", "result_location", "updated_at")


def _engine_url(url: str) -> URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise HistoryError(
            f"taskflow.history.url {url!r} is not a database URL; use e.g. "
            "'sqlite:////path/to/history.db' or 'postgresql://user:password@host/db'",
            url=url,
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = url.database or ""
    memory = database in ("", ":memory:")
    if not memory:
        os.makedirs(os.path.dirname(os.path.abspath(database)) or ".", exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy says when transactions begin, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")  # first, as lite.py does
        if not memory:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as e:  # another process holds the file: it
                if "locked" not in str(e):  # keeps the WAL mode it was made with
                    raise
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock at once (waiting up to the busy timeout): a
        # deferred transaction that reads and then writes can fail at once under WAL,
        # and table creation must be one transaction when two processes open a file.
        write = conn.get_execution_options().get("taskflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def insert_row(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT that knows ON CONFLICT."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    raise HistoryError(f"the run history supports SQLite and PostgreSQL, not {name}")


@functools.cache
def _field_names(cls: Any) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def to_record(cls: type[R], row: Any) -> R:
    names = _field_names(cls)  # read per row by the streams of a million: asked once
    return cls(**{k: v for k, v in row._mapping.items() if k in names})


class HistoryStore:
    """The run history in one database.

    Parameters
    ----------
    url : str, optional
        An SQLAlchemy URL (default: ``taskflow.history.url``, else a SQLite file
        under the user's data directory).  ``postgresql://`` URLs use psycopg 3.
    stale_after : float or str, optional
        Runs still RUNNING whose heartbeat is older than this (seconds, or a
        Dask time string like ``"60s"``) are marked CRASHED on opening (default:
        ``taskflow.history.stale-after``).

    Raises
    ------
    HistoryError
        When the database cannot be reached or was written by a newer taskflow.
    """

    def __init__(self, url: str | None = None, *, stale_after: float | str | None = None) -> None:
        self.url = resolve_url(url)
        parsed = _engine_url(self.url)
        self.display_url = parsed.render_as_string(hide_password=True)
        self.engine = _make_engine(parsed)
        self._writes = self.engine.execution_options(taskflow_write=True)
        try:
            try:
                with self._writes.begin() as conn:
                    version = schema.create(conn)
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # PostgreSQL: another process created the tables between our check and
                # our CREATE: look again (a real error raises again).
                with self._writes.begin() as conn:
                    version = schema.create(conn)
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            raise HistoryError(
                f"cannot open the run history at {self.display_url}: {_reason(e)}. "
                "Check taskflow.history.url (env DASK_TASKFLOW__HISTORY__URL), or turn "
                "history off with taskflow.history.enabled: false",
                url=self.display_url,
            ) from e
        if version > schema.SCHEMA_VERSION:
            self.engine.dispose()
            raise HistoryError(
                f"the run history at {self.display_url} has schema version {version}, newer "
                f"than this taskflow understands ({schema.SCHEMA_VERSION}); upgrade taskflow",
                url=self.display_url,
            )
        if stale_after is None:
            stale_after = config.get("history.stale-after")
        self.mark_crashed(dask.utils.parse_timedelta(stale_after))

    def __repr__(self) -> str:
        return f"<HistoryStore {self.display_url}>"

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> None:
        """Apply ``batch`` in one transaction."""
        if not batch:
            return
        now = time.time()
        fr, tr = schema.flow_runs, schema.task_runs
        with self._writes.begin() as conn:
            if batch.started:
                stmt = insert_row(conn, fr)
                stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, batch.started)
            if batch.tasks:
                stmt = insert_row(conn, tr)
                ex = stmt.excluded
                updates: dict[str, Any] = {c: ex[c] for c in _TASK_UPDATES}
                updates["started_at"] = sa.func.coalesce(ex.started_at, tr.c.started_at)
                updates["worker"] = sa.func.coalesce(sa.func.nullif(ex.worker, ""), tr.c.worker)
                updates["result_location"] = sa.func.coalesce(ex.result_location,
                                                              tr.c.result_location)
                stmt = stmt.on_conflict_do_update(index_elements=["run_id", "name"], set_=updates)
                conn.execute(stmt, batch.tasks)
            if batch.attempts:
                stmt = insert_row(conn, schema.task_attempts).on_conflict_do_nothing(
                    index_elements=["run_id", "name", "attempt"])
                conn.execute(stmt, batch.attempts)
            if batch.logs:
                conn.execute(schema.logs.insert(), batch.logs)
            for row in batch.finished:
                conn.execute(
                    fr.update().where(fr.c.id == row["id"]).values(
                        state=row["state"], message=row["message"], ended_at=row["ended_at"],
                        heartbeat=now,
                    )
                )
                if row.get("unfinished_tasks"):
                    conn.execute(
                        tr.update().where(tr.c.run_id == row["id"], tr.c.state.in_(_UNFINISHED))
                        .values(state=row["unfinished_tasks"], message=row["message"],
                                ended_at=row["ended_at"], updated_at=now)
                    )
            if batch.heartbeats:
                conn.execute(
                    fr.update()
                    .where(fr.c.id.in_(batch.heartbeats), fr.c.state == StateType.RUNNING.value)
                    .values(heartbeat=now)
                )

    def mark_crashed(self, stale_after: float, reason: str | None = None,
                     run_ids: Iterable[str] | None = None) -> list[str]:
        """Mark CRASHED the RUNNING runs whose heartbeat is older than ``stale_after`` s.

        With ``run_ids``, only those runs (whatever their heartbeat age when
        ``stale_after`` is 0).  Their unfinished task runs become CRASHED too.
        Returns the ids of the runs marked.
        """
        fr, tr = schema.flow_runs, schema.task_runs
        now = time.time()
        cutoff = now - stale_after
        query = sa.select(fr.c.id, fr.c.heartbeat, fr.c.host, fr.c.pid).where(
            fr.c.state.in_(_UNFINISHED),
            sa.or_(fr.c.heartbeat.is_(None), fr.c.heartbeat <= cutoff),
        )
        if run_ids is not None:
            query = query.where(fr.c.id.in_(list(run_ids)))
        marked = []
        with self._writes.begin() as conn:
            for run_id, beat, host, pid in conn.execute(query).all():
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(beat)) if beat else "never"
                message = reason or (
                    f"the process that ran this flow (pid {pid} on {host}) stopped: "
                    f"no heartbeat since {when}"
                )
                done = conn.execute(
                    fr.update().where(fr.c.id == run_id, fr.c.state.in_(_UNFINISHED))
                    .values(state=StateType.CRASHED.value, message=message,
                            ended_at=beat if beat else now)
                ).rowcount
                if not done:
                    continue  # it finished meanwhile
                conn.execute(
                    tr.update().where(tr.c.run_id == run_id, tr.c.state.in_(_UNFINISHED))
                    .values(state=StateType.CRASHED.value, message="its flow run crashed",
                            updated_at=now)
                )
                marked.append(run_id)
        if marked:
            logger.warning("run history: marked %d flow run(s) CRASHED (%s)", len(marked),
                           ", ".join(r[:8] for r in marked))
        return marked

    # -- reading ------------------------------------------------------------------------
    def runs(self, flow: str | None = None, state: str | None = None,
             limit: int | None = 20, offset: int = 0) -> list[FlowRunRecord]:
        """Recent flow runs, newest first, optionally of one flow and in one state.

        ``offset`` skips that many (pages); the query is served by an index on
        ``started_at`` (with the flow name or the state in front when filtered).
        """
        fr = schema.flow_runs
        query = sa.select(fr).order_by(fr.c.started_at.desc(), fr.c.id)
        if flow is not None:
            query = query.where(fr.c.flow_name == flow)
        if state is not None:
            query = query.where(fr.c.state == state.upper())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.engine.connect() as conn:
            return [to_record(FlowRunRecord, row) for row in conn.execute(query)]

    def flow_names(self) -> list[str]:
        """Every flow name that has runs, by name (an index scan)."""
        fr = schema.flow_runs
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(fr.c.flow_name).distinct()
                                     .order_by(fr.c.flow_name)).scalars())

    def task_briefs(self, run_id: str) -> list[TaskBrief]:
        """The task runs of a run, only name, state, attempts, map index and message
        (cheap for a page that follows a big run), in the order of :meth:`task_runs`."""
        tr = schema.task_runs
        query = (sa.select(tr.c.name, tr.c.state, tr.c.attempts, tr.c.map_index, tr.c.message)
                 .where(tr.c.run_id == run_id).order_by(tr.c.seq, tr.c.name))
        with self.engine.connect() as conn:
            return [TaskBrief(*row) for row in conn.execute(query)]

    def task_counts(self, run_id: str) -> dict[str, int]:
        """How many task runs of a run are in each state."""
        tr = schema.task_runs
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(tr.c.state, sa.func.count())
                                     .where(tr.c.run_id == run_id).group_by(tr.c.state)).all())

    def get_run(self, run_id: str) -> FlowRunRecord:
        """The flow run whose id is ``run_id`` or starts with it.

        Raises
        ------
        UnknownRunError
            When no run, or more than one, matches.
        """
        fr = schema.flow_runs
        prefix = run_id.strip().lower()
        if not prefix:
            raise UnknownRunError("a run id is needed; `taskflow runs` lists recent runs")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(fr).where(fr.c.id == prefix)).all() or conn.execute(
                sa.select(fr).where(fr.c.id.startswith(prefix, autoescape=True)).limit(6)
            ).all()
        if not rows:
            raise UnknownRunError(
                f"no flow run with id {run_id!r} in the history at {self.display_url}; "
                "`taskflow runs` lists recent runs", run_id=run_id,
            )
        if len(rows) > 1:
            ids = ", ".join(r.id[:12] for r in rows[:5])
            raise UnknownRunError(
                f"run id {run_id!r} is ambiguous: it starts {ids}{', ...' if len(rows) > 5 else ''};"
                " give more characters", run_id=run_id,
            )
        return to_record(FlowRunRecord, rows[0])

    def task_runs(self, run_id: str, task: str | None = None) -> list[TaskRunRecord]:
        """The task runs of a run, in the order they first reported, mapped children
        together in index order (``load[2]`` before ``load[10]``) where the first of
        them reported.

        ``task`` keeps one task run, or, for a mapped task, it and its children.
        """
        tr = schema.task_runs
        query = sa.select(tr).where(tr.c.run_id == run_id).order_by(tr.c.seq, tr.c.name)
        if task is not None:
            query = query.where(_task_filter(tr.c.name, task))
        with self.engine.connect() as conn:
            return in_index_order([to_record(TaskRunRecord, row) for row in conn.execute(query)])

    def task_states(self, run_id: str) -> dict[str, str]:
        """Task-run name to its state (a :class:`~taskflow.states.StateType` value)."""
        tr = schema.task_runs
        with self.engine.connect() as conn:
            return dict(conn.execute(
                sa.select(tr.c.name, tr.c.state).where(tr.c.run_id == run_id)
            ).all())

    def task_attempts(self, run_id: str, task: str | None = None) -> list[AttemptRecord]:
        """The attempts of a run's task runs that raised, by task run then attempt.

        ``task`` as in :meth:`task_runs`.  A task run that succeeded at its first
        attempt has none; one retried twice and then failed has three.
        """
        ta = schema.task_attempts
        query = sa.select(ta).where(ta.c.run_id == run_id).order_by(ta.c.failed_at, ta.c.attempt)
        if task is not None:
            query = query.where(_task_filter(ta.c.name, task))
        with self.engine.connect() as conn:
            rows = [to_record(AttemptRecord, row) for row in conn.execute(query)]
        order = {t.name: i for i, t in enumerate(self.task_runs(run_id, task))}
        return sorted(rows, key=lambda a: (order.get(a.name, len(order)), a.attempt))

    def logs(self, run_id: str, task: str | None = None) -> list[LogRecord]:
        """Log records of a run in time order; ``task`` as in :meth:`task_runs`."""
        lg = schema.logs
        query = sa.select(lg).where(lg.c.run_id == run_id).order_by(lg.c.created, lg.c.id)
        if task is not None:
            query = query.where(_task_filter(lg.c.task, task))
        with self.engine.connect() as conn:
            return [to_record(LogRecord, row) for row in conn.execute(query)]


def in_index_order(records: list[TaskRunRecord]) -> list[TaskRunRecord]:
    """``records`` with each mapped task's children together, by index, where its first
    child stood (the rest keep their order).

    Examples
    --------
    >>> rs = [TaskRunRecord("r", n, map_index=i) for n, i in
    ...       [("load", None), ("load[10]", 10), ("x", None), ("load[2]", 2)]]
    >>> [r.name for r in in_index_order(rs)]
    ['load', 'load[2]', 'load[10]', 'x']
    """
    out: list[Any] = []
    groups: dict[str, list[TaskRunRecord]] = {}
    for r in records:
        if r.map_index is None:
            out.append(r)
            continue
        parent = r.name.rpartition("[")[0]
        group = groups.get(parent)
        if group is None:
            group = groups[parent] = []
            out.append(group)
        group.append(r)
    flat: list[TaskRunRecord] = []
    for item in out:
        if isinstance(item, list):
            flat.extend(sorted(item, key=lambda r: r.map_index))
        else:
            flat.append(item)
    return flat


def _task_filter(column: Any, task: str) -> Any:
    return sa.or_(column == task, column.startswith(task + "[", autoescape=True))


def _reason(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return text[0] if text else type(e).__name__
