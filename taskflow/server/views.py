"""The server's one run model: plain dicts built from the history, for pages and the API.

Every page and every JSON answer of ``taskflow server`` comes from these
functions, so the two always say the same.  They read the history only
(:class:`~taskflow.history.store.HistoryStore` and :mod:`taskflow.history.serving`),
never a cluster, and what they hand back is JSON-ready: numbers, strings,
lists, dicts.  Parameter values are masked (:func:`taskflow.secrets.mask_secrets`)
wherever they come from: the history masks a run's parameters when it records
them, but a run request still waiting for a serve process holds them as given.

Quick Run values are checked here against the parameter signature the serve
process recorded for its flow (:func:`check_parameters`), by the flow's own check
run on the recorded JSON schemas (:mod:`taskflow.parameter_schemas`), so a wrong
name or a value that does not fit the type is refused, in the words a run of the
flow would use, before anything is asked of an agent.

Examples
--------
>>> sig = [{"name": "n", "type": "int", "schema": {"type": "integer"}, "default": 3,
...         "required": False}]
>>> check_parameters("etl", sig, {"n": "5"}, from_form=True)
{'n': 5}
>>> try:
...     check_parameters("etl", sig, {"n": "five"}, from_form=True)
... except ParameterProblem as e:
...     print(e.parameter, "|", e)
n | flow 'etl': parameter n='five' is not a valid int (Input should be a valid integer, unable to parse string as an integer)
>>> try:
...     check_parameters("etl", sig, {"m": 1})
... except ParameterProblem as e:
...     print(e.parameter, "|", e)
m | flow 'etl' has no parameter 'm'; its parameters are: n=3
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from dask.utils import parse_timedelta

from taskflow import config
from taskflow.exceptions import TaskflowError
from taskflow.history import paging, serving, streams
from taskflow.history.records import UnknownRunError
from taskflow.history.store import HistoryStore
from taskflow.schematic import graph_svg, node_views
from taskflow.secrets import is_secret, mask_secrets
from taskflow.states import FINISHED_TYPES, StateType

__all__ = ["FINISHED", "GOOD", "ParameterProblem", "check_parameters", "flow_view", "flows_view", "run_states",
           "run_view", "runs_view"]

#: States a run or task run ends in (values), and those that count as having gone well.
FINISHED = frozenset(t.value for t in FINISHED_TYPES)
GOOD = frozenset({StateType.SUCCESS.value, StateType.CACHED.value, StateType.SKIPPED.value})
# States a task run ends in when its (last) attempt raised or ran out of time.
_ATTEMPT_FAILED = {StateType.FAILED.value, StateType.TIMED_OUT.value, StateType.RETRYING.value,
                   StateType.CRASHED.value}
#: Task-run rows shown per page of a run (the API has them all).
TASKS_PER_PAGE = 500
# Runs with more task runs than this are read a page at a time (nodes and counts
# summed by the database); smaller ones are read whole.
_READ_ALL_UP_TO = 5000
_MAX_RESULTS = 1000  # result locations listed on a big run's page
MAX_TASKS = 10_000  # task runs a big run's JSON holds at most when "all" are asked for
LOGS_SHOWN = 500  # a run's latest log records on its page and in its JSON (the logs API has all)
_RECENT = 20


class ParameterProblem(TaskflowError, ValueError):
    """A Quick Run parameter the flow lacks, or a value that does not fit its type."""

    def __init__(self, message: str, parameter: str = "", **context: Any) -> None:
        super().__init__(message, parameter=parameter, **context)
        self.parameter = parameter


def _alive_within() -> float:
    return float(parse_timedelta(config.get("history.stale-after")))


# -- parameters ---------------------------------------------------------------------------
def _read_text(text: str) -> Any:
    """A form field's text read as JSON when it is JSON (``3``, ``[1, 2]``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_parameters(flow_name: str, signature: list[dict[str, Any]], given: dict[str, Any],
                     *, from_form: bool = False) -> dict[str, Any]:
    """The values of ``given`` that differ from the defaults, checked against ``signature``.

    The check is :func:`taskflow.parameter_schemas.check_with_schemas`: the flow's
    own check, against the JSON schemas its serve process recorded (a parameter
    recorded without one takes any value).  ``from_form``: values are the text of
    form fields, read as JSON where that fits the type and as text where not (as
    ``taskflow run -p`` reads them); an empty field keeps the default (None for
    an optional parameter without one).

    Raises
    ------
    ParameterProblem
        Naming the first parameter the flow lacks, or whose value does not fit, in
        the words of the flow's own check.
    """
    from taskflow.exceptions import ParameterError
    from taskflow.parameter_schemas import accepts_none, check_with_schemas

    params = {p["name"]: p for p in signature}
    texts: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in given.items():
        p = params.get(name)
        if from_form and p is not None:
            text = str(value)
            schema = p.get("schema") or {}
            # a str parameter (of a row without a schema: named so) takes its text as typed
            plain_text = schema.get("type") == "string" if schema else p.get("type") == "str"
            if text == "" and not p.get("required"):
                if is_secret(name):
                    continue  # a secret's field is never filled in: empty keeps the default
                if schema and accepts_none(schema):
                    value = None
                elif plain_text:
                    value = ""
                else:
                    continue  # left empty: the default
            elif plain_text and not schema:
                value = text
            else:
                value, texts[name] = _read_text(text), text
        values[name] = value
    try:
        out = check_with_schemas(flow_name, signature, values, texts=texts)
    except ParameterError as e:
        raise ParameterProblem(str(e), parameter=getattr(e, "parameter", "")) from None
    if from_form:  # only what differs from the defaults is asked for
        out = {n: v for n, v in out.items() if params[n].get("required") or v != params[n].get("default")}
    return out


