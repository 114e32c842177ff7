"""The history's tables, in SQLAlchemy Core.

Four tables, each name prefixed ``taskflow_`` so the history can share a
database with other things:

``taskflow_flow_runs``
    one row per flow run: id, flow name, parameters (JSON text), state, message,
    times, heartbeat, executor, scheduler address, dashboard link, host, pid.
``taskflow_task_runs``
    one row per task run, keyed by run id and task-run name: Dask key, map
    index, state, attempts, times, worker, message, traceback, and a result
    location (filled when results are persisted).  ``seq`` keeps the order in
    which the run first reported each task run.
``taskflow_task_attempts``
    one row per attempt of a task run that raised, keyed by run id, task-run
    name and attempt number (1-based): the state it ended in (RETRYING for one
    that was retried, else the run's final FAILED or TIMED_OUT), the exception's
    type name, the message (``attempt 1 of 3 failed: ConnectionError: ...;
    retrying in 0.5 s``), the traceback (clipped to a few thousand characters),
    the worker, and when it failed.  Only ``attempts`` survives in
    ``taskflow_task_runs``; the reason of each attempt is here.
``taskflow_logs``
    log records of task runs.
``taskflow_served_flows``
    flows a ``taskflow serve`` process serves: name, target, schedule, the
    process (host, pid), its heartbeat, and the last due time it handled (so a
    restarted server knows which runs it missed).
``taskflow_run_requests``
    ad hoc runs asked of a serve process (``taskflow run NAME``): flow name,
    parameters, state (PENDING, STARTED, REFUSED), and the run id once started.
``taskflow_meta``
    the schema version.

Times are ``DOUBLE`` seconds since the epoch (what ``time.time()`` gives), the
same on SQLite and PostgreSQL.  :func:`create` makes whatever is missing, so a
fresh database needs no migration step (a table added later, like
``taskflow_task_attempts``, appears in an older database when it is next opened); a database written by a newer taskflow
(a higher schema version) is refused with a clear error rather than misread.
"""
from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.engine import Connection

__all__ = ["SCHEMA_VERSION", "create", "flow_runs", "logs", "meta", "metadata", "run_requests",
           "served_flows", "task_attempts", "task_runs"]

SCHEMA_VERSION = 1

metadata = MetaData()

flow_runs = Table(
    "taskflow_flow_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_name", String(255), nullable=False),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("state", String(32), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("started_at", Double),
    Column("ended_at", Double),
    Column("heartbeat", Double),
    Column("executor", String(255)),
    Column("address", String(255)),
    Column("dashboard_link", Text),
    Column("host", String(255)),
    Column("pid", Integer),
    Index("ix_taskflow_flow_runs_started", "started_at"),
    Index("ix_taskflow_flow_runs_flow", "flow_name", "started_at"),
    Index("ix_taskflow_flow_runs_state", "state"),
)

task_runs = Table(
    "taskflow_task_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("seq", Integer, nullable=False, default=0),
    Column("key", Text, nullable=False, default=""),
    Column("map_index", Integer),
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message", Text, nullable=False, default=""),
    Column("started_at", Double),
    Column("ended_at", Double),
    Column("worker", String(255), nullable=False, default=""),
    Column("traceback", Text),
    Column("result_location", Text),
    Column("updated_at", Double),
)

task_attempts = Table(
    "taskflow_task_attempts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("state", String(32), nullable=False),
    Column("exception_type", String(255)),
    Column("message", Text, nullable=False, default=""),
    Column("traceback", Text),
    Column("worker", String(255), nullable=False, default=""),
    Column("failed_at", Double),
)

logs = Table(
    "taskflow_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("task", String(512), nullable=False, default=""),
    Column("level", Integer, nullable=False),
    Column("logger", String(255), nullable=False, default=""),
    Column("message", Text, nullable=False),
    Column("created", Double, nullable=False),
    Column("worker", String(255), nullable=False, default=""),
    Index("ix_taskflow_logs_run", "run_id", "task", "created"),
)

served_flows = Table(
    "taskflow_served_flows",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("target", Text, nullable=False, default=""),
    Column("schedule", Text, nullable=False, default=""),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("host", String(255), nullable=False, default=""),
    Column("pid", Integer),
    Column("started_at", Double),
    Column("heartbeat", Double),
    Column("last_due", Double),
)

run_requests = Table(
    "taskflow_run_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_name", String(255), nullable=False),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("state", String(32), nullable=False),
    Column("run_id", String(64)),
    Column("message", Text, nullable=False, default=""),
    Column("requested_at", Double, nullable=False),
    Column("taken_at", Double),
    Index("ix_taskflow_run_requests_pending", "state", "flow_name"),
)

meta = Table(
    "taskflow_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def create(conn: Connection) -> int:
    """Create missing tables and record the schema version; return the stored version."""
    metadata.create_all(conn, checkfirst=True)
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    if row is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
    return int(row[0])
