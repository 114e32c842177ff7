"""A run's task runs, log records and retried attempts, read as streams.

A run of a million task runs (and as many log records) is never read whole:
each reader here is a generator that reads a chunk at a time, by keyset
(``seq``, ``map_index``, ``(created, id)``: the next chunk starts after the
last row seen, served by an index, so the thousandth chunk costs what the
first did), and holds one chunk at most.

* :func:`task_run_names` -- the names in the order of ``taskflow show``
  (:meth:`~taskflow.history.store.HistoryStore.task_runs`: the order they first
  reported, each mapped task's children together, by index, where the first
  of them reported);
* :func:`logs` -- log records, by task run in that order (each one's in time
  order; records of no recorded task run first) or in time order;
* :func:`retried_attempts` -- the attempts that raised and were retried, by
  task run in that order;
* :func:`log_total`, :func:`find_task` -- a count, and whether a name is one
  of the run's task runs (with the names near it when not).

Examples
--------
>>> import os, tempfile
>>> from taskflow.history.store import HistoryStore, WriteBatch
>>> store = HistoryStore("sqlite:///" + os.path.join(tempfile.mkdtemp(), "h.db"))
>>> row = dict(run_id="r1", key="", state="SUCCESS", attempts=1, message="", started_at=None,
...            ended_at=None, worker="", traceback=None, result_location=None, updated_at=0.0)
>>> rows = [dict(row, name="load", seq=0, map_index=None)] + [
...     dict(row, name=f"sq[{i}]", seq=1 + (i * 7) % 12, map_index=i) for i in range(12)]
>>> lines = [dict(run_id="r1", task=f"sq[{i}]", level=20, logger="", message=f"m{i}",
...               created=100.0 - i, worker="") for i in range(3)]
>>> store.write(WriteBatch(tasks=rows, logs=lines))
>>> list(task_run_names(store, "r1", chunk=5))[:4]
['load', 'sq[0]', 'sq[1]', 'sq[2]']
>>> [r.message for r in logs(store, "r1")], [r.message for r in logs(store, "r1", by_time=True)]
(['m0', 'm1', 'm2'], ['m2', 'm1', 'm0'])
>>> store.close()
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from taskflow.history import schema
from taskflow.history.records import AttemptRecord, LogRecord

if TYPE_CHECKING:
    from taskflow.history.store import HistoryStore

__all__ = ["TaskLookup", "find_task", "last_logs", "log_total", "logs", "retried_attempts",
           "task_run_names", "unsuccessful"]

CHUNK = 1000  # rows per query
_IN = 500  # names per IN (...) list
_TOGETHER = 5000  # log records of one chunk of task runs read in one query (else per task run)


def _parent(tr: Any) -> Any:
    """A mapped child's parent name (``sq`` of ``sq[12]``), as SQL."""
    return sa.func.substr(tr.c.name, 1, sa.func.length(tr.c.name)
                          - sa.func.length(sa.cast(tr.c.map_index, sa.String)) - 2)


def _named(column: Any, task: str) -> Any:
    return sa.or_(column == task, column.startswith(task + "[", autoescape=True))


def _record(cls: type, row: Any) -> Any:
    from taskflow.history.store import to_record

    return to_record(cls, row)


def task_run_names(store: HistoryStore, run_id: str, task: str | None = None,
                   chunk: int = CHUNK) -> Iterator[str]:
    """The names of ``run_id``'s task runs, in the order of ``taskflow show``.

    ``task`` keeps one task run, or, for a mapped task, it and its children.
    Reads ``chunk`` names at a time; holds one row per mapped task besides.
    """
    tr = schema.task_runs
    with store.engine.connect() as conn:
        q = (sa.select(_parent(tr).label("p"), sa.func.min(tr.c.seq), sa.func.max(tr.c.map_index))
             .where(tr.c.run_id == run_id, tr.c.map_index.is_not(None)).group_by("p"))
        if task is not None:  # only rows under that name (the primary key's range)
            q = q.where(tr.c.name.startswith(task + "[", autoescape=True))
        groups = sorted(((first, p, top) for p, first, top in conn.execute(q)
                         if task is None or p == task or p.startswith(task + "[")),
                        reverse=True)  # popped from the end: first reported first
    after: tuple[int, str] | None = None
    singles: list[tuple[int, str]] = []
    done = False
    while True:
        if not singles and not done:
            own: Any = tr.c.map_index.is_(None)
            if task is not None:  # a child named itself (sq[3]) stands alone
                kept = [p for _, p, _ in groups]
                own = sa.and_(_named(tr.c.name, task), sa.or_(own, _parent(tr).not_in(kept))
                              if kept else sa.true())
            q = (sa.select(tr.c.seq, tr.c.name).where(tr.c.run_id == run_id, own)
                 .order_by(tr.c.seq, tr.c.name).limit(chunk))
            if after is not None:
                q = q.where(tr.c.seq >= after[0], sa.or_(tr.c.seq > after[0],
                                                         tr.c.name > after[1]))
            with store.engine.connect() as conn:
                singles = [(seq, name) for seq, name in conn.execute(q)][::-1]
            done = len(singles) < chunk
            if singles:
                after = singles[0]
        if groups and (not singles or groups[-1][:2] <= singles[-1]):
            _, parent, top = groups.pop()
            yield from _children(store, run_id, parent, top, chunk)
        elif singles:
            yield singles.pop()[1]
        else:
            return


