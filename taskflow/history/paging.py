"""A page of a run's task runs, read from the history without loading the others.

A run of a million task runs cannot be listed by reading every row.  The order
of :meth:`~taskflow.history.store.HistoryStore.task_runs` (the order task runs
first reported, each mapped task's children together, by index, where the
first of them reported) is rebuilt from one grouped query: one group per
task run that is not a mapped child, one per mapped task's children, each
with its first report and its size.  Walking those groups finds which rows a
page holds; only those are read (children by index, with ``LIMIT``/``OFFSET``).

Examples
--------
>>> import os, tempfile, time
>>> from taskflow.history.store import HistoryStore, WriteBatch
>>> store = HistoryStore("sqlite:///" + os.path.join(tempfile.mkdtemp(), "h.db"))
>>> row = dict(run_id="r1", key="", state="SUCCESS", attempts=1, message="", started_at=None,
...            ended_at=None, worker="", traceback=None, result_location=None, updated_at=0.0)
>>> rows = [dict(row, name="load", seq=0, map_index=None)] + [
...     dict(row, name=f"sq[{i}]", seq=1 + (i * 7) % 12, map_index=i) for i in range(12)]
>>> store.write(WriteBatch(tasks=rows))
>>> page, total = task_runs_page(store, "r1", offset=2, limit=3)
>>> [t.name for t in page], total
(['sq[1]', 'sq[2]', 'sq[3]'], 13)
>>> store.close()
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from taskflow.history import schema
from taskflow.history.records import AttemptRecord, TaskRunRecord

if TYPE_CHECKING:
    from taskflow.history.store import HistoryStore

__all__ = ["attempts_of", "overview", "task_runs_page", "task_run_total"]

_CHUNK = 500  # names per IN (...) list


class _Group(NamedTuple):
    name: str  # a task run's name, or a mapped task's name for its children
    children: bool
    first: int  # the seq of its first report
    size: int


def _record(row: Any) -> TaskRunRecord:
    from taskflow.history.store import to_record

    return to_record(TaskRunRecord, row)


def _groups(conn: Any, run_id: str) -> list[_Group]:
    tr = schema.task_runs
    is_child = tr.c.map_index.is_not(None)
    parent = sa.case(
        (is_child, sa.func.substr(tr.c.name, 1, sa.func.length(tr.c.name)
                                  - sa.func.length(sa.cast(tr.c.map_index, sa.String)) - 2)),
        else_=tr.c.name,
    ).label("grp")
    kids = sa.case((is_child, 1), else_=0).label("kids")
    query = (sa.select(parent, kids, sa.func.min(tr.c.seq), sa.func.count())
             .where(tr.c.run_id == run_id).group_by(parent, kids))
    found = [_Group(name, bool(k), first, size) for name, k, first, size in conn.execute(query)]
    return sorted(found, key=lambda g: (g.first, g.name))


def task_runs_page(store: HistoryStore, run_id: str, offset: int = 0,
                   limit: int | None = None, nodes: list[str] | None = None
                   ) -> tuple[list[TaskRunRecord], int]:
    """``limit`` task runs of ``run_id`` from ``offset`` (None: to the end), in the
    order of ``task_runs``, and how many the run has.

    With ``nodes`` (the graph's node names, in order), in graph order instead:
    each node's own task run, then its children by index; task runs of no node
    last, in the order they first reported (as the server's run page lists them).
    ``run_id`` is a whole id (see :meth:`~taskflow.history.store.HistoryStore.get_run`).

    Raises
    ------
    ValueError
        When ``offset`` is negative or ``limit`` is below 1.
    """
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, not {offset}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, not {limit}")
    tr = schema.task_runs
    with store.engine.connect() as conn:
        groups = _groups(conn, run_id)
        if nodes is not None:
            at_node = {n: i for i, n in enumerate(nodes)}
            last = len(at_node)
            groups.sort(key=lambda g: (at_node[g.name], int(g.children), 0, "") if g.name in at_node
                        else (last, 0, g.first, g.name))
        total = sum(g.size for g in groups)
        end = total if limit is None else min(total, offset + limit)
        parts: list[tuple[_Group, int, int]] = []  # group, skip, take
        at = 0
        for g in groups:
            lo, hi = max(offset, at), min(end, at + g.size)
            if lo < hi:
                parts.append((g, lo - at, hi - lo))
            at += g.size
            if at >= end:
                break
        singles = [g.name for g, _, _ in parts if not g.children]
        by_name: dict[str, TaskRunRecord] = {}
        for i in range(0, len(singles), _CHUNK):
            chunk = singles[i:i + _CHUNK]
            rows = conn.execute(sa.select(tr).where(tr.c.run_id == run_id, tr.c.name.in_(chunk),
                                                    tr.c.map_index.is_(None)))
            by_name.update((r.name, _record(r)) for r in rows)
        out: list[TaskRunRecord] = []
        for g, skip, take in parts:
            if not g.children:
                if g.name in by_name:
                    out.append(by_name[g.name])
                continue
            query = (sa.select(tr).where(tr.c.run_id == run_id, tr.c.map_index.is_not(None),
                                         tr.c.name.startswith(g.name + "[", autoescape=True))
                     .order_by(tr.c.map_index).offset(skip).limit(take))
            out.extend(_record(r) for r in conn.execute(query))
    return out, total


def attempts_of(store: HistoryStore, run_id: str, names: list[str]) -> list[AttemptRecord]:
    """The attempts that raised of the task runs ``names`` (in that order, then by attempt)."""
    from taskflow.history.store import to_record

    ta = schema.task_attempts
    found: list[AttemptRecord] = []
    with store.engine.connect() as conn:
        for i in range(0, len(names), _CHUNK):
            rows = conn.execute(sa.select(ta).where(ta.c.run_id == run_id,
                                                    ta.c.name.in_(names[i:i + _CHUNK])))
            found.extend(to_record(AttemptRecord, r) for r in rows)
    order = {n: i for i, n in enumerate(names)}
    return sorted(found, key=lambda a: (order.get(a.name, len(order)), a.attempt))


def task_run_total(store: HistoryStore, run_id: str) -> int:
    """How many task runs ``run_id`` has (one count, no rows read)."""
    tr = schema.task_runs
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tr)
                                .where(tr.c.run_id == run_id)).scalar() or 0)


def overview(store: HistoryStore, run_id: str) -> tuple[list[Any], dict[str, dict[str, int]]]:
    """A run's task runs that are not mapped children (name, state, attempts,
    map_index, message), and each mapped task's children counted by state."""
    from taskflow.history.store import TaskBrief

    tr = schema.task_runs
    with store.engine.connect() as conn:
        own = [TaskBrief(*row) for row in conn.execute(
            sa.select(tr.c.name, tr.c.state, tr.c.attempts, tr.c.map_index, tr.c.message)
            .where(tr.c.run_id == run_id, tr.c.map_index.is_(None)).order_by(tr.c.seq, tr.c.name))]
        parent = sa.func.substr(tr.c.name, 1, sa.func.length(tr.c.name)
                                - sa.func.length(sa.cast(tr.c.map_index, sa.String)) - 2)
        counts: dict[str, dict[str, int]] = {}
        for name, state, n in conn.execute(
                sa.select(parent, tr.c.state, sa.func.count())
                .where(tr.c.run_id == run_id, tr.c.map_index.is_not(None))
                .group_by(parent, tr.c.state)):
            counts.setdefault(name, {})[state] = int(n)
    return own, counts


def result_locations(store: HistoryStore, run_id: str, limit: int) -> list[tuple[str, str]]:
    """``(task run, location)`` of at most ``limit`` task runs that stored a result."""
    tr = schema.task_runs
    with store.engine.connect() as conn:
        return [(n, loc) for n, loc in conn.execute(
            sa.select(tr.c.name, tr.c.result_location)
            .where(tr.c.run_id == run_id, tr.c.result_location.is_not(None))
            .order_by(tr.c.seq, tr.c.name).limit(limit))]
