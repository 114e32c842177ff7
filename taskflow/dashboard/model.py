"""What the scheduler remembers of flow runs, built from their events.

:class:`RunBook` is fed every taskflow event the scheduler sees (task-run state
changes and log records from workers, one by one or in ``kind="batch"``
messages, and the ``kind="run"`` events of
:mod:`taskflow.dashboard.events`) and answers with JSON-ready dicts for the
page and its API.  It is plain Python, no Dask, no I/O, so it is tested alone.

Memory is bounded: at most ``max_runs`` runs and about ``max_task_runs``
task-run records over all runs (when a new run comes, the oldest finished runs
go, or the oldest of all when none has finished), and at most ``max_logs`` log
records per run.  A run wider than ``max_task_runs`` keeps its records up to
that many; past it, each mapped child that succeeds is folded into its mapped
task's tallies (counts by state, first start, last end) and its record
dropped, one bit remembering it, so a map of a million children costs the
scheduler a few hundred bytes per child it still shows.  A run's detail is
asked a page of task runs at a time (``task_limit``, ``task_offset``).  An ended run's summary is computed once.  Events are copied field by field, never kept
whole; pickled exceptions are never unpickled here.

A run's state is derived, as the client derives it: RUNNING until the client
says the executor is done (or disconnects), then SUCCESS when every reference
task succeeded or was skipped, else FAILED naming the tasks that did not.  A
mapped task's state comes from how it expanded and how its children ended.

Examples
--------
>>> book = RunBook(max_runs=10)
>>> book.add({"kind": "run", "phase": "started", "run": "r1", "flow_name": "etl",
...           "time": 1.0, "nodes": [{"name": "a", "task": "a", "mapped": False}],
...           "edges": [], "reference": ["a"], "parameters": {}})
>>> book.add(StateEvent("r1", "a", "SUCCESS", attempt=1, started=1.0, ended=2.5,
...                       time=2.5).to_msg())
>>> book.add({"kind": "run", "phase": "finished", "run": "r1", "time": 3.0, "lost": {}})
>>> run = book.run("r1")
>>> run["state"], run["tasks"][0]["name"], run["tasks"][0]["duration"]
('SUCCESS', 'a', 1.5)
"""
from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from taskflow.description import expand
from taskflow.engine.events import StateEvent, events_of, is_state
from taskflow.engine.transitions import flow_state
from taskflow.records import TaskRunRecord, duration, mapped_state
from taskflow.states import FINISHED_TYPES, SUCCESSFUL_TYPES, State, StateType

__all__ = ["RunBook", "RunRecord", "TaskRecord", "apply_event", "task_view"]

_KNOWN = {t.value: t for t in StateType}
_GOOD = SUCCESSFUL_TYPES | {StateType.SKIPPED}
_MAX_TEXT = 4000