def _children(store: HistoryStore, run_id: str, parent: str, top: int,
              chunk: int) -> Iterator[str]:
    """The children of ``parent`` by index, ``chunk`` indexes at a time (a range of the
    (run, map index) index: the same plan for every chunk, on SQLite and PostgreSQL)."""
    tr = schema.task_runs
    for lo in range(0, top + 1, chunk):
        q = (sa.select(tr.c.name)
             .where(tr.c.run_id == run_id, tr.c.map_index >= lo, tr.c.map_index < lo + chunk,
                    _parent(tr) == parent)
             .order_by(tr.c.map_index))
        with store.engine.connect() as conn:
            yield from conn.execute(q).scalars().all()


def _batches(names: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _log_query(run_id: str, task: str | None, min_level: int) -> Any:
    lg = schema.logs
    q = sa.select(lg).where(lg.c.run_id == run_id)
    if task is not None:
        q = q.where(_named(lg.c.task, task))
    if min_level:
        q = q.where(lg.c.level >= min_level)
    return q


def _by_time(store: HistoryStore, query: Any, offset: int, chunk: int) -> Iterator[LogRecord]:
    """Records of ``query`` in time order, ``offset`` skipped, a chunk at a time."""
    lg = schema.logs
    after: tuple[float, int] | None = None
    while True:
        q = query.order_by(lg.c.created, lg.c.id).limit(chunk)
        if after is None:
            q = q.offset(offset) if offset else q
        else:
            q = q.where(lg.c.created >= after[0],  # a range the index seeks to, then the tie
                        sa.or_(lg.c.created > after[0], lg.c.id > after[1]))
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
        for row in rows:
            yield _record(LogRecord, row)
        if len(rows) < chunk:
            return
        after = (rows[-1].created, rows[-1].id)


def logs(store: HistoryStore, run_id: str, task: str | None = None, *, by_time: bool = False,
         offset: int = 0, min_level: int = 0, chunk: int = CHUNK) -> Iterator[LogRecord]:
    """The log records of ``run_id`` from the ``offset``-th, a chunk at a time.

    By task run in the order of ``taskflow show``, each one's records in time order
    (records naming no recorded task run first); with ``by_time``, one timeline.
    ``task`` as in :func:`task_run_names`; ``min_level`` keeps records at that
    level or above.  Skipping ``offset`` records reads counts, not the records.

    Raises
    ------
    ValueError
        When ``offset`` is negative.
    """
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, not {offset}")
    query = _log_query(run_id, task, min_level)
    if by_time:
        yield from _by_time(store, query, offset, chunk)
        return
    lg, tr = schema.logs, schema.task_runs
    known = sa.select(tr.c.name).where(tr.c.run_id == lg.c.run_id, tr.c.name == lg.c.task)
    stray = query.where(~known.exists())  # records of no recorded task run: first
    with store.engine.connect() as conn:
        strays = int(conn.execute(sa.select(sa.func.count()).select_from(stray.subquery()))
                     .scalar() or 0)
    if offset >= strays:
        offset -= strays
    else:
        yield from _by_time(store, stray, offset, chunk)
        offset = 0
    for names in _batches(task_run_names(store, run_id, task), _IN):
        with store.engine.connect() as conn:
            counts: dict[str, int] = dict(conn.execute(
                sa.select(lg.c.task, sa.func.count())
                .where(lg.c.run_id == run_id, lg.c.task.in_(names),
                       *([lg.c.level >= min_level] if min_level else []))
                .group_by(lg.c.task)).all())
        if not counts:
            continue
        total = sum(counts.values())
        if offset >= total:  # the whole chunk is skipped: nothing read but its counts
            offset -= total
            continue
        if total <= _TOGETHER:
            with store.engine.connect() as conn:
                rows = conn.execute(query.where(lg.c.task.in_(list(counts)))  # the (run,
                                    .order_by(lg.c.task, lg.c.created, lg.c.id)).all()  # task) index
            bucket: dict[str, list[Any]] = {}
            for row in rows:
                bucket.setdefault(row.task, []).append(row)
            for name in names:
                for row in bucket.get(name, ()):
                    if offset:
                        offset -= 1
                        continue
                    yield _record(LogRecord, row)
            continue
        for name in names:  # many records: each task run's, a chunk at a time
            n = counts.get(name, 0)
            if offset >= n:
                offset -= n
                continue
            yield from _by_time(store, query.where(lg.c.task == name), offset, chunk)
            offset = 0


def log_total(store: HistoryStore, run_id: str, task: str | None = None,
              min_level: int = 0) -> int:
    """How many log records ``run_id`` has (``task``, ``min_level`` as in :func:`logs`)."""
    q = _log_query(run_id, task, min_level).subquery()
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(q)).scalar() or 0)


