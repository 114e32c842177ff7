"""What serve processes share through the history: the flows they serve, and run requests.

A ``taskflow serve`` process registers each flow it serves (name, schedule,
host and pid, a heartbeat) and the last due time it handled, so a restarted
server knows which runs it missed.  ``taskflow run NAME`` asks for an ad hoc
run by adding a *run request*; the serve process serving NAME claims it
(atomically: two servers never both take one), starts the run and writes the
run id back, and the requester follows the run in the history like any other.

The history database is the only channel: a serve process in a container and a
person's laptop need nothing but the same ``taskflow.history.url``.

Examples
--------
>>> import os, tempfile
>>> from taskflow.history.store import HistoryStore
>>> store = HistoryStore("sqlite:///" + os.path.join(tempfile.mkdtemp(), "h.db"))
>>> register(store, [{"name": "etl", "target": "flows.py:etl", "schedule": "every 15m"}])
>>> [f.name for f in served_flows(store)]
['etl']
>>> request = request_run(store, "etl", {"n": 3})
>>> [(r.id == request, r.parameters_dict) for r, _ in claim(store, ["etl"], lambda: "r1")]
[(True, {'n': 3})]
>>> get_request(store, request).run_id
'r1'
>>> store.close()
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from taskflow.history import schema
from taskflow.history.records import HistoryError
from taskflow.history.store import HistoryStore, insert_row, to_record
from taskflow.parameters import json_default

__all__ = [
    "RunRequestRecord", "ServeProcessRecord", "ServedFlowRecord", "beat", "cancel_run",
    "cancels_for", "claim", "get_request", "refuse", "register", "request_for_run",
    "request_run", "serve_processes", "served_flows", "set_last_due", "take_cancel",
    "unregister",
]

PENDING, STARTED, REFUSED, CANCELLED = "PENDING", "STARTED", "REFUSED", "CANCELLED"
_HOST = socket.gethostname()


@dataclass(frozen=True)
class ServedFlowRecord:
    """A flow some serve process serves (or served, when its heartbeat is old)."""

    name: str
    target: str
    schedule: str
    parameters: str
    host: str
    pid: int | None
    started_at: float | None
    heartbeat: float | None
    last_due: float | None
    signature: str | None = None
    next_due: float | None = None

    @property
    def signature_list(self) -> list[dict[str, Any]]:
        """The flow's parameters: ``{"name", "type", "schema", "default", "required"}`` each.

        ``schema`` is the JSON schema of the parameter's type hint (see
        :mod:`taskflow.parameter_schemas`); None takes any value, as do rows written
        by a taskflow that recorded only the type's name.
        """
        value = json.loads(self.signature) if self.signature else []
        if not isinstance(value, list):
            return []
        return [{"type": "", "default": None, "required": False, **p, "schema": p.get("schema")}
                for p in value if isinstance(p, dict) and "name" in p]

    def alive(self, within: float, now: float | None = None) -> bool:
        """Whether its server's heartbeat is at most ``within`` seconds old."""
        now = time.time() if now is None else now
        return self.heartbeat is not None and now - self.heartbeat <= within


@dataclass(frozen=True)
class RunRequestRecord:
    """An ad hoc run asked of the serve process serving ``flow_name``."""

    id: str
    flow_name: str
    parameters: str
    state: str
    run_id: str | None
    message: str
    requested_at: float
    taken_at: float | None
    resume: str | None = None

    @property
    def parameters_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.parameters or "{}"))


@dataclass(frozen=True)
class ServeProcessRecord:
    """One serve process serving one flow (an agent), with its heartbeat."""

    flow_name: str
    host: str
    pid: int
    started_at: float | None
    heartbeat: float | None

    def alive(self, within: float, now: float | None = None) -> bool:
        """Whether its heartbeat is at most ``within`` seconds old."""
        now = time.time() if now is None else now
        return self.heartbeat is not None and now - self.heartbeat <= within