def _text(value: Any, limit: int = _MAX_TEXT) -> str:
    s = "" if value is None else str(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


TaskRecord = TaskRunRecord  # the live model's record of a task run is the one model's


def apply_event(rec: TaskRunRecord, ev: StateEvent) -> None:
    """Take the fields of a state event into ``rec`` (a stale non-final one never undoes a final one)."""
    state = str(ev.type or StateType.PENDING.value)
    at = _num(ev.time) or 0.0
    if rec.finished and state not in FINISHED_TYPES and at <= (rec.updated_at or 0.0):
        return
    rec.state = sys.intern(state)
    rec.key = _text(ev.key, 300) or rec.key
    rec.message = _text(ev.message)
    rec.attempts = int(ev.attempt or rec.attempts or 0)
    rec.started_at = _num(ev.started) or rec.started_at
    rec.ended_at = _num(ev.ended)
    rec.worker = sys.intern(_text(ev.worker, 300)) or rec.worker
    rec.error = _text(ev.exc_repr) if state not in _GOOD else ""
    rec.traceback = _text(ev.tb) if state not in _GOOD else ""
    rec.result_location = _text(ev.location, 1000)
    rec.updated_at = at


def task_view(rec: TaskRunRecord, now: float) -> dict[str, Any]:
    """A task run for the page: a live one's duration runs to ``now``."""
    finished = rec.finished
    return {
        "name": rec.name, "node": rec.node, "key": rec.key, "map_index": rec.map_index,
        "state": rec.state, "message": rec.message, "attempts": rec.attempts,
        "started": rec.started_at, "ended": rec.ended_at if finished else None,
        "duration": duration(rec.started_at, rec.ended_at if finished else now),
        "worker": rec.worker, "error": rec.error, "traceback": rec.traceback or "",
        "location": rec.result_location or "",
    }


@dataclass(slots=True)
class _Folded:
    """The mapped children of one task folded out of a wide run's records."""

    counts: dict[str, int] = field(default_factory=dict)
    n: int = 0
    started: float | None = None
    ended: float | None = None
    attempts: int = 0
    bits: bytearray = field(default_factory=bytearray)  # bit i: child i is folded

    def has(self, index: int) -> bool:
        byte = index >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (index & 7)))

    def add(self, rec: TaskRunRecord) -> None:
        index = rec.map_index or 0
        byte = index >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits)))
        self.bits[byte] |= 1 << (index & 7)
        self.counts[rec.state] = self.counts.get(rec.state, 0) + 1
        self.n += 1
        if rec.started_at is not None:
            self.started = rec.started_at if self.started is None else min(self.started, rec.started_at)
        if rec.ended_at is not None:
            self.ended = rec.ended_at if self.ended is None else max(self.ended, rec.ended_at)
        self.attempts = max(self.attempts, rec.attempts)