def last_logs(store: HistoryStore, run_id: str, limit: int, min_level: int = 0) -> list[LogRecord]:
    """The ``limit`` latest log records of ``run_id`` (at ``min_level`` or above), oldest first."""
    lg = schema.logs
    q = _log_query(run_id, None, min_level).order_by(lg.c.created.desc(), lg.c.id.desc())
    with store.engine.connect() as conn:
        rows = conn.execute(q.limit(limit)).all()
    return [_record(LogRecord, r) for r in reversed(rows)]


def retried_attempts(store: HistoryStore, run_id: str,
                     task: str | None = None) -> Iterator[AttemptRecord]:
    """The attempts of ``run_id`` that raised and were retried, by task run in the order
    of ``taskflow show``, then by attempt (``task`` as in :func:`task_run_names`)."""
    ta = schema.task_attempts
    retried = [ta.c.run_id == run_id, ta.c.state == "RETRYING"]
    if task is not None:
        retried.append(_named(ta.c.name, task))
    with store.engine.connect() as conn:
        if not conn.execute(sa.select(ta.c.name).where(*retried).limit(1)).first():
            return  # none: the task runs are not walked
    for names in _batches(task_run_names(store, run_id, task), _IN):
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(ta).where(*retried, ta.c.name.in_(names))).all()
        order = {n: i for i, n in enumerate(names)}
        for row in sorted(rows, key=lambda r: (order[r.name], r.attempt)):
            yield _record(AttemptRecord, row)


class TaskLookup(NamedTuple):
    """What :func:`find_task` says of a name."""

    found: bool
    close: list[str]  # names like it (when not found)
    some: list[str]  # some of the run's task names, in order (when not found)
    total: int  # how many task runs are not mapped children


def find_task(store: HistoryStore, run_id: str, task: str, shown: int = 10) -> TaskLookup:
    """Whether ``task`` names a task run of ``run_id`` (or a mapped task's children),
    or has log records; when not, names like it and the first ``shown`` names."""
    tr, lg = schema.task_runs, schema.logs
    with store.engine.connect() as conn:
        if conn.execute(sa.select(tr.c.name).where(tr.c.run_id == run_id,
                                                   _named(tr.c.name, task)).limit(1)).first() \
                or conn.execute(sa.select(lg.c.id).where(lg.c.run_id == run_id,
                                                         _named(lg.c.task, task)).limit(1)).first():
            return TaskLookup(True, [], [], 0)
        own = tr.c.map_index.is_(None)
        total = int(conn.execute(sa.select(sa.func.count()).select_from(tr)
                                 .where(tr.c.run_id == run_id, own)).scalar() or 0)
        first = list(conn.execute(sa.select(tr.c.name).where(tr.c.run_id == run_id, own)
                                  .order_by(tr.c.seq).limit(1000)).scalars())
    return TaskLookup(False, difflib.get_close_matches(task, first, 3), first[:shown], total)


def unsuccessful(store: HistoryStore, run_id: str, limit: int = 10) -> list[Any]:
    """At most ``limit`` task runs of ``run_id`` that did not succeed, in report order."""
    from taskflow.history.records import TaskRunRecord

    tr = schema.task_runs
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(tr).where(tr.c.run_id == run_id,
                                                tr.c.state.not_in(["SUCCESS", "CACHED"]))
                            .order_by(tr.c.seq, tr.c.name).limit(limit)).all()
    return [_record(TaskRunRecord, r) for r in rows]