# -- the serve process's side -----------------------------------------------------------
def register(store: HistoryStore, flows: Iterable[Mapping[str, Any]],
             alive_within: float | None = None) -> None:
    """Record that this process serves ``flows`` (dicts: name, target, schedule,
    parameters, signature, scheduled).

    Several processes may serve one flow for ad hoc runs (each request is claimed
    by one of them); a flow with a schedule (``scheduled`` true) that another live
    process serves (heartbeat within ``alive_within`` s) is refused with
    :class:`HistoryError`, since both would start its due runs.  The last due time
    of an earlier server of the same flow is kept.
    """
    sf, sp = schema.served_flows, schema.serve_processes
    now = time.time()
    flows = list(flows)
    rows = [{"name": f["name"], "target": f.get("target", ""), "schedule": f.get("schedule", ""),
             "parameters": json.dumps(f.get("parameters") or {}, default=json_default),
             "signature": json.dumps(f.get("signature") or [], default=json_default),
             "host": _HOST, "pid": os.getpid(), "started_at": now, "heartbeat": now}
            for f in flows]
    with store._writes.begin() as conn:
        if alive_within is not None:
            names = [f["name"] for f in flows if f.get("scheduled", True)]
            for other in conn.execute(sa.select(sf).where(sf.c.name.in_(names))).all():
                rec = to_record(ServedFlowRecord, other)
                if rec.alive(alive_within, now) and (rec.host, rec.pid) != (_HOST, os.getpid()):
                    raise HistoryError(
                        f"flow {rec.name!r} is already served by pid {rec.pid} on {rec.host} "
                        f"(heartbeat {now - (rec.heartbeat or now):.0f} s ago); stop that "
                        "server first, or serve the flow under another name",
                        flow=rec.name,
                    )
        stmt = insert_row(conn, sf)
        updates = {c: stmt.excluded[c] for c in ("target", "schedule", "parameters", "signature",
                                                 "host", "pid", "started_at", "heartbeat")}
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=updates), rows)
        # serve processes of these flows that stopped (or died long ago) are forgotten
        forget = now - 10 * alive_within if alive_within is not None else now - 86400.0
        conn.execute(sp.delete().where(
            sp.c.flow_name.in_([r["name"] for r in rows]),
            sa.or_(sp.c.heartbeat.is_(None), sp.c.heartbeat < forget)))
        agents = insert_row(conn, sp)
        conn.execute(agents.on_conflict_do_update(
            index_elements=["flow_name", "host", "pid"],
            set_={"started_at": agents.excluded.started_at, "heartbeat": agents.excluded.heartbeat},
        ), [{"flow_name": r["name"], "host": _HOST, "pid": os.getpid(), "started_at": now,
             "heartbeat": now} for r in rows])


def beat(store: HistoryStore, names: Iterable[str]) -> None:
    """Refresh the heartbeat of the flows this process serves."""
    sf, sp = schema.served_flows, schema.serve_processes
    names, now = list(names), time.time()
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name.in_(names), sf.c.host == _HOST,
                                       sf.c.pid == os.getpid()).values(heartbeat=now))
        conn.execute(sp.update().where(sp.c.flow_name.in_(names), sp.c.host == _HOST,
                                       sp.c.pid == os.getpid()).values(heartbeat=now))


def set_last_due(store: HistoryStore, name: str, due: float | None,
                 next_due: float | None = None) -> None:
    """Record that the run due at ``due`` (epoch seconds) was handled, and when the
    next one is due (``due`` None: only the next due time)."""
    sf = schema.served_flows
    values: dict[str, Any] = {"next_due": next_due}
    if due is not None:
        values["last_due"] = due
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name == name).values(**values))


def unregister(store: HistoryStore, names: Iterable[str]) -> None:
    """This process stopped serving ``names``: their heartbeat ends (last due time kept)."""
    sf, sp = schema.served_flows, schema.serve_processes
    names = list(names)
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name.in_(names), sf.c.host == _HOST,
                                       sf.c.pid == os.getpid()).values(heartbeat=None))
        conn.execute(sp.update().where(sp.c.flow_name.in_(names), sp.c.host == _HOST,
                                       sp.c.pid == os.getpid()).values(heartbeat=None))


def claim(store: HistoryStore, names: Iterable[str],
          new_run_id: Callable[[], str]) -> list[tuple[RunRequestRecord, str]]:
    """Take the pending requests for ``names``, oldest first: ``(request, run id)`` each.

    Each request is taken by one process only: a conditional update (``... WHERE
    state = 'PENDING'``) that only one transaction can make; on PostgreSQL the
    second waits for the first's row lock, then sees the row taken and updates
    nothing.  A request that named its run id up front keeps it.
    """
    rr = schema.run_requests
    names = list(names)
    taken = []
    with store._writes.begin() as conn:
        pending = conn.execute(
            sa.select(rr).where(rr.c.state == PENDING, rr.c.flow_name.in_(names))
            .order_by(rr.c.requested_at)
        ).all()
        for row in pending:
            run_id = row.run_id or new_run_id()
            done = conn.execute(
                rr.update().where(rr.c.id == row.id, rr.c.state == PENDING)
                .values(state=STARTED, run_id=run_id, taken_at=time.time())
            ).rowcount
            if done:
                taken.append((to_record(RunRequestRecord, row), run_id))
    return taken


def refuse(store: HistoryStore, request_id: str, message: str) -> None:
    """A taken request could not start (bad parameters...): say why."""
    rr = schema.run_requests
    with store._writes.begin() as conn:
        conn.execute(rr.update().where(rr.c.id == request_id)
                     .values(state=REFUSED, message=message))