# -- runs ----------------------------------------------------------------------------------
def _run_summary(r: Any) -> dict[str, Any]:
    return {"id": r.id, "flow_name": r.flow_name, "state": r.state, "message": r.message,
            "started": r.started_at, "ended": r.ended_at, "duration": r.duration,
            "host": r.host or "", "parameters": mask_secrets(r.params)}


def _served_view(record: serving.ServedFlowRecord | None,
                 agents: list[serving.ServeProcessRecord], now: float) -> dict[str, Any] | None:
    if record is None:
        return None
    within = _alive_within()
    procs = [{"host": a.host, "pid": a.pid, "heartbeat": a.heartbeat,
              "alive": a.alive(within, now)} for a in agents]
    gone = [p for p in procs if not p["alive"]]
    procs = [p for p in procs if p["alive"]] + gone[:3]  # the last few that went away
    return {"target": record.target, "schedule": record.schedule,
            "next_due": getattr(record, "next_due", None), "last_due": record.last_due,
            "parameters": mask_secrets(json.loads(record.parameters or "{}")),
            "signature": _signature_view(record.signature_list),
            "agents": procs, "alive": any(p["alive"] for p in procs)
            or (not procs and record.alive(within, now))}


def mask_secrets_in_signature(signature: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The signature with the defaults of secret-named parameters masked."""
    return [{**p, "default": mask_secrets({p["name"]: p.get("default")})[p["name"]],
             "secret": mask_secrets({p["name"]: 1})[p["name"]] != 1} for p in signature]


def _signature_view(signature: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The signature as pages show it: secrets masked, ``type`` read from the schema
    (``hint``: the type as the flow's author wrote it)."""
    from taskflow.parameter_schemas import schema_label

    return [{**p, "hint": p.get("type") or "",
             "type": schema_label(p["schema"]) if p.get("schema") else p.get("type") or ""}
            for p in mask_secrets_in_signature(signature)]


def flows_view(h: HistoryStore) -> list[dict[str, Any]]:
    """Every flow the history knows (has runs, or is served), by name."""
    now = time.time()
    served = {r.name: r for r in serving.served_flows(h)}
    agents: dict[str, list[serving.ServeProcessRecord]] = {}
    for a in serving.serve_processes(h):
        agents.setdefault(a.flow_name, []).append(a)
    out = []
    for name in sorted(set(h.flow_names()) | set(served)):
        recent = h.runs(flow=name, limit=_RECENT)
        finished = [r for r in recent if r.finished]
        out.append({
            "name": name,
            "last_run": _run_summary(recent[0]) if recent else None,
            "recent": len(finished),
            "succeeded": sum(1 for r in finished if r.state in GOOD),
            "served": _served_view(served.get(name), agents.get(name, []), now),
        })
    return out


def flow_view(h: HistoryStore, name: str) -> dict[str, Any] | None:
    """One flow: its served record (schedule, agents, signature) and recent runs."""
    served = {r.name: r for r in serving.served_flows(h)}.get(name)
    recent = h.runs(flow=name, limit=_RECENT)
    if served is None and not recent:
        return None
    view = _served_view(served, serving.serve_processes(h, name), time.time())
    return {"name": name, "served": view, "runs": [_run_summary(r) for r in recent],
            "serve_command": f"taskflow serve {served.target if served and served.target else 'FILE.py:' + name}"}


def runs_view(h: HistoryStore, flow: str | None = None, state: str | None = None,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """A page of runs, newest first (one more is read to know whether a next page exists)."""
    found = h.runs(flow=flow or None, state=state or None, limit=limit + 1, offset=offset)
    return {"runs": [_run_summary(r) for r in found[:limit]], "more": len(found) > limit,
            "offset": offset, "limit": limit, "flow": flow or "", "state": (state or "").upper()}


def _pending_run(h: HistoryStore, run_id: str) -> dict[str, Any] | None:
    """A run asked for but not recorded yet (no serve process took it, or it is starting)."""
    req = serving.request_for_run(h, run_id)
    if req is None or req.run_id is None:
        return None
    states = {serving.PENDING: StateType.PENDING.value, serving.STARTED: StateType.PENDING.value,
              serving.REFUSED: StateType.FAILED.value, serving.CANCELLED: StateType.CANCELLED.value}
    message = {serving.PENDING: "waiting for a serve process of this flow to take the request",
               serving.STARTED: "a serve process took the request; the run is starting",
               }.get(req.state, req.message)
    return {"id": req.run_id, "flow_name": req.flow_name, "state": states.get(req.state, "PENDING"),
            "message": message, "started": None, "ended": None, "duration": None, "host": "",
            "parameters": mask_secrets(req.parameters_dict), "executor": "", "address": "",
            "dashboard_link": None, "request": req.state, "resume": req.resume,
            "nodes": [], "edges": [], "tasks": [], "task_total": 0, "counts": {}, "logs": [],
            "results": [], "svg": "", "live": req.state in (serving.PENDING, serving.STARTED),
            "cancellable": req.state == serving.PENDING, "resumable": False}


def _ordered_tasks(graph: dict[str, Any], tasks: list[Any]) -> list[Any]:
    """Task runs in graph order, each mapped task followed by its children by index."""
    own = {t.name: t for t in tasks if t.map_index is None}
    kids: dict[str, list[Any]] = {}
    for t in tasks:
        if t.map_index is not None:
            kids.setdefault(t.name.rpartition("[")[0], []).append(t)
    out: list[Any] = []
    listed: set[str] = set()
    for name in [n["name"] for n in graph["nodes"]] or list(own):
        if name in own:
            out.append(own[name])
            listed.add(name)
        for k in sorted(kids.get(name, []), key=lambda t: t.map_index):
            out.append(k)
            listed.add(k.name)
    out.extend(t for t in tasks if t.name not in listed)
    return out


def _attempts(h: HistoryStore, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each task run's failed attempts with their reasons, where the history keeps them."""
    read = getattr(h, "task_attempts", None)  # histories that keep every attempt's reason
    out: dict[str, list[dict[str, Any]]] = {}
    if read is None:
        return out
    for a in read(run_id):
        out.setdefault(a.name, []).append({
            "attempt": a.attempt, "state": a.state, "type": getattr(a, "exception_type", None),
            "message": a.message, "traceback": a.traceback, "worker": getattr(a, "worker", "")})
    return out


def _task_dict(t: Any, failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if not failures:  # only the last attempt's reason is known: show that
        failures = []
        if t.state in _ATTEMPT_FAILED and t.attempts > 0 and (t.message or t.traceback):
            failures = [{"attempt": t.attempts, "message": t.message, "traceback": t.traceback}]
    return {"name": t.name, "key": t.key, "map_index": t.map_index, "state": t.state,
            "attempts": t.attempts, "message": t.message, "started": t.started_at,
            "ended": t.ended_at, "duration": t.duration, "worker": t.worker,
            "traceback": t.traceback, "result_location": t.result_location,
            "failures": failures}


def run_view(h: HistoryStore, run_id: str, *, log_level: int = 0, task_offset: int = 0,
             task_limit: int | None = TASKS_PER_PAGE, svg: bool = True) -> dict[str, Any]:
    """Everything about one run (``run_id`` whole or a unique prefix).

    ``task_limit`` task runs from ``task_offset`` (None: all); ``task_total`` says
    how many there are.

    Raises
    ------
    UnknownRunError
        When neither the history's runs nor its run requests know ``run_id``.
    """
    try:
        r = h.get_run(run_id)
    except UnknownRunError:
        pending = _pending_run(h, run_id)
        if pending is None:
            raise
        return pending
    graph = r.graph_dict
    if paging.task_run_total(h, r.id) > _READ_ALL_UP_TO:  # "all" of a big run: a page too
        return _big_run_view(h, r, graph, log_level, task_offset,
                             MAX_TASKS if task_limit is None else task_limit, svg)
    records = h.task_runs(r.id)
    nodes = node_views(graph, records)
    ordered = _ordered_tasks(graph, records)
    mapped = {n["name"] for n in nodes if n["mapped"]}
    counts: dict[str, int] = {}
    for t in records:  # a mapped parent is counted through its children
        if t.map_index is not None or t.name not in mapped:
            counts[t.state] = counts.get(t.state, 0) + 1
    end = task_offset + task_limit if task_limit is not None else None
    shown = ordered[task_offset:end]
    attempts = _attempts(h, r.id)
    logs = _latest_logs(h, r.id, log_level)
    live = not r.finished
    asked = serving.request_for_run(h, r.id)  # asked through the history (Quick Run, Resume)?
    return {
        **_run_summary(r), "executor": r.executor or "", "address": r.address or "",
        "dashboard_link": r.dashboard_link, "live": live, "request": None,
        "resume": asked.resume if asked is not None else None,
        "nodes": nodes, "edges": [list(e) for e in graph["edges"]],
        "svg": graph_svg(nodes, [tuple(e) for e in graph["edges"]]) if svg else "",
        "tasks": [_task_dict(t, attempts.get(t.name)) for t in shown], "task_total": len(ordered),
        "task_offset": task_offset, "counts": counts, "logs": logs,
        "log_total": streams.log_total(h, r.id, min_level=log_level) if len(logs) >= LOGS_SHOWN
        else len(logs),
        "results": [{"task": t.name, "location": t.result_location}
                    for t in ordered if t.result_location],
        "cancellable": live,
        "resumable": r.state not in GOOD and not live,
    }


def _latest_logs(h: HistoryStore, run_id: str, log_level: int) -> list[dict[str, Any]]:
    """The run's :data:`LOGS_SHOWN` latest log records at ``log_level`` or above."""
    return [{"time": lg.created, "level": lg.level, "level_name": logging.getLevelName(lg.level),
             "task": lg.task, "message": lg.message, "worker": lg.worker}
            for lg in streams.last_logs(h, run_id, LOGS_SHOWN, log_level)]


def _big_run_view(h: HistoryStore, r: Any, graph: dict[str, Any], log_level: int,
                  task_offset: int, task_limit: int, svg: bool) -> dict[str, Any]:
    """:func:`run_view` of a run too big to read whole: only the page's task runs are
    read; nodes and counts are summed by the database."""
    own, child_counts = paging.overview(h, r.id)
    nodes = node_views(graph, own, child_counts)
    mapped = {n["name"] for n in nodes if n["mapped"]}
    counts: dict[str, int] = {}
    for t in own:  # a mapped parent is counted through its children
        if t.name not in mapped:
            counts[t.state] = counts.get(t.state, 0) + 1
    for by_state in child_counts.values():
        for state, n in by_state.items():
            counts[state] = counts.get(state, 0) + n
    shown, total = paging.task_runs_page(h, r.id, task_offset, task_limit,
                                         nodes=[n["name"] for n in graph["nodes"]])
    attempts: dict[str, list[dict[str, Any]]] = {}
    for a in paging.attempts_of(h, r.id, [t.name for t in shown]):
        attempts.setdefault(a.name, []).append({
            "attempt": a.attempt, "state": a.state, "type": a.exception_type,
            "message": a.message, "traceback": a.traceback, "worker": a.worker})
    logs = _latest_logs(h, r.id, log_level)
    live = r.state not in FINISHED
    asked = serving.request_for_run(h, r.id)
    return {
        **_run_summary(r), "executor": r.executor or "", "address": r.address or "",
        "dashboard_link": r.dashboard_link, "live": live, "request": None,
        "resume": asked.resume if asked is not None else None,
        "nodes": nodes, "edges": [list(e) for e in graph["edges"]],
        "svg": graph_svg(nodes, [tuple(e) for e in graph["edges"]]) if svg else "",
        "tasks": [_task_dict(t, attempts.get(t.name)) for t in shown], "task_total": total,
        "task_offset": task_offset, "counts": counts, "logs": logs,
        "log_total": streams.log_total(h, r.id, min_level=log_level) if len(logs) >= LOGS_SHOWN
        else len(logs),
        "results": [{"task": n, "location": loc}
                    for n, loc in paging.result_locations(h, r.id, _MAX_RESULTS)],
        "cancellable": live,
        "resumable": r.state not in GOOD and not live,
    }


def run_states(h: HistoryStore, run_id: str, task_offset: int = 0,
               task_limit: int | None = TASKS_PER_PAGE) -> dict[str, Any]:
    """What a run's page polls for: the run's state, its nodes' states, and the states
    of the task runs the page shows (``task_limit`` from ``task_offset``, in page order)."""
    try:
        r = h.get_run(run_id)
    except UnknownRunError:
        pending = _pending_run(h, run_id)
        if pending is None:
            raise
        return {"id": pending["id"], "state": pending["state"], "message": pending["message"],
                "live": pending["live"], "nodes": [], "tasks": {}, "task_total": 0,
                "started": None, "recorded": False}
    graph = r.graph_dict
    if paging.task_run_total(h, r.id) > _READ_ALL_UP_TO:
        task_limit = MAX_TASKS if task_limit is None else task_limit
        own, child_counts = paging.overview(h, r.id)
        nodes = node_views(graph, own, child_counts)
        shown, total = paging.task_runs_page(h, r.id, task_offset, task_limit,
                                             nodes=[n["name"] for n in graph["nodes"]])
        return {"id": r.id, "state": r.state, "message": r.message,
                "live": r.state not in FINISHED, "duration": r.duration, "started": r.started_at,
                "recorded": True,
                "nodes": [{k: n[k] for k in ("name", "state", "done", "size", "mapped")}
                          for n in nodes],
                "tasks": {t.name: [t.state, t.attempts] for t in shown}, "task_total": total}
    records = h.task_briefs(r.id)
    nodes = node_views(graph, records)
    end = task_offset + task_limit if task_limit is not None else None
    shown = _ordered_tasks(graph, records)[task_offset:end]
    return {"id": r.id, "state": r.state, "message": r.message, "live": not r.finished,
            "duration": r.duration, "started": r.started_at, "recorded": True,
            "nodes": [{k: n[k] for k in ("name", "state", "done", "size", "mapped")} for n in nodes],
            "tasks": {t.name: [t.state, t.attempts] for t in shown}, "task_total": len(records)}