@dataclass
class RunRecord:
    """One flow run as the scheduler saw it."""

    run_id: str
    flow_name: str = ""
    client: str = ""
    host: str = ""
    started: float | None = None
    ended: float | None = None
    done: bool = False
    why_done: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    span: list[str] = field(default_factory=list)
    tasks: dict[str, TaskRunRecord] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    cancelled: str = ""  # why the run was stopped early, if it was
    logs: deque[dict[str, Any]] = field(default_factory=deque)
    version: int = 0
    keep: int = 100_000  # task-run records kept before succeeded children are folded
    folded: dict[str, _Folded] = field(default_factory=dict)
    _summary: tuple[int, dict[str, Any]] | None = field(default=None, repr=False)

    # -- feeding --------------------------------------------------------------
    def on_run(self, ev: dict[str, Any]) -> None:
        self.version += 1
        phase = ev.get("phase")
        at = _num(ev.get("time")) or time.time()
        if phase == "started":
            self.flow_name = _text(ev.get("flow_name"), 300) or self.flow_name
            self.client = _text(ev.get("client"), 300)
            self.host = _text(ev.get("host"), 300)
            self.started = at
            self.parameters = {_text(k, 300): _text(v, 300)
                               for k, v in dict(ev.get("parameters") or {}).items()}
            graph = expand(ev)  # a wide flow's graph comes grouped
            self.nodes = [{"name": _text(n.get("name"), 300), "task": _text(n.get("task"), 300),
                           "mapped": bool(n.get("mapped"))} for n in graph["nodes"]]
            self.edges = [(_text(e[0], 300), _text(e[1], 300), _text(e[2], 10))
                          for e in graph["edges"] if len(e) == 3]
            self.reference = [_text(r, 300) for r in graph["reference"]]
            self.span = [_text(s, 300) for s in ev.get("span") or []]
        elif phase == "update":
            for sub in ev.get("events") or []:
                if isinstance(sub, dict):
                    self.on_state(StateEvent.from_msg(sub))
            for name, n in dict(ev.get("sizes") or {}).items():
                self.sizes[str(name)] = int(n)
        elif phase == "finished":
            self.lost = {_text(k, 300): _text(v) for k, v in dict(ev.get("lost") or {}).items()}
            self.cancelled = _text(ev.get("cancelled"))
            self.finish(at, _text(ev.get("error")))

    def on_state(self, ev: StateEvent) -> None:
        self.version += 1
        name = _text(ev.name, 300)
        if not name:
            return
        rec = self.tasks.get(name)
        if rec is None:
            index = ev.map_index
            index = int(index) if isinstance(index, int) else None
            folded = self.folded.get(name.rpartition("[")[0]) if index is not None else None
            if folded is not None and folded.has(index):  # type: ignore[arg-type]
                return  # a late event of a child folded away: it had ended
            rec = self.tasks[name] = TaskRunRecord(run_id=self.run_id, name=name, map_index=index)
        apply_event(rec, ev)
        if self.started is None:
            self.started = rec.started_at or _num(ev.time)
        if rec.map_index is not None and len(self.tasks) > self.keep and rec.state in _GOOD:
            self.folded.setdefault(rec.node, _Folded()).add(rec)
            del self.tasks[name]

    def on_log(self, ev: dict[str, Any], keep: int) -> None:
        self.version += 1
        if not self.flow_name:
            self.flow_name = _text(ev.get("flow_name"), 300)
        self.logs.append({
            "time": _num(ev.get("created")), "level": int(ev.get("level") or 0),
            "task": _text(ev.get("task"), 300), "message": _text(ev.get("msg")),
            "worker": _text(ev.get("worker"), 300),
        })
        while len(self.logs) > keep:
            self.logs.popleft()

    def finish(self, at: float, why: str = "") -> None:
        """The run's executor is done (or its client went away, ``why`` says so)."""
        if self.done:
            return
        self.version += 1
        self.done = True
        self.ended = at
        self.why_done = why

    # -- reading --------------------------------------------------------------
    def node_names(self) -> list[str]:
        """Graph nodes: from the started event, else as task runs reported them."""
        if self.nodes:
            return [n["name"] for n in self.nodes]
        return list(dict.fromkeys(t.node for t in self.tasks.values()))

    def children(self) -> dict[str, list[TaskRunRecord]]:
        out: dict[str, list[TaskRunRecord]] = {}
        for t in self.tasks.values():
            if t.map_index is not None:
                out.setdefault(t.node, []).append(t)
        return out

    def node_view(self, name: str, mapped: bool, kids: list[TaskRunRecord], now: float) -> dict[str, Any]:
        """A graph node: its state, and for a mapped task its children's progress."""
        own = self.tasks.get(name)
        folded = self.folded.get(name) if mapped else None
        counts: dict[str, int] = dict(folded.counts) if folded else {}
        for k in kids:
            counts[k.state] = counts.get(k.state, 0) + 1
        size = self.sizes.get(name, len(kids) + (folded.n if folded else 0)) if mapped else 1
        if not mapped:
            state = own.state if own else StateType.PENDING.value
            message = own.message if own else ""
            done = int(bool(own and own.finished))
        else:
            state, message = self._mapped_state(own, kids, size, folded)
            done = sum(1 for k in kids if k.finished) + (folded.n if folded else 0)
        if self.done and state not in FINISHED_TYPES and self.cancelled:
            state, message = StateType.CANCELLED.value, self.cancelled
        elif self.done and state not in FINISHED_TYPES:
            state, message = StateType.CRASHED.value, self._lost_reason(name)
        starts = [t.started_at for t in ([own] if own and not mapped else kids) if t.started_at]
        ends = [t.ended_at for t in ([own] if own and not mapped else kids) if t.ended_at]
        if folded is not None:
            starts += [folded.started] if folded.started is not None else []
            ends += [folded.ended] if folded.ended is not None else []
        finished = state in FINISHED_TYPES
        start = min(starts) if starts else None
        end = (max(ends) if ends else None) if finished else now
        return {
            "name": name, "mapped": mapped, "state": state, "message": message,
            "size": size, "done": done, "counts": counts,
            "attempts": max([t.attempts for t in ([own] if own and not mapped else kids)]
                            + [folded.attempts if folded else 0]),
            "duration": duration(start, end),
        }

    def _mapped_state(self, own: TaskRunRecord | None, kids: list[TaskRunRecord], size: int,
                      folded: _Folded | None = None) -> tuple[str, str]:
        states = [k.state for k in kids]
        for st, c in (folded.counts.items() if folded else ()):
            states += [st] * c  # folded children all ended (they succeeded)
        kind, message = mapped_state(own.state if own else None, own.message if own else "",
                                     states, size)
        return kind.value, message

    def _lost_reason(self, name: str) -> str:
        if name in self.lost:
            return self.lost[name]
        if self.why_done:
            return self.why_done
        return next(iter(self.lost.values()), "no final state was reported")

    def state(self, views: dict[str, dict[str, Any]]) -> tuple[str, str]:
        """The run's state and message, from its reference tasks once it is done."""
        if not self.done:
            return StateType.RUNNING.value, ""
        names = self.reference or list(views)
        ref = {n: State(_KNOWN.get(views[n]["state"], StateType.FAILED), message=views[n]["message"])
               for n in names if n in views}
        if not ref:
            return ((StateType.CRASHED.value, self.why_done) if self.why_done
                    else (StateType.SUCCESS.value, "no tasks"))
        if self.cancelled and any(v["state"] == StateType.CANCELLED.value for v in views.values()):
            return StateType.CANCELLED.value, self.cancelled
        st = flow_state(ref, now=self.ended)
        return st.type.value, st.message

    def summary(self, now: float) -> dict[str, Any]:
        """:meth:`to_dict` without details; computed once for an ended run."""
        if self._summary is not None and self._summary[0] == self.version:
            return self._summary[1]
        out = self.to_dict(now, detail=False)
        if self.done:
            self._summary = (self.version, out)
        return out

    def to_dict(self, now: float, detail: bool, task_limit: int | None = None,
                task_offset: int = 0) -> dict[str, Any]:
        mapped = {n["name"]: n["mapped"] for n in self.nodes}
        kids = self.children()
        names = self.node_names()
        views = {n: self.node_view(n, mapped.get(n, n in kids), kids.get(n, []), now) for n in names}
        state, message = self.state(views)
        counts: dict[str, int] = {}
        total = done = 0
        for v in views.values():
            total += v["size"]
            done += v["done"]
            if v["mapped"]:
                for s, c in v["counts"].items():
                    counts[s] = counts.get(s, 0) + c
                pending = v["size"] - sum(v["counts"].values())
                if pending > 0:
                    counts["PENDING"] = counts.get("PENDING", 0) + pending
            else:
                counts[v["state"]] = counts.get(v["state"], 0) + 1
        end = self.ended if self.done else now
        out: dict[str, Any] = {
            "run_id": self.run_id, "flow_name": self.flow_name, "state": state,
            "message": message, "started": self.started, "ended": self.ended if self.done else None,
            "duration": duration(self.started, end),
            "live": not self.done, "client": self.client, "host": self.host,
            "total": total, "done": done, "counts": counts, "parameters": dict(self.parameters),
        }
        if detail:
            out["span"] = list(self.span)
            out["nodes"] = list(views.values())
            out["edges"] = [list(e) for e in self.edges]
            out["tasks"], out["task_total"] = self._task_list(names, views, now, task_limit,
                                                               task_offset)
            out["task_offset"] = task_offset
            out["logs"] = list(self.logs)
        return out


    def _task_list(self, names: list[str], views: dict[str, dict[str, Any]], now: float,
                   limit: int | None = None, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Task runs in graph order, each mapped task followed by its children by index:
        ``limit`` of them from ``offset`` (None: all), and how many are kept.

        A mapped task's own entry carries its derived state and child count.
        Only the entries of the page are built.
        """
        kids = self.children()
        end = None if limit is None else offset + limit
        out: list[dict[str, Any]] = []
        at = 0
        listed: set[str] = set()

        def put(make: Any) -> None:
            nonlocal at
            if at >= offset and (end is None or at < end):
                out.append(make())
            at += 1

        for name in names:
            view = views[name]
            own = self.tasks.get(name)
            if own is not None:
                def make_own(own: TaskRunRecord = own, view: dict[str, Any] = view) -> dict[str, Any]:
                    d = task_view(own, now)
                    if view["mapped"]:
                        d.update(state=view["state"], message=view["message"],
                                 duration=view["duration"], attempts=view["attempts"],
                                 mapped=True, size=view["size"])
                    return d
                put(make_own)
                listed.add(name)
            mine = kids.get(name, [])
            if end is not None and (at >= end or at + len(mine) <= offset):
                at += len(mine)  # wholly outside the page: not sorted, not built
                listed.update(k.name for k in mine)
                continue
            for k in sorted(mine, key=lambda t: t.map_index or 0):
                put(lambda k=k: task_view(k, now))
                listed.add(k.name)
        for t in self.tasks.values():
            if t.name not in listed:
                put(lambda t=t: task_view(t, now))
        return out, at


class RunBook:
    """The last flow runs seen, fed by :meth:`add`.

    Parameters
    ----------
    max_runs : int
        How many runs to keep; the oldest finished run goes first.
    max_logs : int
        How many log records to keep per run.
    max_task_runs : int
        How many task-run records to keep over all runs (a rough memory budget,
        a few hundred bytes each): when a new run comes, finished runs go, oldest first,
        until the others fit.  A single live run is never cut; past this many
        records, its mapped children that succeed are folded into tallies.
    """

    def __init__(self, max_runs: int = 100, max_logs: int = 200, max_task_runs: int = 100_000) -> None:
        self.max_runs = max(1, int(max_runs))
        self.max_logs = max(0, int(max_logs))
        self.max_task_runs = max(1, int(max_task_runs))
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def _get(self, run_id: str) -> RunRecord:
        rec = self._runs.get(run_id)
        if rec is None:
            self._evict(room_for=1)
            rec = self._runs[run_id] = RunRecord(run_id=run_id, keep=self.max_task_runs)
        return rec

    def _evict(self, room_for: int) -> None:
        def over() -> bool:
            return (len(self._runs) + room_for > self.max_runs
                    or sum(len(r.tasks) for r in self._runs.values()) > self.max_task_runs)

        while self._runs and over():
            victim = next((k for k, r in self._runs.items() if r.done), None)
            if victim is None:
                if len(self._runs) + room_for <= self.max_runs:
                    return  # only live runs left: keep them
                victim = next(iter(self._runs))
            del self._runs[victim]

    def add(self, ev: dict[str, Any]) -> None:
        """Take one taskflow event (or a worker's batch of them); anything else is ignored."""
        if ev.get("kind") == "batch":
            for one in events_of(ev):
                if one.get("kind") != "batch":
                    self.add(one)
            return
        run_id = ev.get("run")
        if not isinstance(run_id, str) or not run_id:
            return
        kind = ev.get("kind")
        if is_state(ev):
            self._get(run_id).on_state(StateEvent.from_msg(ev))
        elif kind == "log":
            self._get(run_id).on_log(ev, self.max_logs)
        elif kind == "run":
            self._get(run_id).on_run(ev)

    def client_gone(self, client: str, at: float | None = None) -> None:
        """Runs of a client that disconnected before saying they ended are over."""
        for rec in self._runs.values():
            if rec.client == client and not rec.done:
                rec.finish(at or time.time(), "the client that ran it disconnected before the run ended")

    def runs(self, now: float | None = None) -> list[dict[str, Any]]:
        """Summaries of every run kept, newest first."""
        now = time.time() if now is None else now
        recs = sorted(self._runs.values(), key=lambda r: r.started or 0.0, reverse=True)
        return [r.summary(now) for r in recs]

    def run(self, run_id: str, now: float | None = None, task_limit: int | None = None,
            task_offset: int = 0) -> dict[str, Any] | None:
        """Everything about one run, or None when it is not (or no longer) kept.

        ``task_limit`` task runs from ``task_offset`` (None: every one kept);
        ``task_total`` says how many are kept.
        """
        rec = self._runs.get(run_id)
        if rec is None:
            return None
        return rec.to_dict(time.time() if now is None else now, detail=True,
                           task_limit=task_limit, task_offset=task_offset)