# -- the requester's side ----------------------------------------------------------------
def served_flows(store: HistoryStore) -> list[ServedFlowRecord]:
    """Every flow a serve process serves or served, by name.

    A flow's heartbeat is the newest of its serve processes'.
    """
    sf, sp = schema.served_flows, schema.serve_processes
    with store.engine.connect() as conn:
        flows = [to_record(ServedFlowRecord, r) for r in conn.execute(sa.select(sf).order_by(sf.c.name))]
        beats = dict(conn.execute(sa.select(sp.c.flow_name, sa.func.max(sp.c.heartbeat))
                                  .group_by(sp.c.flow_name)).all())
    return [replace(f, heartbeat=beats[f.name]) if f.name in beats else f for f in flows]


def serve_processes(store: HistoryStore, flow_name: str | None = None) -> list[ServeProcessRecord]:
    """The serve processes that serve (or served) flows, newest heartbeat first."""
    sp = schema.serve_processes
    query = sa.select(sp).order_by(sp.c.flow_name, sp.c.heartbeat.desc())
    if flow_name is not None:
        query = query.where(sp.c.flow_name == flow_name)
    with store.engine.connect() as conn:
        return [to_record(ServeProcessRecord, r) for r in conn.execute(query)]


def request_run(store: HistoryStore, flow_name: str, parameters: Mapping[str, Any],
                resume: str | None = None, run_id: str | None = None) -> str:
    """Ask a serve process serving ``flow_name`` for a run; return the request's id.

    ``resume``: the id of a finished run whose persisted results the new run
    reuses.  ``run_id``: the id the run will have (so the requester can link to
    it before any serve process took the request).
    """
    request_id = uuid.uuid4().hex
    with store._writes.begin() as conn:
        conn.execute(schema.run_requests.insert().values(
            id=request_id, flow_name=flow_name, parameters=json.dumps(dict(parameters)),
            state=PENDING, message="", requested_at=time.time(), resume=resume, run_id=run_id,
        ))
    return request_id


def request_for_run(store: HistoryStore, run_id: str) -> RunRequestRecord | None:
    """The request that asked for the run ``run_id`` (whole, or a unique prefix), if any."""
    rr = schema.run_requests
    prefix = run_id.strip().lower()
    if not prefix:
        return None
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(rr).where(rr.c.run_id == prefix)).all() or conn.execute(
            sa.select(rr).where(rr.c.run_id.startswith(prefix, autoescape=True)).limit(2)).all()
    return to_record(RunRequestRecord, rows[0]) if len(rows) == 1 else None


# -- cancelling ---------------------------------------------------------------------------
def cancel_run(store: HistoryStore, run_id: str, reason: str = "cancelled on request") -> str:
    """Ask for run ``run_id`` to be cancelled; say what happens.

    A run still waiting for a serve process never starts (its request ends
    CANCELLED): returns ``"request"``.  Otherwise a cancel request is recorded,
    which the process running the run (a serve process, or any other: its history
    recorder looks, see :func:`cancels_for`) takes and carries out: returns ``"run"``.
    """
    rr, cr = schema.run_requests, schema.cancel_requests
    with store._writes.begin() as conn:
        done = conn.execute(rr.update().where(rr.c.run_id == run_id, rr.c.state == PENDING)
                            .values(state=CANCELLED, message=reason, taken_at=time.time())).rowcount
        if done:
            return "request"
        stmt = insert_row(conn, cr).on_conflict_do_nothing(index_elements=["run_id"])
        conn.execute(stmt, [{"run_id": run_id, "reason": reason, "requested_at": time.time()}])
    return "run"


def cancels_for(store: HistoryStore, run_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Cancel requests not taken yet for ``run_ids``: ``(run id, reason)`` each."""
    cr = schema.cancel_requests
    run_ids = list(run_ids)
    if not run_ids:
        return []
    with store.engine.connect() as conn:
        return [(r.run_id, r.reason) for r in conn.execute(
            sa.select(cr.c.run_id, cr.c.reason).where(cr.c.run_id.in_(run_ids),
                                                      cr.c.taken_at.is_(None)))]


def take_cancel(store: HistoryStore, run_id: str) -> None:
    """The cancel request of ``run_id`` was carried out."""
    cr = schema.cancel_requests
    with store._writes.begin() as conn:
        conn.execute(cr.update().where(cr.c.run_id == run_id).values(taken_at=time.time()))


def get_request(store: HistoryStore, request_id: str) -> RunRequestRecord:
    rr = schema.run_requests
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(rr).where(rr.c.id == request_id)).first()
    if row is None:
        raise HistoryError(f"no run request {request_id!r} in the history at {store.display_url}",
                           request=request_id)
    return to_record(RunRequestRecord, row)
