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
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from taskflow.history import schema
from taskflow.history.records import HistoryError
from taskflow.history.store import HistoryStore, insert_row, to_record

__all__ = [
    "RunRequestRecord", "ServedFlowRecord", "beat", "claim", "get_request", "refuse",
    "register", "request_run", "served_flows", "set_last_due", "unregister",
]

PENDING, STARTED, REFUSED = "PENDING", "STARTED", "REFUSED"
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

    @property
    def parameters_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.parameters or "{}"))


# -- the serve process's side -----------------------------------------------------------
def register(store: HistoryStore, flows: Iterable[Mapping[str, Any]],
             alive_within: float | None = None) -> None:
    """Record that this process serves ``flows`` (dicts: name, target, schedule, parameters).

    A flow another live process serves (heartbeat within ``alive_within`` s) is
    refused with :class:`HistoryError`.  The last due time of an earlier server
    of the same flow is kept.
    """
    sf = schema.served_flows
    now = time.time()
    rows = [{"name": f["name"], "target": f.get("target", ""), "schedule": f.get("schedule", ""),
             "parameters": json.dumps(f.get("parameters") or {}, default=repr),
             "host": _HOST, "pid": os.getpid(), "started_at": now, "heartbeat": now}
            for f in flows]
    with store._writes.begin() as conn:
        if alive_within is not None:
            names = [r["name"] for r in rows]
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
        updates = {c: stmt.excluded[c] for c in
                   ("target", "schedule", "parameters", "host", "pid", "started_at", "heartbeat")}
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=updates), rows)


def beat(store: HistoryStore, names: Iterable[str]) -> None:
    """Refresh the heartbeat of the flows this process serves."""
    sf = schema.served_flows
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name.in_(list(names)), sf.c.host == _HOST,
                                       sf.c.pid == os.getpid()).values(heartbeat=time.time()))


def set_last_due(store: HistoryStore, name: str, due: float) -> None:
    """Record that the run due at ``due`` (epoch seconds) was handled."""
    sf = schema.served_flows
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name == name).values(last_due=due))


def unregister(store: HistoryStore, names: Iterable[str]) -> None:
    """This process stopped serving ``names``: their heartbeat ends (last due time kept)."""
    sf = schema.served_flows
    with store._writes.begin() as conn:
        conn.execute(sf.update().where(sf.c.name.in_(list(names)), sf.c.host == _HOST,
                                       sf.c.pid == os.getpid()).values(heartbeat=None))


def claim(store: HistoryStore, names: Iterable[str],
          new_run_id: Callable[[], str]) -> list[tuple[RunRequestRecord, str]]:
    """Take the pending requests for ``names``, oldest first: ``(request, run id)`` each.

    Each request is taken by one process only (a conditional update).
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
            run_id = new_run_id()
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
    """Every flow a serve process serves or served, by name."""
    sf = schema.served_flows
    with store.engine.connect() as conn:
        return [to_record(ServedFlowRecord, r) for r in conn.execute(sa.select(sf).order_by(sf.c.name))]


def request_run(store: HistoryStore, flow_name: str, parameters: Mapping[str, Any]) -> str:
    """Ask the serve process serving ``flow_name`` for a run; return the request's id."""
    request_id = uuid.uuid4().hex
    with store._writes.begin() as conn:
        conn.execute(schema.run_requests.insert().values(
            id=request_id, flow_name=flow_name, parameters=json.dumps(dict(parameters)),
            state=PENDING, message="", requested_at=time.time(),
        ))
    return request_id


def get_request(store: HistoryStore, request_id: str) -> RunRequestRecord:
    rr = schema.run_requests
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(rr).where(rr.c.id == request_id)).first()
    if row is None:
        raise HistoryError(f"no run request {request_id!r} in the history at {store.display_url}",
                           request=request_id)
    return to_record(RunRequestRecord, row)
