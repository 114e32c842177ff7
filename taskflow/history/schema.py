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
``taskflow_serve_processes``
    every serve process serving a flow (several may serve one flow for ad hoc runs),
    with its heartbeat: the agents.
``taskflow_run_requests``
    ad hoc runs asked of a serve process (``taskflow run NAME``, the server's Quick
    Run and Resume): flow name, parameters, the run to resume, state (PENDING,
    STARTED, REFUSED, CANCELLED), and the run id once started.
``taskflow_cancel_requests``
    runs someone asked to cancel (``taskflow cancel``, the server's Cancel): the
    serve process running the run takes the request and cancels it.
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
    inspect,
    select,
)
from sqlalchemy.engine import Connection

__all__ = ["SCHEMA_VERSION", "cancel_requests", "create", "flow_runs", "logs", "meta",
           "metadata", "run_requests", "serve_processes", "served_flows", "task_attempts",
           "task_runs"]

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
    # The flow's graph (JSON: nodes, edges, reference tasks), for schematics; added in
    # place to older files (see _ADDED).
    Column("graph", Text),
    Index("ix_taskflow_flow_runs_started", "started_at"),
    Index("ix_taskflow_flow_runs_flow", "flow_name", "started_at"),
    Index("ix_taskflow_flow_runs_state", "state"),
    Index("ix_taskflow_flow_runs_state_started", "state", "started_at"),
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
    Index("ix_taskflow_task_runs_seq", "run_id", "seq"),
    # A run's own task runs by seq (map_index IS NULL), a mapped task's children by
    # index: what the readers that page and stream a wide run walk.
    Index("ix_taskflow_task_runs_map", "run_id", "map_index", "seq"),
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
    Index("ix_taskflow_logs_time", "run_id", "created"),
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
    # The flow's parameters as JSON: [{name, type, schema, default, required}] (type as written, schema: its JSON schema).
    Column("signature", Text),
    # When its next scheduled run is due (epoch seconds), as its server last computed it.
    Column("next_due", Double),
)

serve_processes = Table(
    "taskflow_serve_processes",
    metadata,
    Column("flow_name", String(255), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("pid", Integer, primary_key=True, autoincrement=False),
    Column("started_at", Double),
    Column("heartbeat", Double),
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
    # A run whose persisted results the new run reuses (Resume).
    Column("resume", String(64)),
    Index("ix_taskflow_run_requests_pending", "state", "flow_name"),
    Index("ix_taskflow_run_requests_run", "run_id"),
)

cancel_requests = Table(
    "taskflow_cancel_requests",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("reason", Text, nullable=False, default=""),
    Column("requested_at", Double, nullable=False),
    Column("taken_at", Double),
)

meta = Table(
    "taskflow_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# Columns added after version 1 files were written: nullable, added in place when missing,
# so a file written by an older taskflow stays readable (and older ones ignore them).
_ADDED = [(flow_runs, "graph"), (served_flows, "signature"), (served_flows, "next_due"),
          (run_requests, "resume")]


def _add_missing_columns(conn: Connection) -> None:
    for table in metadata.sorted_tables:  # indexes added since (create_all skips them)
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    inspector = inspect(conn)
    for table, name in _ADDED:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        if name not in have:
            column = table.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}')


def create(conn: Connection) -> int:
    """Create missing tables and columns, record the schema version; return the stored version."""
    metadata.create_all(conn, checkfirst=True)
    _add_missing_columns(conn)
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    if row is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
    return int(row[0])
